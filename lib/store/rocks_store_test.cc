#include "store/rocks_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <thread>

namespace mail::store {
namespace {

class RocksStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("rocks_store_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void reopen() {
    store_.reset();
    auto s = RocksStore::open({dir_.string()});
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    store_ = std::move(s).value();
  }
  AccountInfo add_account(const std::string& address, Quota quota = {}) {
    auto r = store_->account_add({address, {}, quota, ""});
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? *r : AccountInfo{};
  }
  MailboxInfo mailbox(AccountId account, const std::string& name) {
    auto r = store_->mailbox_get({account, name});
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? *r : MailboxInfo{};
  }
  DeliverResp deliver(AccountId account, const std::string& content, const std::string& mailbox_name = "") {
    DeliverReq req;
    req.content = content;
    DeliveryTarget t;
    t.account = account;
    t.mailbox_name = mailbox_name;
    req.targets.push_back(t);
    auto r = store_->deliver(req);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? *r : DeliverResp{};
  }

  std::filesystem::path dir_;
  std::unique_ptr<RocksStore> store_;
};

TEST_F(RocksStoreTest, DomainsAndAccounts) {
  ASSERT_TRUE(store_->domain_add({"Example.COM"}).is_ok());
  EXPECT_EQ(store_->domain_add({"example.com"}).code(), Code::exists);
  ASSERT_TRUE(store_->domain_add({"bücher.example"}).is_ok());
  auto list = store_->domain_list({});
  ASSERT_TRUE(list.is_ok());
  ASSERT_EQ(list->domains.size(), 2u);
  EXPECT_EQ(list->domains[0].name, "example.com");
  EXPECT_EQ(list->domains[1].name, "xn--bcher-kva.example");

  EXPECT_EQ(store_->account_add({"joe@nowhere.test", {}, {}, ""}).code(), Code::not_found);
  EXPECT_EQ(store_->account_add({"not an address", {}, {}, ""}).code(), Code::invalid);
  auto joe = add_account("Joe@Example.com");
  EXPECT_EQ(joe.address, "joe@example.com");
  EXPECT_EQ(store_->account_add({"joe@example.com", {}, {}, ""}).code(), Code::exists);
  EXPECT_EQ(store_->domain_remove({"example.com"}).code(), Code::not_empty);

  auto boxes = store_->mailbox_list({joe.id});
  ASSERT_TRUE(boxes.is_ok());
  EXPECT_EQ(boxes->mailboxes.size(), 6u);

  auto q = store_->quota_set({"joe@example.com", {1000, 5}});
  ASSERT_TRUE(q.is_ok());
  EXPECT_EQ(store_->account_get({"joe@example.com"})->quota.max_bytes, 1000u);

  ASSERT_TRUE(store_->account_remove({"joe@example.com"}).is_ok());
  EXPECT_EQ(store_->account_get({"joe@example.com"}).code(), Code::not_found);
  EXPECT_EQ(store_->account_remove({"joe@example.com"}).code(), Code::not_found);
  EXPECT_TRUE(store_->domain_remove({"example.com"}).is_ok());
  EXPECT_EQ(store_->domain_remove({"example.com"}).code(), Code::not_found);
}

TEST_F(RocksStoreTest, AliasesAndResolve) {
  ASSERT_TRUE(store_->domain_add({"example.com"}).is_ok());
  auto joe = add_account("joe@example.com");
  auto ann = add_account("ann@example.com");
  EXPECT_EQ(store_->alias_add({"joe@example.com", {"ann@example.com"}}).code(), Code::exists);
  ASSERT_TRUE(store_->alias_add({"team@example.com", {"joe@example.com", "ann@example.com", "x@remote.test"}}).is_ok());
  ASSERT_TRUE(store_->alias_add({"@example.com", {"joe@example.com"}}).is_ok());
  EXPECT_EQ(store_->alias_add({"team@example.com", {"joe@example.com"}}).code(), Code::exists);

  auto r = store_->resolve({"team@example.com"});
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->kind, ResolveKind::local);
  EXPECT_EQ(r->accounts, (std::vector<AccountId>{joe.id, ann.id}));
  EXPECT_EQ(r->forwards, (std::vector<std::string>{"x@remote.test"}));

  r = store_->resolve({"ann+lists@example.com"});
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->accounts, (std::vector<AccountId>{ann.id}));
  EXPECT_EQ(r->detail, "lists");

  r = store_->resolve({"nobody@example.com"});  // the catch-all
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->accounts, (std::vector<AccountId>{joe.id}));

  r = store_->resolve({"someone@elsewhere.test"});
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->kind, ResolveKind::remote_domain);

  ASSERT_TRUE(store_->alias_remove({"@example.com", {}}).is_ok());
  r = store_->resolve({"nobody@example.com"});
  EXPECT_EQ(r->kind, ResolveKind::unknown);

  ASSERT_TRUE(store_->alias_remove({"team@example.com", {"x@remote.test"}}).is_ok());
  auto aliases = store_->alias_list({"example.com"});
  ASSERT_EQ(aliases->aliases.size(), 1u);
  EXPECT_EQ(aliases->aliases[0].targets.size(), 2u);
  EXPECT_EQ(store_->alias_remove({"team@example.com", {"x@remote.test"}}).code(), Code::not_found);
  EXPECT_EQ(store_->domain_remove({"example.com"}).code(), Code::not_empty);
}

TEST_F(RocksStoreTest, DeliverListFlagsExpunge) {
  ASSERT_TRUE(store_->domain_add({"example.com"}).is_ok());
  auto joe = add_account("joe@example.com");
  auto first = deliver(joe.id, "Subject: one\r\n\r\nbody one\r\n");
  auto second = deliver(joe.id, "Subject: two\r\n\r\nbody two\r\n");
  ASSERT_EQ(first.results.size(), 1u);
  EXPECT_EQ(first.results[0].uid, 1u);
  EXPECT_EQ(second.results[0].uid, 2u);

  auto inbox = mailbox(joe.id, "inbox");
  EXPECT_EQ(inbox.messages, 2u);
  EXPECT_EQ(inbox.unseen, 2u);
  EXPECT_EQ(inbox.uidnext, 3u);

  auto content = store_->content_get({first.content});
  ASSERT_TRUE(content.is_ok());
  EXPECT_EQ(content->bytes, "Subject: one\r\n\r\nbody one\r\n");

  ModSeq before = inbox.highest_modseq;
  auto upd = store_->flags_update({inbox.id, {1}, FlagMode::add, flag::seen, {"$Label1"}, 0});
  ASSERT_TRUE(upd.is_ok());
  ASSERT_EQ(upd->updated.size(), 1u);
  EXPECT_GT(upd->highest_modseq, before);
  // CONDSTORE: a stale UNCHANGEDSINCE is refused per message.
  auto stale = store_->flags_update({inbox.id, {1, 2}, FlagMode::add, flag::flagged, {}, before});
  ASSERT_TRUE(stale.is_ok());
  EXPECT_EQ(stale->modified, (std::vector<Uid>{1}));
  EXPECT_EQ(stale->updated.size(), 1u);

  auto listed = store_->message_list({inbox.id, 1, 0});
  ASSERT_TRUE(listed.is_ok());
  ASSERT_EQ(listed->messages.size(), 2u);
  EXPECT_EQ(listed->messages[0].flags, flag::seen);
  EXPECT_EQ(listed->messages[0].keywords, (std::vector<std::string>{"$Label1"}));
  EXPECT_EQ(listed->mailbox.unseen, 1u);

  auto changes = store_->changes({inbox.id, before});
  ASSERT_TRUE(changes.is_ok());
  EXPECT_EQ(changes->changed.size(), 2u);

  ModSeq after_flags = changes->highest_modseq;
  auto exp = store_->expunge({inbox.id, {1, 7}});
  ASSERT_TRUE(exp.is_ok());
  EXPECT_EQ(exp->expunged, (std::vector<Uid>{1}));
  changes = store_->changes({inbox.id, after_flags});
  EXPECT_EQ(changes->vanished, (std::vector<Uid>{1}));
  EXPECT_TRUE(changes->changed.empty());
  // The content had one reference: it is gone with its message.
  EXPECT_EQ(store_->content_get({first.content}).code(), Code::not_found);
  EXPECT_EQ(store_->account_get({"joe@example.com"})->used_messages, 1u);
}

// content_get_many answers in the order asked, marks what is gone per item
// and stops after max_bytes (at least one content); blob-sized and small
// contents alike.
TEST_F(RocksStoreTest, ContentGetMany) {
  ASSERT_TRUE(store_->domain_add({"example.com"}).is_ok());
  auto joe = add_account("joe@example.com");
  std::string big = "Subject: big\r\n\r\n" + std::string(5000, 'x') + "\r\n";
  auto a = deliver(joe.id, "Subject: a\r\n\r\na\r\n");
  auto b = deliver(joe.id, big);
  auto c = deliver(joe.id, "Subject: c\r\n\r\nc\r\n");
  auto inbox = mailbox(joe.id, "INBOX");
  ASSERT_TRUE(store_->expunge({inbox.id, {1}}).is_ok());

  auto r = store_->content_get_many({{c.content, a.content, b.content, c.content}, 0});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_EQ(r->contents.size(), 4u);
  EXPECT_EQ(r->contents[0].code, Code::ok);
  EXPECT_EQ(r->contents[0].bytes, "Subject: c\r\n\r\nc\r\n");
  EXPECT_EQ(r->contents[1].code, Code::not_found);
  EXPECT_TRUE(r->contents[1].bytes.empty());
  EXPECT_EQ(r->contents[2].bytes, big);
  EXPECT_EQ(r->contents[3].bytes, r->contents[0].bytes);

  // The limit is reached after the big one: what follows is left out.
  r = store_->content_get_many({{b.content, c.content}, 100});
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->contents.size(), 1u);
  EXPECT_EQ(r->contents[0].bytes, big);
  // Many ids: more than one MultiGet slice.
  std::vector<ContentId> ids(200, c.content);
  r = store_->content_get_many({ids, 0});
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->contents.size(), 200u);
  EXPECT_EQ(r->contents[199].bytes, r->contents[0].bytes);
  EXPECT_TRUE(store_->content_get_many({{}, 0})->contents.empty());
}

TEST_F(RocksStoreTest, CopyMoveShareContent) {
  ASSERT_TRUE(store_->domain_add({"example.com"}).is_ok());
  auto joe = add_account("joe@example.com");
  auto d = deliver(joe.id, "Subject: x\r\n\r\nx\r\n");
  auto inbox = mailbox(joe.id, "INBOX");
  auto archive = mailbox(joe.id, "Archive");
  auto copied = store_->copy({inbox.id, {1}, archive.id, false});
  ASSERT_TRUE(copied.is_ok());
  EXPECT_EQ(copied->dest_uids, (std::vector<Uid>{1}));
  EXPECT_EQ(store_->content_meta({{d.content}})->metas[0].refs, 2u);
  auto moved = store_->copy({archive.id, {1}, inbox.id, true});
  ASSERT_TRUE(moved.is_ok());
  EXPECT_EQ(moved->dest_uids, (std::vector<Uid>{2}));
  EXPECT_EQ(mailbox(joe.id, "Archive").messages, 0u);
  EXPECT_EQ(mailbox(joe.id, "INBOX").messages, 2u);
  EXPECT_EQ(store_->content_meta({{d.content}})->metas[0].refs, 2u);
  ASSERT_TRUE(store_->expunge({inbox.id, {1, 2}}).is_ok());
  EXPECT_EQ(store_->content_meta({{d.content}})->metas[0].id, 0u);
  EXPECT_EQ(store_->stats({})->contents, 0u);
}

TEST_F(RocksStoreTest, QuotaAndPartialDelivery) {
  ASSERT_TRUE(store_->domain_add({"example.com"}).is_ok());
  auto joe = add_account("joe@example.com", {0, 1});
  auto ann = add_account("ann@example.com");
  deliver(joe.id, "a");
  DeliverReq req;
  req.content = "b";
  req.targets = {DeliveryTarget{joe.id}, DeliveryTarget{ann.id}, DeliveryTarget{ann.id, 0, "NoSuchBox"}};
  auto r = store_->deliver(req);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->results[0].code, Code::quota);
  EXPECT_EQ(r->results[1].code, Code::ok);
  EXPECT_EQ(r->results[2].code, Code::not_found);
  EXPECT_EQ(store_->content_meta({{r->content}})->metas[0].refs, 1u);
}

TEST_F(RocksStoreTest, DeliverBatchKeepsOrderAndFailsWhole) {
  ASSERT_TRUE(store_->domain_add({"example.com"}).is_ok());
  auto joe = add_account("joe@example.com", {0, 4});
  auto one = [&](const std::string& content) {
    DeliverReq m;
    m.content = content;
    m.targets = {DeliveryTarget{joe.id}};
    return m;
  };
  DeliverBatchReq batch;
  for (const char* c : {"m1", "m2", "m3"}) batch.messages.push_back(one(c));
  auto r = store_->deliver_batch(batch);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_EQ(r->messages.size(), 3u);
  for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ(r->messages[i].results[0].uid, i + 1);
  auto listed = store_->message_list({mailbox(joe.id, "INBOX").id})->messages;
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_EQ(store_->content_get({listed[2].content})->bytes, "m3");

  // The quota allows one more message: all or nothing stores none of two,
  // and the quota checks see the batch's own earlier messages.
  DeliverBatchReq two;
  two.messages = {one("m4"), one("m5")};
  two.all_or_nothing = true;
  auto failed = store_->deliver_batch(two);
  ASSERT_FALSE(failed.is_ok());
  EXPECT_EQ(failed.code(), Code::quota);
  EXPECT_EQ(mailbox(joe.id, "INBOX").messages, 3u);
  // Without it, the first goes in and the second fails alone.
  two.all_or_nothing = false;
  auto partial = store_->deliver_batch(two);
  ASSERT_TRUE(partial.is_ok());
  EXPECT_EQ(partial->messages[0].results[0].code, Code::ok);
  EXPECT_EQ(partial->messages[1].results[0].code, Code::quota);
  EXPECT_EQ(mailbox(joe.id, "INBOX").messages, 4u);
  EXPECT_EQ(mailbox(joe.id, "INBOX").uidnext, 5u);

  DeliverBatchReq bad;
  bad.messages = {one("x"), DeliverReq{}};
  EXPECT_EQ(store_->deliver_batch(bad).code(), Code::invalid);
}

TEST_F(RocksStoreTest, ReplaceIsOneTransaction) {
  ASSERT_TRUE(store_->domain_add({"example.com"}).is_ok());
  auto joe = add_account("joe@example.com", {20, 0});  // 20 bytes
  auto ann = add_account("ann@example.com");
  auto old = deliver(joe.id, "old draft 1", "Drafts");  // 11 bytes
  auto drafts = mailbox(joe.id, "Drafts");
  auto replace = [&](Uid uid, AccountId account, MailboxId to, const std::string& content) {
    ReplaceReq req;
    req.mailbox = drafts.id;
    req.uid = uid;
    req.message.content = content;
    req.message.targets = {DeliveryTarget{account, to}};
    return store_->message_replace(req);
  };
  // 19 bytes fit where 11 + 19 would not: the old message goes first.
  auto r = replace(1, joe.id, drafts.id, "new draft 2 longer.");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->appended.uid, 2u);
  EXPECT_EQ(r->expunged.expunged, (std::vector<Uid>{1}));
  auto listed = store_->message_list({drafts.id})->messages;
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(store_->content_get({listed[0].content})->bytes, "new draft 2 longer.");
  EXPECT_EQ(store_->content_meta({{old.content}})->metas[0].id, 0u);  // its last reference went

  // Over quota, a missing message, another account: each changes nothing.
  EXPECT_EQ(replace(2, joe.id, drafts.id, std::string(25, 'x')).code(), Code::quota);
  EXPECT_EQ(replace(7, joe.id, drafts.id, "x").code(), Code::not_found);
  EXPECT_EQ(replace(2, ann.id, mailbox(ann.id, "INBOX").id, "x").code(), Code::invalid);
  auto now = mailbox(joe.id, "Drafts");
  EXPECT_EQ(now.messages, 1u);
  EXPECT_EQ(now.uidnext, 3u);
  EXPECT_EQ(store_->message_list({drafts.id})->messages[0].uid, 2u);

  // Into another mailbox of the account.
  auto archive = mailbox(joe.id, "Archive");
  ASSERT_TRUE(replace(2, joe.id, archive.id, "sent").is_ok());
  EXPECT_EQ(mailbox(joe.id, "Drafts").messages, 0u);
  EXPECT_EQ(mailbox(joe.id, "Archive").messages, 1u);
}

TEST_F(RocksStoreTest, DeliverBatchLaneKeepsOrderOfBatchesInFlight) {
  ASSERT_TRUE(store_->domain_add({"example.com"}).is_ok());
  auto joe = add_account("joe@example.com");
  auto batch = [&](const std::string& content, uint64_t seq) {
    DeliverBatchReq b;
    DeliverReq m;
    m.content = content;
    m.targets = {DeliveryTarget{joe.id}};
    b.messages = {m};
    b.order_group = 77;
    b.order_seq = seq;
    return b;
  };
  // The second batch arrives first: it waits for the first one's turn.
  Uid second_uid = 0;
  std::thread late([&] {
    auto r = store_->deliver_batch(batch("second", 1));
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    second_uid = r->messages[0].results[0].uid;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto first = store_->deliver_batch(batch("first", 0));
  late.join();
  ASSERT_TRUE(first.is_ok());
  EXPECT_EQ(first->messages[0].results[0].uid, 1u);
  EXPECT_EQ(second_uid, 2u);
  // A bad batch still takes its turn: the next one goes on.
  DeliverBatchReq bad = batch("x", 2);
  bad.messages[0].targets.clear();
  EXPECT_EQ(store_->deliver_batch(bad).code(), Code::invalid);
  EXPECT_TRUE(store_->deliver_batch(batch("third", 3)).is_ok());
}

TEST_F(RocksStoreTest, MailboxHierarchy) {
  ASSERT_TRUE(store_->domain_add({"example.com"}).is_ok());
  auto joe = add_account("joe@example.com");
  ASSERT_TRUE(store_->mailbox_create({joe.id, "Work/Projects/2026"}).is_ok());
  EXPECT_EQ(store_->mailbox_create({joe.id, "Work"}).code(), Code::exists);
  EXPECT_EQ(store_->mailbox_create({joe.id, "Bad//Name"}).code(), Code::invalid);
  EXPECT_EQ(store_->mailbox_delete({joe.id, "Work"}).code(), Code::not_empty);
  ASSERT_TRUE(store_->mailbox_rename({joe.id, "Work", "Old/Work"}).is_ok());
  EXPECT_TRUE(store_->mailbox_get({joe.id, "Old/Work/Projects/2026"}).is_ok());
  EXPECT_EQ(store_->mailbox_get({joe.id, "Work/Projects"}).code(), Code::not_found);
  deliver(joe.id, "m");
  ASSERT_TRUE(store_->mailbox_rename({joe.id, "INBOX", "Saved"}).is_ok());
  EXPECT_EQ(mailbox(joe.id, "Saved").messages, 1u);
  EXPECT_EQ(mailbox(joe.id, "INBOX").messages, 0u);
  EXPECT_EQ(store_->mailbox_delete({joe.id, "INBOX"}).code(), Code::invalid);
  ASSERT_TRUE(store_->mailbox_delete({joe.id, "Saved"}).is_ok());
  EXPECT_EQ(store_->stats({})->messages, 0u);
}

TEST_F(RocksStoreTest, SecondOpenerIsRefusedAndDataPersists) {
  ASSERT_TRUE(store_->domain_add({"example.com"}).is_ok());
  auto second = RocksStore::open({dir_.string()});
  ASSERT_FALSE(second.is_ok());
  EXPECT_EQ(second.code(), Code::busy);
  EXPECT_NE(second.status().message().find(std::to_string(::getpid())), std::string::npos);
  reopen();
  EXPECT_EQ(store_->domain_list({})->domains.size(), 1u);
}

TEST_F(RocksStoreTest, DataAndQueue) {
  ASSERT_TRUE(store_->domain_add({"example.com"}).is_ok());
  auto joe = add_account("joe@example.com");
  ASSERT_TRUE(store_->data_put({{joe.id, "sieve", "main"}, "keep;"}).is_ok());
  ASSERT_TRUE(store_->data_put({{joe.id, "sieve", "other"}, "discard;"}).is_ok());
  EXPECT_EQ(store_->data_get({joe.id, "sieve", "main"})->value, "keep;");
  EXPECT_EQ(store_->data_scan({joe.id, "sieve", "", 0})->items.size(), 2u);
  ASSERT_TRUE(store_->data_delete({joe.id, "sieve", "main"}).is_ok());
  EXPECT_FALSE(store_->data_get({joe.id, "sieve", "main"})->found);

  DeliverReq req;
  req.content = "queued message";
  QueueEntry q;
  q.sender = "joe@example.com";
  q.recipients = {QueueRecipient{"a@remote.test"}, QueueRecipient{"b@remote.test"}};
  req.queue = q;
  auto r = store_->deliver(req);
  ASSERT_TRUE(r.is_ok());
  auto entry = store_->queue_get({r->queued});
  ASSERT_TRUE(entry.is_ok());
  entry->recipients[0].state = RecipientState::delivered;
  ASSERT_TRUE(store_->queue_update({*entry}).is_ok());
  EXPECT_EQ(store_->queue_list({})->entries.size(), 1u);
  entry->recipients[1].state = RecipientState::failed;
  ASSERT_TRUE(store_->queue_update({*entry}).is_ok());
  EXPECT_EQ(store_->queue_list({})->entries.size(), 0u);
  EXPECT_EQ(store_->content_get({r->content}).code(), Code::not_found);
}

TEST_F(RocksStoreTest, DataSetAddKeepsMembersOfAWindow) {
  DataKey a{0, "bulk", "a"}, b{0, "bulk", "b"};
  auto add = [&](std::vector<uint64_t> members, int64_t now, std::vector<DataKey> keys = {}) {
    if (keys.empty()) keys = {a};
    auto r = store_->data_set_add({keys, std::move(members), now, 100, 3});
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? r->sizes : std::vector<uint32_t>{};
  };
  EXPECT_EQ(add({1, 2}, 1000), std::vector<uint32_t>{2});
  EXPECT_EQ(add({2}, 1050), std::vector<uint32_t>{2});  // again: no new member, 2 moves to 1050
  EXPECT_EQ(add({3}, 1100), std::vector<uint32_t>{2});  // 1 (added at 1000) left the window
  EXPECT_EQ(add({4, 5}, 1101), std::vector<uint32_t>{3});  // 2, 3, 4, 5: the newest 3 stay
  auto v = store_->data_get(a);
  DataTimedSet set;
  ASSERT_TRUE(v.is_ok() && v->found && decode(v->value, set));
  EXPECT_EQ(set.members, (std::vector<uint64_t>{3, 4, 5}));
  EXPECT_EQ(set.times, (std::vector<int64_t>{1100, 1101, 1101}));
  // Several keys in one transaction; a value that is no set counts as empty.
  ASSERT_TRUE(store_->data_put({b, "not a set"}).is_ok());
  EXPECT_EQ(add({6}, 1102, {a, b}), (std::vector<uint32_t>{3, 1}));
  EXPECT_EQ(store_->data_set_add({{{99, "bulk", "x"}}, {1}, 1, 0, 0}).code(), Code::not_found);
  EXPECT_EQ(store_->data_set_add({{{0, "", "x"}}, {1}, 1, 0, 0}).code(), Code::invalid);
}

TEST_F(RocksStoreTest, DataSetAddFromManyThreadsLosesNoMember) {
  constexpr int kThreads = 8, kEach = 40;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i)
        EXPECT_TRUE(store_->data_set_add({{{0, "bulk", "k"}}, {uint64_t(t * kEach + i + 1)}, 1000, 0, 0}).is_ok());
    });
  for (auto& th : threads) th.join();
  auto r = store_->data_set_add({{{0, "bulk", "k"}}, {}, 1000, 0, 0});
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->sizes, std::vector<uint32_t>{kThreads * kEach});
}

TEST_F(RocksStoreTest, ConcurrentWritersAndSubscription) {
  ASSERT_TRUE(store_->domain_add({"example.com"}).is_ok());
  auto joe = add_account("joe@example.com");
  std::mutex mu;
  std::condition_variable cv;
  size_t appended = 0;
  auto sub = store_->subscribe(joe.id, [&](const std::vector<ChangeEvent>& events) {
    std::lock_guard lock(mu);
    for (const auto& e : events)
      if (e.kind == ChangeKind::appended) appended += e.uids.size();
    cv.notify_all();
  });
  ASSERT_TRUE(sub.is_ok());
  constexpr int kThreads = 8, kEach = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) deliver(joe.id, "thread " + std::to_string(t) + " message " + std::to_string(i));
    });
  for (auto& th : threads) th.join();
  auto inbox = mailbox(joe.id, "INBOX");
  EXPECT_EQ(inbox.messages, static_cast<uint32_t>(kThreads * kEach));
  EXPECT_EQ(inbox.uidnext, static_cast<Uid>(kThreads * kEach + 1));
  std::unique_lock lock(mu);
  EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(5), [&] { return appended == kThreads * kEach; }));
}

TEST_F(RocksStoreTest, RestoreKeepsUidsAndSharesContent) {
  ASSERT_TRUE(store_->domain_add({"example.com"}).is_ok());
  auto joe = add_account("joe@example.com");
  auto inbox = mailbox(joe.id, "INBOX");
  auto sent = mailbox(joe.id, "Sent");
  auto restored = store_->mailbox_restore({inbox.id, 4000000000u, 10, 500});
  ASSERT_TRUE(restored.is_ok()) << restored.status().to_string();
  EXPECT_EQ(restored->uidvalidity, 4000000000u);
  EXPECT_EQ(restored->uidnext, 10u);
  EXPECT_GT(restored->highest_modseq, 500u);

  // Out of order (as concurrent restore jobs commit), one content shared by two mailboxes.
  MessageInsertReq req;
  req.mailbox = inbox.id;
  req.uid = 7;
  req.flags = flag::seen;
  req.keywords = {"b", "a", "b"};
  req.internal_date = 1000;
  req.bytes = "Subject: x\r\n\r\nbody\r\n";
  auto first = store_->message_insert(req);
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  req.uid = 3;
  auto second = store_->message_insert(req);
  ASSERT_TRUE(second.is_ok());
  EXPECT_EQ(store_->message_insert(req).code(), Code::exists);
  MessageInsertReq copy;
  copy.mailbox = sent.id;
  copy.uid = 42;
  copy.content = first->content;
  auto shared = store_->message_insert(copy);
  ASSERT_TRUE(shared.is_ok()) << shared.status().to_string();
  EXPECT_EQ(shared->content, first->content);
  copy.content = 999999;
  copy.uid = 43;
  EXPECT_EQ(store_->message_insert(copy).code(), Code::not_found);

  auto list = store_->message_list({inbox.id});
  ASSERT_TRUE(list.is_ok());
  ASSERT_EQ(list->messages.size(), 2u);
  EXPECT_EQ(list->messages[0].uid, 3u);
  EXPECT_EQ(list->messages[1].uid, 7u);
  EXPECT_EQ(list->messages[1].keywords, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(list->messages[1].internal_date, 1000);
  EXPECT_EQ(list->messages[1].size, req.bytes.size());
  EXPECT_EQ(list->mailbox.uidnext, 10u);
  EXPECT_EQ(list->mailbox.uidvalidity, 4000000000u);
  EXPECT_EQ(list->mailbox.messages, 2u);
  EXPECT_EQ(list->mailbox.unseen, 0u);
  auto meta = store_->content_meta({{first->content}});
  ASSERT_TRUE(meta.is_ok());
  EXPECT_EQ(meta->metas[0].refs, 2u);
  EXPECT_EQ(mailbox(joe.id, "Sent").uidnext, 43u);

  // A mailbox with messages keeps its UIDVALIDITY; new mailboxes get a later one.
  EXPECT_EQ(store_->mailbox_restore({inbox.id, 5, 1, 0}).code(), Code::invalid);
  auto later = store_->mailbox_create({joe.id, "Later", SpecialUse::none});
  ASSERT_TRUE(later.is_ok());
  EXPECT_GT(later->uidvalidity, 4000000000u);
  // Expunging both references frees the content.
  ASSERT_TRUE(store_->expunge({inbox.id, {7}}).is_ok());
  ASSERT_TRUE(store_->expunge({sent.id, {42}}).is_ok());
  EXPECT_EQ(store_->content_get({first->content}).code(), Code::not_found);
}

}  // namespace
}  // namespace mail::store
