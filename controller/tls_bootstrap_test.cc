#include "controller/tls_bootstrap.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <thread>

#include "absl/strings/escaping.h"
#include "tests/kube/fake_apiserver.h"
#include "weft/v1/weft.grpc.pb.h"

namespace weft::controller {
namespace {

TEST(TlsBootstrap, GeneratesACaAndAServerCertificate) {
  auto t = GenerateTls({"weft-controller.kube-system.svc"});
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_NE(t->ca_pem.find("BEGIN CERTIFICATE"), std::string::npos);
  EXPECT_NE(t->cert_pem.find("BEGIN CERTIFICATE"), std::string::npos);
  EXPECT_NE(t->key_pem.find("PRIVATE KEY"), std::string::npos);
  EXPECT_FALSE(GenerateTls({}).ok());
}

TEST(TlsBootstrap, AddressesBecomeIpSans) {
  auto t = GenerateTls({"weft-controller.kube-system.svc", "198.51.100.200", "2001:db8::1"});
  ASSERT_TRUE(t.ok()) << t.status();
  BIO* bio = BIO_new_mem_buf(t->cert_pem.data(), static_cast<int>(t->cert_pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(X509_check_host(cert, "weft-controller.kube-system.svc", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(cert, "198.51.100.200", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert, "2001:db8::1", 0), 1);
  EXPECT_NE(X509_check_host(cert, "198.51.100.200", 0, 0, nullptr), 1) << "not as a DNS name";
  X509_free(cert);
}

TEST(TlsBootstrap, OneSecretForAllReplicasAndTheCaPublished) {
  auto api = testing::FakeApiServer::Start();
  ASSERT_TRUE(api.ok());
  k8s::KubeClient client({.server = (*api)->url()});
  TlsBootstrapOptions o{.dns_names = {"weft-controller.kube-system.svc"}};
  auto first = EnsureTls(client, o);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = EnsureTls(client, o);  // another replica
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->key_pem, second->key_pem);
  auto secret = (*api)->Get("/api/v1/namespaces/kube-system/secrets/weft-controller-tls");
  ASSERT_TRUE(secret);
  EXPECT_EQ((*secret)["type"], "kubernetes.io/tls");
  auto cm = (*api)->Get("/api/v1/namespaces/kube-system/configmaps/weft-ca");
  ASSERT_TRUE(cm);
  EXPECT_EQ((*cm)["data"]["ca.crt"], first->ca_pem);
}

// The certificate really serves gRPC: a client that trusts the published CA connects to
// the DNS name; one that does not trust it fails the handshake.
TEST(TlsBootstrap, AgentsVerifyTheControllerWithThePublishedCa) {
  auto t = GenerateTls({"weft-controller.kube-system.svc"});
  ASSERT_TRUE(t.ok());
  grpc::SslServerCredentialsOptions so;
  so.pem_key_cert_pairs.push_back({t->key_pem, t->cert_pem});
  grpc::ServerBuilder b;
  v1::EndpointService::CallbackService service;  // any service: the handshake is the test
  b.RegisterService(&service);
  int port = 0;
  b.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(so), &port);
  auto server = b.BuildAndStart();
  ASSERT_NE(port, 0);
  auto connects = [&](const std::string& roots) {
    grpc::SslCredentialsOptions co;
    co.pem_root_certs = roots;
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("weft-controller.kube-system.svc");
    auto ch = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port), grpc::SslCredentials(co), args);
    return ch->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(3));
  };
  EXPECT_TRUE(connects(t->ca_pem));
  auto other = GenerateTls({"weft-controller.kube-system.svc"});
  EXPECT_FALSE(connects(other->ca_pem));
  server->Shutdown();
}

}  // namespace
}  // namespace weft::controller
