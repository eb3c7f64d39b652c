#include "lib/ipam/file_store.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "lib/testing/status_matchers.h"

namespace weft::ipam {
namespace {

class FileStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/weft-ipam-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

net::IpPrefix Cidr(const char* s) { return *net::IpPrefix::Parse(s); }

TEST_F(FileStoreTest, ChangesPersistAcrossOpens) {
  {
    auto store = FileStore::Open(dir_ + "/a/b");
    WEFT_ASSERT_OK(store);
    WEFT_ASSERT_OK(store->Update([](Pool& p) { return p.Allocate(Cidr("10.0.0.0/24"), {"c", "eth0"}, "", "").status(); }));
  }
  auto store = FileStore::Open(dir_ + "/a/b");
  auto pool = store->Read();
  WEFT_ASSERT_OK(pool);
  EXPECT_EQ(pool->allocations().size(), 1u);
}

TEST_F(FileStoreTest, FailedUpdateWritesNothing) {
  auto store = FileStore::Open(dir_);
  absl::Status s = store->Update([](Pool& p) {
    (void)p.Allocate(Cidr("10.0.0.0/24"), {"c", "eth0"}, "", "");
    return absl::InternalError("boom");
  });
  EXPECT_THAT(s, testing::StatusIs(absl::StatusCode::kInternal, "boom"));
  EXPECT_EQ(store->Read()->allocations().size(), 0u);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/state"));
}

TEST_F(FileStoreTest, AStateFromAnotherBootIsEmpty) {
  {
    auto store = FileStore::Open(dir_, "boot-a");
    WEFT_ASSERT_OK(store->Update([](Pool& p) { return p.Allocate(Cidr("10.0.0.0/24"), {"c", "eth0"}, "", "").status(); }));
    EXPECT_EQ(store->Read()->allocations().size(), 1u);
  }
  auto rebooted = FileStore::Open(dir_, "boot-b");
  EXPECT_EQ(rebooted->Read()->allocations().size(), 0u);
  // A first line torn by a power loss reads the same way.
  std::ofstream(dir_ + "/state") << std::string("\0\0\0garbage", 10);
  EXPECT_EQ(rebooted->Read()->allocations().size(), 0u);
  WEFT_EXPECT_OK(rebooted->Update([](Pool& p) { return p.Allocate(Cidr("10.0.0.0/24"), {"d", "eth0"}, "", "").status(); }));
  EXPECT_EQ(rebooted->Read()->allocations().size(), 1u);
}

TEST_F(FileStoreTest, ACorruptStateIsRecoveredKeepingEveryAddressItCanRead) {
  auto store = FileStore::Open(dir_, "boot-x");
  // Written by an agent before fields were escaped: a pod name with a space and a newline.
  const std::string corrupt = "weft-ipam 1 boot=boot-x\nalloc 10.0.0.2 c1 eth0 default my pod\nname\nnot a record\n";
  std::ofstream(dir_ + "/state") << corrupt;
  auto read = store->Read();
  WEFT_ASSERT_OK(read);
  ASSERT_EQ(read->allocations().size(), 1u);
  EXPECT_EQ(read->allocations().begin()->second.pod_name, "my pod");
  // An ADD works, never hands out the recovered address, and the store is clean again.
  WEFT_EXPECT_OK(store->Update([](Pool& p) {
    auto a = p.Allocate(Cidr("10.0.0.0/24"), {"c2", "eth0"}, "", "");
    if (a.ok() && a->ip.ToString() == "10.0.0.2") return absl::InternalError("handed out twice");
    return a.status();
  }));
  std::ifstream in(dir_ + "/state");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  WEFT_EXPECT_OK(Pool::Parse(text.substr(text.find('\n') + 1)));
  std::ifstream aside(dir_ + "/state.corrupt");
  std::string kept((std::istreambuf_iterator<char>(aside)), std::istreambuf_iterator<char>());
  EXPECT_EQ(kept, corrupt);
  // DEL of the recovered pod finds it.
  WEFT_EXPECT_OK(store->Update([](Pool& p) {
    if (p.FindAll({"c1", "eth0"}).empty()) return absl::NotFoundError("c1 lost");
    p.Release({"c1", "eth0"});
    return absl::OkStatus();
  }));
}

// Several processes allocating at once never hand out one address twice.
TEST_F(FileStoreTest, ConcurrentProcessesGetDistinctAddresses) {
  constexpr int kProcs = 8, kEach = 10;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto store = FileStore::Open(dir_);
      for (int i = 0; i < kEach && store.ok(); ++i) {
        std::string cid = "p" + std::to_string(p) + "i" + std::to_string(i);
        if (!store->Update([&](Pool& pool) { return pool.Allocate(Cidr("10.0.0.0/24"), {cid, "eth0"}, "", "").status(); }).ok()) _exit(1);
      }
      _exit(store.ok() ? 0 : 1);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  auto store = FileStore::Open(dir_);
  auto pool = store->Read();
  WEFT_ASSERT_OK(pool);
  EXPECT_EQ(pool->allocations().size(), static_cast<size_t>(kProcs * kEach));
}

}  // namespace
}  // namespace weft::ipam
