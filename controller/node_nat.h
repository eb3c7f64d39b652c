// Conversions between the wire types (weft.v1) and lib/nat's planning types.
#ifndef WEFT_CONTROLLER_NODE_NAT_H_
#define WEFT_CONTROLLER_NODE_NAT_H_

#include <string>

#include "lib/nat/path_strategy.h"
#include "weft/v1/weft.pb.h"

namespace weft::controller {

nat::NodeNat NodeNatOf(const v1::NodeInfo& node);
v1::PairDirective DirectiveOf(const nat::PathDecision& d, const std::string& peer, bool initiate);
v1::NatReport NatReportOf(const nat::Verdict& v);

}  // namespace weft::controller

#endif  // WEFT_CONTROLLER_NODE_NAT_H_
