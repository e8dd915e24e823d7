#include "transfer/backup.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>

#include "store/rocks_store.h"

namespace mail::transfer {
namespace {
namespace fs = std::filesystem;

class Backup : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("backup_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ASSERT_TRUE(backup_keygen((dir_ / "key").string()).is_ok());
    key_.key_file = (dir_ / "key").string();
    store_ = open("src");
    ASSERT_TRUE(store_->domain_add({"example.test"}).is_ok());
    auto a = store_->account_add({"user@example.test", {"hash-of-pw", {}}, {1000000, 0}, "User"});
    ASSERT_TRUE(a.is_ok());
    account_ = *a;
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  std::unique_ptr<store::RocksStore> open(const std::string& name) {
    auto s = store::RocksStore::open({(dir_ / name).string(), 8, false});
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    return s.is_ok() ? std::move(s).value() : nullptr;
  }
  store::Uid deliver(const std::string& mailbox, const std::string& text, uint32_t flags = 0) {
    store::DeliverReq req;
    req.content = text;
    req.internal_date = 1700000000;
    store::DeliveryTarget t;
    t.account = account_.id;
    t.mailbox_name = mailbox;
    t.flags = flags;
    req.targets.push_back(t);
    auto r = store_->deliver(req);
    EXPECT_TRUE(r.is_ok());
    return r.is_ok() ? r->results[0].uid : 0;
  }
  store::MailboxId box(store::Store& s, const std::string& address, const std::string& name) {
    auto a = s.account_get({address});
    auto m = s.mailbox_get({a->id, name});
    return m.is_ok() ? m->id : 0;
  }
  // mailbox -> sorted (content, flags, keywords, date)
  using Snapshot = std::map<std::string, std::vector<std::tuple<std::string, uint32_t, std::vector<std::string>, int64_t>>>;
  Snapshot snapshot(store::Store& s, const std::string& address) {
    Snapshot out;
    auto a = s.account_get({address});
    auto boxes = s.mailbox_list({a->id});
    for (const auto& m : boxes->mailboxes) {
      auto& v = out[m.name];
      auto list = s.message_list({m.id});
      EXPECT_TRUE(list.is_ok()) << m.name << " " << m.id << ": " << list.status().to_string();
      if (!list) continue;
      for (const auto& e : list->messages)
        v.emplace_back(s.content_get({e.content})->bytes, e.flags, e.keywords, e.internal_date);
      std::sort(v.begin(), v.end());
    }
    return out;
  }
  // mailbox -> (UIDVALIDITY, UIDNEXT, [(uid, flags, keywords)]): what IMAP clients cache.
  using UidSnapshot = std::map<std::string, std::tuple<uint32_t, store::Uid, std::vector<std::tuple<store::Uid, uint32_t, std::vector<std::string>>>>>;
  UidSnapshot uids(store::Store& s, const std::string& address) {
    UidSnapshot out;
    auto a = s.account_get({address});
    auto boxes = s.mailbox_list({a->id});
    for (const auto& m : boxes->mailboxes) {
      auto list = s.message_list({m.id});
      if (!list) continue;
      auto& [validity, next, v] = out[m.name];
      validity = m.uidvalidity;
      next = m.uidnext;
      for (const auto& e : list->messages) v.emplace_back(e.uid, e.flags, e.keywords);
    }
    return out;
  }
  BackupInfo create(bool incremental) {
    BackupCreateOptions o;
    o.key = key_;
    o.dest = (dir_ / "backups").string();
    o.incremental = incremental;
    o.chunk_bytes = 4096;  // several chunks even for a small store
    auto r = backup_create(*store_, o);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? *r : BackupInfo{};
  }

  fs::path dir_;
  BackupKey key_;
  std::unique_ptr<store::RocksStore> store_;
  store::AccountInfo account_;
};

TEST_F(Backup, IncrementalChainRestoresLikeTheSource) {
  for (int i = 0; i < 20; ++i) deliver("INBOX", "Subject: " + std::to_string(i) + "\r\n\r\n" + std::string(500, 'a' + i % 26) + "\r\n");
  auto full = create(false);
  EXPECT_EQ(full.kind, "full");
  EXPECT_GT(full.chunks, 1u);
  EXPECT_EQ(full.messages, 20u);

  // Changes: new messages, flag changes, an expunge, a new mailbox.
  store::MailboxId inbox = box(*store_, "user@example.test", "INBOX");
  deliver("INBOX", "Subject: new\r\n\r\nnew\r\n", store::flag::flagged);
  ASSERT_TRUE(store_->flags_update({inbox, {1, 2}, store::FlagMode::add, store::flag::seen, {"$Label1"}}).is_ok());
  ASSERT_TRUE(store_->expunge({inbox, {3}}).is_ok());
  ASSERT_TRUE(store_->mailbox_create({account_.id, "Projects"}).is_ok());
  deliver("Projects", "Subject: p\r\n\r\np\r\n");
  auto inc1 = create(true);
  EXPECT_EQ(inc1.kind, "incremental");
  EXPECT_EQ(inc1.parent, full.id);
  EXPECT_EQ(inc1.messages, 2u);

  ASSERT_TRUE(store_->flags_update({inbox, {1}, store::FlagMode::remove, store::flag::seen, {}}).is_ok());
  ASSERT_TRUE(store_->expunge({inbox, {4, 21}}).is_ok());
  deliver("Projects", "Subject: q\r\n\r\nq\r\n", store::flag::answered);
  auto inc2 = create(true);
  EXPECT_EQ(inc2.parent, inc1.id);
  EXPECT_EQ(inc2.messages, 1u);

  for (const auto& b : {full, inc1, inc2}) EXPECT_TRUE(backup_verify(b.path, key_).is_ok()) << b.id;

  auto want = snapshot(*store_, "user@example.test");
  auto target = open("restored");
  auto stats = backup_restore(*target, inc2.path, {key_});
  ASSERT_TRUE(stats.is_ok()) << stats.status().to_string();
  EXPECT_EQ(stats->backups, 3u);
  EXPECT_EQ(snapshot(*target, "user@example.test"), want);
  EXPECT_EQ(uids(*target, "user@example.test"), uids(*store_, "user@example.test"));
  // Credentials and quota came back too.
  auto auth = target->account_auth({"user@example.test"});
  ASSERT_TRUE(auth.is_ok());
  EXPECT_EQ(auth->credentials.password_hash, "hash-of-pw");
  EXPECT_EQ(auth->account.quota.max_bytes, 1000000u);

  // A full backup now restores to the same state as the chain.
  auto full2 = create(false);
  auto target2 = open("restored2");
  ASSERT_TRUE(backup_restore(*target2, full2.path, {key_}).is_ok());
  EXPECT_EQ(snapshot(*target2, "user@example.test"), want);

  // Everything only into an empty store.
  EXPECT_EQ(backup_restore(*target2, full2.path, {key_}).code(), Code::not_empty);
}

TEST_F(Backup, ChainSurvivesMailboxesDeletedRecreatedAndSwapped) {
  ASSERT_TRUE(store_->mailbox_create({account_.id, "Old"}).is_ok());
  ASSERT_TRUE(store_->mailbox_create({account_.id, "A"}).is_ok());
  ASSERT_TRUE(store_->mailbox_create({account_.id, "B"}).is_ok());
  for (int i = 0; i < 3; ++i) deliver("Old", "Subject: old " + std::to_string(i) + "\r\n\r\nx\r\n");
  deliver("A", "Subject: a\r\n\r\na\r\n");
  deliver("B", "Subject: b\r\n\r\nb\r\n");
  create(false);

  // The name comes back as a new mailbox (new UIDVALIDITY, UIDs from 1), and
  // A and B swap names through a third one.
  ASSERT_TRUE(store_->mailbox_delete({account_.id, "Old"}).is_ok());
  ASSERT_TRUE(store_->mailbox_create({account_.id, "Old"}).is_ok());
  deliver("Old", "Subject: new\r\n\r\ny\r\n");
  ASSERT_TRUE(store_->mailbox_rename({account_.id, "A", "T"}).is_ok());
  ASSERT_TRUE(store_->mailbox_rename({account_.id, "B", "A"}).is_ok());
  ASSERT_TRUE(store_->mailbox_rename({account_.id, "T", "B"}).is_ok());
  auto inc = create(true);

  auto target = open("restored");
  auto stats = backup_restore(*target, inc.path, {key_});
  ASSERT_TRUE(stats.is_ok()) << stats.status().to_string();
  EXPECT_EQ(snapshot(*target, "user@example.test"), snapshot(*store_, "user@example.test"));
  EXPECT_EQ(uids(*target, "user@example.test"), uids(*store_, "user@example.test"));
}

TEST_F(Backup, VerifyNamesTheDamagedChunkAndTellsWrongKeys) {
  for (int i = 0; i < 30; ++i) deliver("INBOX", "Subject: " + std::to_string(i) + "\r\n\r\n" + std::string(2000, 'x') + std::to_string(i) + "\r\n");
  auto b = create(false);
  ASSERT_GT(b.chunks, 2u);
  ASSERT_TRUE(backup_verify(b.path, key_).is_ok());

  std::ifstream in(b.path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string data = ss.str();
  // Flip a byte inside the second chunk's data (just after its tar header).
  size_t at = data.find("chunks/000002");
  ASSERT_NE(at, std::string::npos);
  size_t payload = (at / 512 + 1) * 512 + 100;
  std::string bad = data;
  bad[payload] ^= 0x01;
  std::string bad_path = (dir_ / "bad.mbak").string();
  std::ofstream(bad_path, std::ios::binary) << bad;
  auto v = backup_verify(bad_path, key_);
  ASSERT_FALSE(v.is_ok());
  EXPECT_EQ(v.code(), Code::corrupt);
  EXPECT_NE(v.status().message().find("chunks/000002: damaged"), std::string::npos) << v.status().message();

  // Truncated: no manifest.
  std::ofstream(bad_path, std::ios::binary) << data.substr(0, data.size() / 2);
  EXPECT_EQ(backup_verify(bad_path, key_).code(), Code::corrupt);

  // Another key, or a passphrase for a key-file backup.
  ASSERT_TRUE(backup_keygen((dir_ / "other").string()).is_ok());
  auto wrong = backup_verify(b.path, {(dir_ / "other").string()});
  EXPECT_EQ(wrong.code(), Code::denied);
  EXPECT_NE(wrong.status().message().find("wrong key"), std::string::npos);
  EXPECT_EQ(backup_keygen((dir_ / "other").string()).code(), Code::exists);

  // Passphrase backups.
  BackupCreateOptions o;
  o.key = {"", "correct horse", true};
  o.dest = (dir_ / "pp").string();
  auto pb = backup_create(*store_, o);
  ASSERT_TRUE(pb.is_ok()) << pb.status().to_string();
  EXPECT_TRUE(backup_verify(pb->path, {"", "correct horse", true}).is_ok());
  EXPECT_EQ(backup_verify(pb->path, {"", "battery staple", true}).code(), Code::denied);
  EXPECT_EQ(backup_verify(pb->path, key_).code(), Code::denied);
}

TEST_F(Backup, RestoresOneMailboxUnderANewNameIntoALiveStore) {
  deliver("INBOX", "Subject: a\r\n\r\na\r\n", store::flag::seen);
  deliver("Sent", "Subject: s\r\n\r\ns\r\n");
  auto b = create(false);
  // The mailbox is lost...
  store::MailboxId inbox = box(*store_, "user@example.test", "INBOX");
  ASSERT_TRUE(store_->expunge({inbox, {1}}).is_ok());
  // ... and comes back beside INBOX.
  RestoreOptions o{key_, "user@example.test", "INBOX", "Restored"};
  auto r = backup_restore(*store_, b.path, o);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->messages, 1u);
  auto snap = snapshot(*store_, "user@example.test");
  ASSERT_EQ(snap["Restored"].size(), 1u);
  EXPECT_EQ(std::get<1>(snap["Restored"][0]), store::flag::seen);
  EXPECT_EQ(snap["INBOX"].size(), 0u);
  EXPECT_EQ(snap["Sent"].size(), 1u);

  // A whole account under a new address.
  RestoreOptions as{key_, "user@example.test", "", "copy@example.test"};
  ASSERT_TRUE(backup_restore(*store_, b.path, as).is_ok());
  EXPECT_EQ(snapshot(*store_, "copy@example.test")["Sent"].size(), 1u);

  EXPECT_EQ(backup_restore(*store_, b.path, {key_, "nobody@example.test"}).code(), Code::not_found);
}

TEST(BackupPrune, KeepsRetainedBackupsAndTheirChains) {
  auto at = [](int day, int hour) { return int64_t{1767225600} + day * 86400 + hour * 3600; };  // 2026-01-01
  std::vector<BackupInfo> all;
  auto add = [&](std::string id, std::string parent, int64_t t) {
    BackupInfo b;
    b.id = std::move(id);
    b.parent = std::move(parent);
    b.kind = b.parent.empty() ? "full" : "incremental";
    b.created = t;
    all.push_back(b);
  };
  add("a-full", "", at(0, 1));
  add("b-incr", "a-full", at(0, 5));
  add("c-incr", "b-incr", at(1, 1));
  add("d-full", "", at(2, 1));
  add("e-incr", "d-full", at(3, 1));
  add("f-incr", "e-incr", at(3, 9));
  auto gone = backups_to_prune(all, {2, 0, 0});
  std::vector<std::string> ids;
  for (const auto& b : gone) ids.push_back(b.id);
  // Kept: f (day 3, with e and d), d (day 2) -> a, b, c go.
  EXPECT_EQ(ids, (std::vector<std::string>{"a-full", "b-incr", "c-incr"}));
  // Keeping day 1's newest (c) keeps its chain a <- b <- c.
  gone = backups_to_prune(all, {3, 0, 0});
  EXPECT_TRUE(gone.empty());
  gone = backups_to_prune(all, {1, 0, 0});
  ids.clear();
  for (const auto& b : gone) ids.push_back(b.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"a-full", "b-incr", "c-incr"}));
}

TEST_F(Backup, WholeStoreRestoreKeepsUidsAndStoresEachContentOnce) {
  for (int i = 0; i < 40; ++i)
    deliver("INBOX", "Subject: " + std::to_string(i) + "\r\n\r\n" + std::string(300 + i, 'x') + "\r\n",
            i % 3 ? 0u : store::flag::seen);
  store::MailboxId inbox = box(*store_, "user@example.test", "INBOX");
  store::MailboxId archive = box(*store_, "user@example.test", "Archive");
  // Copies share their content; expunges leave gaps and UIDNEXT above the last UID.
  ASSERT_TRUE(store_->copy({inbox, {2, 5, 7, 40}, archive, false}).is_ok());
  ASSERT_TRUE(store_->expunge({inbox, {3, 39, 40}}).is_ok());
  ASSERT_TRUE(store_->flags_update({archive, {1}, store::FlagMode::add, 0, {"$Work"}}).is_ok());
  auto full = create(false);
  auto src = store_->stats({});
  ASSERT_TRUE(src.is_ok());

  for (unsigned jobs : {1u, 8u}) {
    auto target = open("restored" + std::to_string(jobs));
    RestoreOptions o{key_};
    o.jobs = jobs;
    ASSERT_TRUE(backup_restore(*target, full.path, o).is_ok());
    EXPECT_EQ(uids(*target, "user@example.test"), uids(*store_, "user@example.test")) << "jobs " << jobs;
    EXPECT_EQ(snapshot(*target, "user@example.test"), snapshot(*store_, "user@example.test"));
    auto got = target->stats({});
    ASSERT_TRUE(got.is_ok());
    EXPECT_EQ(got->messages, src->messages);
    EXPECT_EQ(got->contents, src->contents);
    EXPECT_EQ(got->content_bytes, src->content_bytes);
    // HIGHESTMODSEQ never goes back, and new mailboxes get a new UIDVALIDITY.
    auto a = target->account_get({"user@example.test"});
    auto restored_inbox = target->mailbox_get({a->id, "INBOX"});
    EXPECT_GT(restored_inbox->highest_modseq, store_->mailbox_get({account_.id, "INBOX"})->highest_modseq);
    auto fresh = target->mailbox_create({a->id, "Fresh"});
    ASSERT_TRUE(fresh.is_ok());
    EXPECT_GT(fresh->uidvalidity, restored_inbox->uidvalidity);
  }
}

}  // namespace
}  // namespace mail::transfer
