#include "weftctl/document.h"

#include <gtest/gtest.h>

#include "weftctl/explain.h"

namespace weft::weftctl {
namespace {

// What `kubectl get weftnodes -o yaml` prints (kubectl 1.20, trimmed): a List.
constexpr char kKubectlYaml[] = R"(apiVersion: v1
items:
- apiVersion: weft.dev/v1alpha1
  kind: WeftNode
  metadata:
    name: aws1
    resourceVersion: "123"
  status:
    nat:
      mapping: endpoint-dependent
      filtering: address-and-port-dependent
      type: hard
    peers:
    - name: home1
      path: relay
      reason: 'relayed: aws1 is behind endpoint-dependent NAT'
    snat:
      randomized: true
      reason: NatGateway
      message: give the node a public IP
kind: List
metadata:
  resourceVersion: ""
  selfLink: ""
)";

TEST(ParseDocument, KubectlYamlListExplains) {
  auto doc = ParseDocument(kKubectlYaml);
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ((*doc)["kind"], "List");
  EXPECT_EQ((*doc)["items"][0]["metadata"]["resourceVersion"], "123");  // quoted stays a string
  EXPECT_EQ((*doc)["items"][0]["status"]["snat"]["randomized"], true);
  auto text = Explain(*doc, "aws1", "home1");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_NE(text->find("aws1 -> home1: relay"), std::string::npos) << *text;
}

TEST(ParseDocument, KubectlJsonListExplains) {
  // `kubectl get weftnodes -o json` says "List", not "WeftNodeList".
  auto doc = ParseDocument(R"({"apiVersion": "v1", "kind": "List", "items": [
      {"apiVersion": "weft.dev/v1alpha1", "kind": "WeftNode", "metadata": {"name": "k1"},
       "status": {"nat": {"type": "easy"}, "peers": [{"name": "k2", "path": "direct", "reason": "both easy"}]}}],
      "metadata": {"resourceVersion": ""}})");
  ASSERT_TRUE(doc.ok());
  auto text = Explain(*doc, "k1", "k2");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_NE(text->find("k1 -> k2: direct\n  why: both easy"), std::string::npos) << *text;
}

TEST(ParseDocument, ScalarsFollowYaml) {
  auto doc = ParseDocument("a: 1\nb: 1.5\nc: 'true'\nd: true\ne: ~\nf: 10.0.0.0/8\ng: \"7\"\n");
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ((*doc)["a"], 1);
  EXPECT_EQ((*doc)["b"], 1.5);
  EXPECT_EQ((*doc)["c"], "true");
  EXPECT_EQ((*doc)["d"], true);
  EXPECT_TRUE((*doc)["e"].is_null());
  EXPECT_EQ((*doc)["f"], "10.0.0.0/8");
  EXPECT_EQ((*doc)["g"], "7");
}

TEST(ParseDocuments, HelmTemplateStream) {
  auto docs = ParseDocuments("---\n# Source: a\napiVersion: v1\nkind: ServiceAccount\n---\n---\nkind: List\nitems: []\n");
  ASSERT_TRUE(docs.ok()) << docs.status();
  ASSERT_EQ(docs->size(), 2u);
  EXPECT_EQ((*docs)[0]["kind"], "ServiceAccount");
  EXPECT_EQ((*docs)[1]["kind"], "List");
}

TEST(ParseDocument, NeitherIsAnError) {
  auto doc = ParseDocument("a: [1, 2\n");
  EXPECT_TRUE(absl::IsInvalidArgument(doc.status()));
}

}  // namespace
}  // namespace weft::weftctl
