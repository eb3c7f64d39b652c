// Conversions between the wire types (weft.v1) and lib/nat's types, for the controller and the agent.
#ifndef WEFT_LIB_API_NODE_NAT_H_
#define WEFT_LIB_API_NODE_NAT_H_

#include <string>

#include "lib/nat/path_strategy.h"
#include "weft/v1/weft.pb.h"

namespace weft::api {

nat::NodeNat NodeNatOf(const v1::NodeInfo& node);
v1::PairDirective DirectiveOf(const nat::PathDecision& d, const std::string& peer, bool initiate);
v1::NatReport NatReportOf(const nat::Verdict& v);

}  // namespace weft::api

#endif  // WEFT_LIB_API_NODE_NAT_H_
