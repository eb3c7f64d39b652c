#include "lib/k8s/api_status.h"

#include <gtest/gtest.h>

namespace weft::k8s {
namespace {

TEST(StatusFromResponse, MapsCodesAndKeepsTheMessage) {
  EXPECT_TRUE(StatusFromResponse(200, "").ok());
  EXPECT_TRUE(StatusFromResponse(201, "{}").ok());
  absl::Status s = StatusFromResponse(404, ApiStatus(404, "NotFound", "nodes \"x\" not found").dump());
  EXPECT_TRUE(absl::IsNotFound(s));
  EXPECT_NE(s.message().find("nodes \"x\" not found"), absl::string_view::npos);
  EXPECT_TRUE(absl::IsAlreadyExists(StatusFromResponse(409, ApiStatus(409, "AlreadyExists", "x").dump())));
  EXPECT_TRUE(absl::IsAborted(StatusFromResponse(409, ApiStatus(409, "Conflict", "x").dump())));
  EXPECT_TRUE(absl::IsOutOfRange(StatusFromResponse(410, ApiStatus(410, "Expired", "too old").dump())));
  EXPECT_TRUE(absl::IsUnauthenticated(StatusFromResponse(401, "not json")));
  EXPECT_TRUE(absl::IsPermissionDenied(StatusFromResponse(403, "")));
  EXPECT_TRUE(absl::IsInvalidArgument(StatusFromResponse(422, "")));
  EXPECT_TRUE(absl::IsUnavailable(StatusFromResponse(503, "")));
}

TEST(ParseWatchEvent, AcceptsTheWireFormat) {
  auto e = ParseWatchEvent(R"({"type":"ADDED","object":{"kind":"Node","metadata":{"name":"n1","resourceVersion":"7"}}})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->type, "ADDED");
  EXPECT_EQ(ResourceVersionOf(e->object), "7");
  auto err = ParseWatchEvent(
      R"j({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (5)","reason":"Expired","code":410}})j");
  ASSERT_TRUE(err.ok());
  EXPECT_TRUE(absl::IsOutOfRange(WatchErrorStatus(*err)));
}

TEST(ParseWatchEvent, RefusesMalformedLines) {
  EXPECT_FALSE(ParseWatchEvent("").ok());
  EXPECT_FALSE(ParseWatchEvent("{").ok());
  EXPECT_FALSE(ParseWatchEvent(R"({"type":"ADDED"})").ok());
  EXPECT_FALSE(ParseWatchEvent(R"({"type":7,"object":{}})").ok());
  EXPECT_FALSE(ParseWatchEvent(R"({"type":"EXPLODED","object":{}})").ok());
  EXPECT_EQ(ResourceVersionOf(nlohmann::json::object()), "");
  EXPECT_EQ(ResourceVersionOf({{"metadata", {{"resourceVersion", 5}}}}), "");
}

TEST(NameOfTest, NeverThrowsOnMalformedObjects) {
  EXPECT_EQ(NameOf(nlohmann::json::parse(R"({"metadata":{"name":"n1"}})")), "n1");
  EXPECT_EQ(NameOf(nlohmann::json::parse(R"({"metadata":{"name":7}})")), "");
  EXPECT_EQ(NameOf(nlohmann::json::parse(R"({"metadata":null})")), "");
  EXPECT_EQ(NameOf(nlohmann::json::parse(R"({})")), "");
  EXPECT_EQ(NameOf(nlohmann::json::parse(R"([1,2])")), "");
  EXPECT_EQ(NameOf(nlohmann::json(nullptr)), "");
}

}  // namespace
}  // namespace weft::k8s
