#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>

#include "store/rocks_store.h"
#include "store/store.h"
#include "store/store_server.h"

namespace mail::store {
namespace {

class OpenStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/openstoreXXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    paths_.data_dir = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(paths_.data_dir); }
  StorePaths paths_;
};

TEST_F(OpenStoreTest, DaemonModeWithoutDaemonSaysSo) {
  auto r = open_store(paths_, OpenMode::daemon);
  ASSERT_EQ(r.code(), Code::unavailable);
  EXPECT_EQ(r.status().message(), "mail-stored is not running (no socket at " + paths_.socket_path() + ")");
}

TEST_F(OpenStoreTest, AutomaticOpensDirectlyWhenNoDaemonRuns) {
  auto r = open_store(paths_);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ((*r)->backend_name(), "rocksdb");
  // A second opener in the same situation is refused, never shares the database.
  auto second = open_store(paths_, OpenMode::direct);
  EXPECT_EQ(second.code(), Code::busy);
}

TEST_F(OpenStoreTest, AutomaticGoesThroughTheDaemonWhenItAnswers) {
  RocksStore::Options o;
  o.data_dir = paths_.data_dir;
  auto rocks = RocksStore::open(o);
  ASSERT_TRUE(rocks.is_ok()) << rocks.status().to_string();
  StoreServer server(**rocks);
  ASSERT_TRUE(server.listen(paths_.socket_path()).is_ok());
  for (OpenMode mode : {OpenMode::automatic, OpenMode::daemon}) {
    auto r = open_store(paths_, mode);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_EQ((*r)->backend_name(), "remote(rocksdb)");
    auto d = (*r)->domain_add({"example.org"});
    if (mode == OpenMode::automatic) ASSERT_TRUE(d.is_ok()) << d.status().to_string();
    else EXPECT_EQ(d.code(), Code::exists);
  }
  EXPECT_EQ(open_store(paths_, OpenMode::direct).code(), Code::busy);
}

TEST_F(OpenStoreTest, ChangeEventsOfTheDaemonReachRemoteSubscribers) {
  RocksStore::Options o;
  o.data_dir = paths_.data_dir;
  auto rocks = RocksStore::open(o);
  ASSERT_TRUE(rocks.is_ok()) << rocks.status().to_string();
  StoreServer server(**rocks);
  ASSERT_TRUE(server.listen(paths_.socket_path()).is_ok());
  auto r = open_store(paths_, OpenMode::daemon);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  Store& store = **r;
  ASSERT_TRUE(store.domain_add({"example.org"}).is_ok());
  auto account = store.account_add({"a@example.org", {}, {}, ""});
  ASSERT_TRUE(account.is_ok()) << account.status().to_string();

  std::mutex mu;
  std::condition_variable cv;
  std::vector<ChangeEvent> got;
  auto sub = store.subscribe(account->id, [&](const std::vector<ChangeEvent>& events) {
    std::lock_guard lock(mu);
    got.insert(got.end(), events.begin(), events.end());
    cv.notify_all();
  });
  ASSERT_TRUE(sub.is_ok()) << sub.status().to_string();
  DeliverReq req;
  req.content = "Subject: hi\r\n\r\nhello\r\n";
  req.targets.push_back(DeliveryTarget{account->id, 0, "INBOX", 0, {}, true});
  auto d = store.deliver(req);
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  ASSERT_EQ(d->results.size(), 1u);
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(5), [&] {
    for (auto& e : got)
      if (e.kind == ChangeKind::appended && e.uids == std::vector<Uid>{d->results[0].uid}) return true;
    return false;
  }));
}

}  // namespace
}  // namespace mail::store
