#include "controller/weftnode.h"

#include "gtest/gtest.h"

namespace weft::controller {
namespace {

using nlohmann::json;

json Conditions(const std::string& status) {
  return {{"conditions", {{{"type", "SNATRandomized"}, {"status", status}, {"reason", "NodeRule"}}}}};
}

TEST(SetTransitionTimesTest, KeptWhileTheStatusHoldsNewWhenItFlips) {
  json first = Conditions("False");
  SetTransitionTimes(json(), "2026-11-27T10:00:00Z", first);
  EXPECT_EQ(first["conditions"][0]["lastTransitionTime"], "2026-11-27T10:00:00Z");  // new

  json same = Conditions("False");
  same["conditions"][0]["reason"] = "NotObserved";  // another reason, same status
  SetTransitionTimes(first["conditions"], "2026-11-27T11:00:00Z", same);
  EXPECT_EQ(same["conditions"][0]["lastTransitionTime"], "2026-11-27T10:00:00Z");

  json flipped = Conditions("True");
  SetTransitionTimes(same["conditions"], "2026-11-27T12:00:00Z", flipped);
  EXPECT_EQ(flipped["conditions"][0]["lastTransitionTime"], "2026-11-27T12:00:00Z");

  json no_conditions = {{"ready", true}};
  SetTransitionTimes(flipped["conditions"], "x", no_conditions);
  EXPECT_FALSE(no_conditions.contains("conditions"));
  json garbage_previous = Conditions("True");
  SetTransitionTimes(json::parse(R"([7, {"type": 1}, {"type": "SNATRandomized", "status": "True", "lastTransitionTime": 5}])"),
                     "2026-11-27T13:00:00Z", garbage_previous);
  EXPECT_EQ(garbage_previous["conditions"][0]["lastTransitionTime"], "2026-11-27T13:00:00Z");
}

}  // namespace
}  // namespace weft::controller
