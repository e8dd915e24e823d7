#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

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

}  // namespace
}  // namespace mail::store
