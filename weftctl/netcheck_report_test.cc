#include "weftctl/netcheck_report.h"

#include "gtest/gtest.h"

namespace weft::weftctl {
namespace {

nat::PortProbeReport Easy() {
  nat::PortProbeReport r;
  r.observations.local_port = 51820;
  for (const char* s : {"198.51.100.11:3478", "198.51.100.12:3479", "198.51.100.13:3480"}) {
    r.observations.probes.push_back(nat::Probe{.server = *net::Endpoint::Parse(s),
                                               .mapped = *net::Endpoint::Parse("198.51.100.21:51820"),
                                               .rtt = std::chrono::microseconds(1200)});
  }
  r.observations.probes[2].mapped.reset();
  r.observations.probes[2].rtt.reset();
  r.observations.hairpin = false;
  r.verdict = nat::Classify(r.observations);
  r.took = std::chrono::milliseconds(2500);
  return r;
}

TEST(NetcheckReportTest, HumanReport) {
  std::string s = FormatNetcheck(51820, Easy());
  EXPECT_NE(s.find("WireGuard port 51820"), std::string::npos) << s;
  EXPECT_NE(s.find("198.51.100.11:3478"), std::string::npos) << s;
  EXPECT_NE(s.find("sees 198.51.100.21:51820"), std::string::npos) << s;
  EXPECT_NE(s.find("(no answer)"), std::string::npos) << s;
  EXPECT_NE(s.find("hairpin:    no"), std::string::npos) << s;
  EXPECT_NE(s.find("2 of 3 answered"), std::string::npos) << s;
}

TEST(NetcheckReportTest, Json) {
  auto j = NetcheckJson(51820, Easy());
  EXPECT_EQ(j["port"], 51820);
  EXPECT_EQ(j["targets"].size(), 3u);
  EXPECT_EQ(j["targets"][0]["mapped"], "198.51.100.21:51820");
  EXPECT_FALSE(j["targets"][2].contains("mapped"));
  EXPECT_EQ(j["hairpin"], false);
}

}  // namespace
}  // namespace weft::weftctl
