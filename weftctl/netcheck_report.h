// Formats a NAT probe report for people (weftctl netcheck) and for machines (--json).
#ifndef WEFT_WEFTCTL_NETCHECK_REPORT_H_
#define WEFT_WEFTCTL_NETCHECK_REPORT_H_

#include <string>

#include "lib/nat/port_probe.h"
#include "nlohmann/json.hpp"

namespace weft::weftctl {

// Like `tailscale netcheck`: verdict, reflexive endpoint of the port, hairpin, and one
// line per STUN target with what it saw and how long it took.
// `family`: "" for IPv4 (the headline as always), "IPv6" for the IPv6 block.
std::string FormatNetcheck(uint16_t port, const nat::PortProbeReport& report, const std::string& family = "");
nlohmann::json NetcheckJson(uint16_t port, const nat::PortProbeReport& report);

}  // namespace weft::weftctl

#endif  // WEFT_WEFTCTL_NETCHECK_REPORT_H_
