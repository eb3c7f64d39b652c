// The stream lifecycle under churn: thousands of agents connecting and going away at
// every point (before Hello, during admission, after Welcome), junk tokens, slow readers,
// leadership flipping under them. Run under ASan in CI (scripts/test.sh): no crash, no
// use-after-free, no leak, and nothing left registered.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "controller/controller_service.h"
#include "lib/api/trailers.h"
#include "gtest/gtest.h"

namespace weft::controller {
namespace {

constexpr int kCycles = 10000;
constexpr int kClients = 16;

TEST(AgentStreamChurnTest, ConnectCancelCyclesLeaveNothingBehind) {
  std::atomic<int> admitted{0}, reviews{0};
  ControllerService service(
      [&](const v1::Hello& h) -> absl::StatusOr<std::vector<std::string>> {
        ++reviews;
        // A TokenReview takes a while; some take longer.
        std::this_thread::sleep_for(std::chrono::microseconds(h.node().size() % 3 == 0 ? 2000 : 100));
        if (h.token() != "good") return absl::UnauthenticatedError("token refused");
        ++admitted;
        return std::vector<std::string>{"10.244.1.0/24"};
      },
      {"10.244.0.0/16"});
  service.SetLeading(true);
  grpc::ServerBuilder b;
  int port = 0;
  b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  b.RegisterService(&service);
  auto server = b.BuildAndStart();
  ASSERT_NE(port, 0);
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  auto stub = v1::EndpointService::NewStub(channel);

  std::atomic<int> next{0}, welcomed{0};
  std::atomic<bool> done{false};
  // Leadership flips now and then: every stream is ended from another thread, and
  // standbys refuse Hellos, while admissions are in flight.
  std::thread flipper([&] {
    for (int i = 0; !done; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(40));
      service.SetLeading(i % 4 != 0);
    }
    service.SetLeading(true);
  });
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i; (i = next++) < kCycles;) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        auto stream = stub->Connect(&ctx);
        v1::AgentMessage hello;
        hello.mutable_hello()->set_node(absl::StrCat("node-", i % 200));
        hello.mutable_hello()->set_token(rng() % 3 == 0 ? "junk" : "good");
        switch (rng() % 5) {
          case 0:  // gone before saying anything
            ctx.TryCancel();
            break;
          case 1:  // gone right after Hello, likely mid-admission
            stream->Write(hello);
            ctx.TryCancel();
            break;
          case 2:  // gone a moment into admission
            stream->Write(hello);
            std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
            ctx.TryCancel();
            break;
          case 3: {  // waits for its answer (Welcome, or a refusal), then goes
            stream->Write(hello);
            v1::ControllerMessage m;
            if (stream->Read(&m) && m.has_welcome()) ++welcomed;
            ctx.TryCancel();
            break;
          }
          default:  // a slow client: says Hello, never reads, closes its side
            stream->Write(hello);
            stream->WritesDone();
            std::this_thread::sleep_for(std::chrono::microseconds(rng() % 1000));
            ctx.TryCancel();
        }
        stream->Finish();
      }
    });
  }
  for (auto& c : clients) c.join();
  done = true;
  flipper.join();
  // Every stream is gone: nothing may stay registered (a stale pointer there is what
  // crashed the controller under churn).
  for (int i = 0; i < 100 && service.connected() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(service.connected(), 0u);
  EXPECT_GT(reviews.load(), 0);
  EXPECT_GT(welcomed.load(), 0) << "some agents must have been admitted";
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  std::printf("churn: %d cycles, %d TokenReviews, %d admitted, %d welcomed\n", kCycles, reviews.load(),
              admitted.load(), welcomed.load());
}

// A burst of Hellos larger than the admission queue: the excess is refused at once
// (RESOURCE_EXHAUSTED) instead of costing a thread each, and the threads stay bounded.
TEST(AgentStreamChurnTest, AdmissionIsBounded) {
  std::atomic<bool> release{false};
  ControllerService service(
      [&](const v1::Hello&) -> absl::StatusOr<std::vector<std::string>> {
        while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return absl::UnauthenticatedError("no");
      },
      {"10.244.0.0/16"});
  service.SetLeading(true);
  grpc::ServerBuilder b;
  b.RegisterService(&service);
  auto server = b.BuildAndStart();
  auto stub = v1::EndpointService::NewStub(server->InProcessChannel(grpc::ChannelArguments()));
  const int n = static_cast<int>(ControllerService::kAdmissionQueue + ControllerService::kAdmissionThreads) + 50;
  std::vector<std::unique_ptr<grpc::ClientContext>> ctxs;
  std::vector<std::unique_ptr<grpc::ClientReaderWriter<v1::AgentMessage, v1::ControllerMessage>>> streams;
  v1::AgentMessage hello;
  hello.mutable_hello()->set_node("n");
  for (int i = 0; i < n; ++i) {
    ctxs.push_back(std::make_unique<grpc::ClientContext>());
    streams.push_back(stub->Connect(ctxs.back().get()));
    streams.back()->Write(hello);
  }
  // The last ones find the queue full.
  v1::ControllerMessage m;
  EXPECT_FALSE(streams.back()->Read(&m));
  grpc::Status s = streams.back()->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  release = true;
  for (size_t i = 0; i + 1 < streams.size(); ++i) {
    while (streams[i]->Read(&m)) {
    }
    EXPECT_NE(streams[i]->Finish().error_code(), grpc::StatusCode::OK);
  }
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

// A standby refuses at Hello, before any TokenReview: the agent moves on at once.
TEST(AgentStreamChurnTest, StandbyRefusesBeforeAdmission) {
  std::atomic<int> reviews{0};
  ControllerService service(
      [&](const v1::Hello&) -> absl::StatusOr<std::vector<std::string>> {
        ++reviews;
        return std::vector<std::string>{"10.244.1.0/24"};
      },
      {"10.244.0.0/16"});
  grpc::ServerBuilder b;
  b.RegisterService(&service);
  auto server = b.BuildAndStart();
  auto stub = v1::EndpointService::NewStub(server->InProcessChannel(grpc::ChannelArguments()));
  grpc::ClientContext ctx;
  auto stream = stub->Connect(&ctx);
  v1::AgentMessage hello;
  hello.mutable_hello()->set_node("n");
  stream->Write(hello);
  v1::ControllerMessage m;
  EXPECT_FALSE(stream->Read(&m));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(reviews.load(), 0);
  // Typed, so the agent need not read the message: it retries on a new connection soon.
  auto role = ctx.GetServerTrailingMetadata().find(api::kControllerRoleTrailer);
  ASSERT_NE(role, ctx.GetServerTrailingMetadata().end());
  EXPECT_EQ(role->second, api::kStandby);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

}  // namespace
}  // namespace weft::controller
