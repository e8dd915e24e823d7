#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <thread>

#include "auth/resolver.h"
#include "spam/filter.h"
#include "store/remote_store.h"
#include "store/store.h"
#include "store/store_server.h"

namespace mail::spam {
namespace {

class SpamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/spam_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = store::open_store(store::StorePaths{dir_}, store::OpenMode::direct);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string dir_;
  std::unique_ptr<store::Store> store_;
};

std::string spam_message(int i) {
  return "From: \"Deals\" <deals" + std::to_string(i) +
         "@cheap-pills.example>\nTo: you@example.test\nSubject: CHEAP PILLS NOW\n\n"
         "Buy cheap viagra pills now, limited offer, click here http://pills.example/buy?" +
         std::to_string(i) + "\n";
}

std::string ham_message(int i) {
  return "From: Alice <alice@example.org>\nTo: bob@example.test\nSubject: meeting notes " + std::to_string(i) +
         "\nDate: Mon, 2 Mar 2026 10:00:00 +0000\nMessage-ID: <n" + std::to_string(i) +
         "@example.org>\n\nHi Bob, here are the notes from the design review of the compiler backend.\n";
}

TEST(Tokenizer, HeadersBodyLinksAttachments) {
  std::string raw =
      "From: =?UTF-8?B?w4lyaWM=?= <eric@example.org>\r\nSubject: Hello World\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n"
      "<p>Visit <a href=\"https://Shop.Example.COM/x\">our&nbsp;shop</a></p><script>evil()</script>\r\n"
      "--b\r\nContent-Type: application/zip\r\nContent-Disposition: attachment; filename=\"a.zip\"\r\n"
      "Content-Transfer-Encoding: base64\r\n\r\nUEsDBA==\r\n--b--\r\n";
  Analysis a = analyze(raw);
  auto has = [&](const std::string& t) { return std::find(a.tokens.begin(), a.tokens.end(), t) != a.tokens.end(); };
  EXPECT_TRUE(has("s:hello"));
  EXPECT_TRUE(has("f:\xc3\x89ric"));  // RFC 2047 decoded
  EXPECT_TRUE(has("visit"));
  EXPECT_TRUE(has("shop"));
  EXPECT_FALSE(has("evil()"));
  EXPECT_TRUE(has("url:shop.example.com"));
  EXPECT_TRUE(has("url:example.com"));
  EXPECT_TRUE(has("att:application/zip"));
  EXPECT_TRUE(has("ext:zip"));
  EXPECT_EQ(a.subject, "Hello World");
  ASSERT_EQ(a.links.size(), 1u);
  EXPECT_EQ(a.links[0].host, "shop.example.com");
}

TEST(Tokenizer, LimitsHoldOnHugeAndDeepInput) {
  std::string deep = "Content-Type: multipart/mixed; boundary=a\n\n";
  for (int i = 0; i < 500; ++i) deep += "--a\nContent-Type: multipart/mixed; boundary=a\n\n";
  Analysis d = analyze(deep);
  EXPECT_LE(d.tokens.size(), Limits{}.max_tokens);

  std::string huge = "Subject: x\n\n";
  for (int i = 0; i < 200000; ++i) huge += "word" + std::to_string(i) + " ";
  Limits limits;
  Analysis h = analyze(huge, limits);
  EXPECT_TRUE(h.truncated);
  EXPECT_LE(h.tokens.size(), limits.max_tokens);
  EXPECT_LE(h.text.size(), limits.max_text + 1);
  Analysis empty = analyze("");
  EXPECT_FALSE(empty.has_from);
}

TEST(Tokenizer, UrlHost) {
  EXPECT_EQ(url_host("http://user@Ex.COM:80/x"), "ex.com");
  EXPECT_EQ(url_host("www.example.org/path"), "www.example.org");
  EXPECT_EQ(url_host("https://[::1]/"), "[::1]");
}

TEST(Rules, MixedScript) {
  EXPECT_TRUE(mixed_script("p\xd0\xb0ypal"));  // Cyrillic a
  EXPECT_FALSE(mixed_script("paypal \xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82"));  // two words, one script each
  EXPECT_FALSE(mixed_script("Ren\xc3\xa9"));
}

TEST(Rules, BuiltinsAndFile) {
  RuleSet rules;
  std::string raw = "From: x@a.example\nReply-To: y@b.example\nSubject: WIN A FREE CRUISE TODAY\n\n"
                    "Act now! http://192.0.2.1/x\n";
  Analysis a = analyze(raw);
  auto names = [](const std::vector<Hit>& hits) {
    std::string s;
    for (const auto& h : hits) s += h.name + " ";
    return s;
  };
  std::string fired = names(rules.evaluate(a, {}, {}));
  for (const char* n : {"MISSING_DATE", "MISSING_MID", "SUBJ_ALL_CAPS", "FROM_REPLYTO_DIFFER", "URI_IP",
                        "PHRASE_ACT_NOW", "SUBJ_MONEY"})
    EXPECT_NE(fired.find(n), std::string::npos) << n << " in " << fired;

  ASSERT_TRUE(rules.load("body CRUISE /cruise/i\nscore CRUISE 2.5\nscore MISSING_DATE 0\n"
                         "header XM X-Mailer /bulkmail/\ndescribe CRUISE sells cruises\n",
                         "t.cf")
                  .is_ok());
  auto hits = rules.evaluate(analyze(raw + "cruise\n"), {}, {});
  fired = names(hits);
  EXPECT_EQ(fired.find("MISSING_DATE"), std::string::npos);  // score 0 disables
  EXPECT_NE(fired.find("CRUISE"), std::string::npos);
  auto bad = rules.load("body OK /x/\nhedaer X /y/\nbody BAD /(/\nscore OK x\n", "bad.cf");
  EXPECT_EQ(bad.code(), Code::config);
  EXPECT_NE(bad.message().find("bad.cf:2: unknown rule kind \"hedaer\""), std::string::npos) << bad.message();
  EXPECT_NE(bad.message().find("bad.cf:3: bad regex"), std::string::npos) << bad.message();
  EXPECT_NE(bad.message().find("bad.cf:4: expected a number"), std::string::npos) << bad.message();
}

TEST(Rules, AuthenticationResultsAndMixedDomains) {
  RuleSet rules;
  std::string raw = "Authentication-Results: mx.test; spf=fail smtp.mailfrom=a.example; dmarc=fail\n"
                    "Authentication-Results: other.test; dmarc=pass\n"
                    "From: \"P\xd0\xb0yPal\" <x@a.example>\nSubject: hi\n\nsee http://xn--pypal-4ve.com/\n";
  Analysis a = analyze(raw);
  std::string fired;
  for (const auto& h : rules.evaluate(a, {}, {})) fired += h.name + " ";
  EXPECT_NE(fired.find("SPF_FAIL"), std::string::npos) << fired;
  EXPECT_NE(fired.find("DMARC_FAIL"), std::string::npos) << fired;
  EXPECT_EQ(fired.find("DMARC_PASS"), std::string::npos) << fired;
  EXPECT_NE(fired.find("MIXED_SCRIPT_FROM"), std::string::npos) << fired;
  EXPECT_NE(fired.find("URI_MIXED_SCRIPT"), std::string::npos) << fired;
  fired.clear();
  for (const auto& h : rules.evaluate(a, {}, Context{"", "other.test"})) fired += h.name + " ";
  EXPECT_NE(fired.find("DMARC_PASS"), std::string::npos) << fired;
}

TEST(Rules, DnsBlockLists) {
  auth::StubResolver dns;
  dns.add("2.0.0.192.bl.example", auth::DnsType::a, "127.0.0.2");
  dns.add("listed.example.uribl.example", auth::DnsType::a, "127.0.0.2");
  RuleSet rules;
  rules.set_dns(&dns, {"bl.example"}, {"uribl.example"});
  Analysis a = analyze("Subject: x\n\nhttp://www.listed.example/ http://fine.example/\n");
  std::string fired;
  for (const auto& h : rules.evaluate(a, {}, Context{"192.0.0.2", ""})) fired += h.name + " ";
  EXPECT_NE(fired.find("RCVD_IN_BL_EXAMPLE"), std::string::npos) << fired;
  EXPECT_NE(fired.find("URI_IN_URIBL_EXAMPLE"), std::string::npos) << fired;
  fired.clear();
  for (const auto& h : rules.evaluate(a, {}, Context{"192.0.0.3", ""})) fired += h.name + " ";
  EXPECT_EQ(fired.find("RCVD_IN_"), std::string::npos) << fired;
}

TEST(Rules, DnsBlockListAnswersAreCached) {
  auth::StubResolver dns;
  dns.add("2.0.0.192.bl.example", auth::DnsType::a, "127.0.0.2");
  dns.fail("3.0.0.192.bl.example");
  RuleSet rules;
  rules.set_dns(&dns, {"bl.example"}, {"uribl.example"});
  Analysis a = analyze("Subject: x\n\nhttp://www.one.example/ http://two.example/\n");
  auto names = [&](const char* ip) {
    std::string fired;
    for (const auto& h : rules.evaluate(a, {}, Context{ip, ""})) fired += h.name + " ";
    return fired;
  };
  EXPECT_NE(names("192.0.0.2").find("RCVD_IN_BL_EXAMPLE"), std::string::npos);
  EXPECT_EQ(dns.lookups(), 3u);  // the client and two link domains
  EXPECT_NE(names("192.0.0.2").find("RCVD_IN_BL_EXAMPLE"), std::string::npos);
  EXPECT_EQ(dns.lookups(), 3u);  // all from the cache, NXDOMAIN answers too
  EXPECT_EQ(names("192.0.0.3").find("RCVD_IN_"), std::string::npos);  // a failure is not a listing...
  names("192.0.0.3");
  EXPECT_EQ(dns.lookups(), 5u);  // ... and is asked again
}

TEST_F(SpamTest, TrainClassifyRelearnUntrain) {
  Classifier c(store_.get(), RuleSet(), Options{});
  std::vector<std::string> spam, ham;
  for (int i = 0; i < 10; ++i) spam.push_back(spam_message(i)), ham.push_back(ham_message(i));
  std::vector<std::string_view> sv(spam.begin(), spam.end()), hv(ham.begin(), ham.end());

  auto before = c.check(spam_message(99), 0, {});
  ASSERT_TRUE(before.is_ok());
  EXPECT_FALSE(before->bayes.used);  // nothing learnt yet

  auto r = c.train(0, sv, true, false);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->learned, 10u);
  ASSERT_TRUE(c.train(0, hv, false, false).is_ok());
  auto again = c.train(0, sv, true, false);
  EXPECT_EQ(again->skipped, 10u);  // the same messages count once

  auto v = c.check(spam_message(42), 0, {}, 3);
  ASSERT_TRUE(v.is_ok());
  EXPECT_TRUE(v->bayes.used);
  EXPECT_GT(v->bayes.probability, 0.95);
  EXPECT_TRUE(v->spam);
  EXPECT_EQ(v->bayes.clues.size(), 3u);
  auto h = c.check(ham_message(42), 0, {});
  EXPECT_LT(h->bayes.probability, 0.05);
  EXPECT_FALSE(h->spam);

  // A second classifier (another process) sees the same counts.
  Classifier other(store_.get(), RuleSet(), Options{});
  auto st = other.tokens()->stats(0);
  EXPECT_EQ(st->meta.nspam, 10u);
  EXPECT_EQ(st->meta.nham, 10u);

  // Relearning a spam as ham moves it; untraining forgets it.
  auto moved = c.train(0, {sv[0]}, false, false);
  EXPECT_EQ(moved->relearned, 1u);
  st = other.tokens()->stats(0);
  EXPECT_EQ(st->meta.nspam, 9u);
  EXPECT_EQ(st->meta.nham, 11u);
  auto gone = c.train(0, {sv[0]}, false, true);
  EXPECT_EQ(gone->unlearned, 1u);
  EXPECT_EQ(c.train(0, {sv[0]}, false, true)->skipped, 1u);
  st = other.tokens()->stats(0);
  EXPECT_EQ(st->meta.nham, 10u);
}

TEST_F(SpamTest, PerAccountAndExpiry) {
  auto acct = store_->account_add({"u@example.test", {}, {}, ""});
  if (!acct.is_ok()) {
    ASSERT_TRUE(store_->domain_add({"example.test"}).is_ok());
    acct = store_->account_add({"u@example.test", {}, {}, ""});
  }
  ASSERT_TRUE(acct.is_ok()) << acct.status().to_string();
  store::AccountId id = acct->id;
  TokenStore ts(*store_);
  std::vector<TrainItem> items;
  for (int i = 0; i < 6; ++i) items.push_back({message_hash(spam_message(i)), analyze(spam_message(i)).tokens});
  ASSERT_TRUE(ts.train(id, items, true, false, 1000, 30).is_ok());
  EXPECT_EQ(ts.stats(id)->meta.nspam, 6u);
  EXPECT_EQ(ts.stats(0)->meta.nspam, 0u);  // the global model is untouched
  // 31 days later, training something else drops what was not trained since.
  std::vector<TrainItem> fresh{{message_hash(ham_message(1)), analyze(ham_message(1)).tokens}};
  auto r = ts.train(id, fresh, false, false, 1031, 30);
  ASSERT_TRUE(r.is_ok());
  EXPECT_GT(r->expired, 0u);
  auto st = ts.stats(id);
  EXPECT_EQ(st->messages_seen, 1u);
  EXPECT_EQ(st->tokens, analyze(ham_message(1)).tokens.size());
}

TEST(Filter, StatusHeaders) {
  Verdict v;
  v.score = 7.25;
  v.spam = true;
  for (int i = 0; i < 12; ++i) v.hits.push_back({"SOME_LONG_RULE_NAME_" + std::to_string(i), 0.5, ""});
  std::string h = status_headers(v, 5.0);
  EXPECT_EQ(h.rfind("X-Spam-Status: Yes, score=7.2 required=5.0 tests=SOME_LONG_RULE_NAME_0,", 0), 0u) << h;
  EXPECT_NE(h.find("\r\n\t"), std::string::npos);
  EXPECT_NE(h.find("X-Spam-Score: 7.2\r\n"), std::string::npos);
  for (size_t p = 0, e; (e = h.find("\r\n", p)) != std::string::npos; p = e + 2) EXPECT_LE(e - p, 78u);
}

}  // namespace
}  // namespace mail::spam

namespace mail::spam {
namespace {

constexpr std::string_view kRun =
    "Dear customer, your parcel could not be delivered because the address was incomplete. "
    "Please confirm your details within two days or the parcel returns to the sender.";

TEST(Bulk, DigestKeepsSmallChangesAndTellsBodiesApart) {
  BulkDigest a, b, c, d;
  ASSERT_TRUE(bulk_digest(kRun, a));
  ASSERT_TRUE(bulk_digest(std::string("Order 12345. ") + std::string(kRun), b));  // a number: a placeholder
  ASSERT_TRUE(bulk_digest("Meeting notes: we agreed to ship the release on Friday after the last review of the "
                          "compiler patches, and to move lunch.", c));
  EXPECT_FALSE(bulk_digest("thanks, see you tomorrow", d));  // too short to tell
  size_t same_ab = 0, same_ac = 0;
  for (size_t k = 0; k < kBulkHashes; ++k) same_ab += a[k] == b[k], same_ac += a[k] == c[k];
  EXPECT_GE(same_ab, 2u);
  EXPECT_EQ(same_ac, 0u);
}

// Deliveries of one body at once, from several clients of mail-stored (as
// mail-smtpd processes are), each to its own users: no user is lost.
TEST_F(SpamTest, BulkDigestCountedAtOnceThroughTheStoreServerLosesNoUser) {
  store::StoreServer server(*store_);
  std::string sock = dir_ + "/stored.sock";
  ASSERT_TRUE(server.listen(sock).is_ok());
  BulkDigest digest;
  ASSERT_TRUE(bulk_digest(kRun, digest));
  BulkOptions o{1000, 3600};
  constexpr int kClients = 4, kThreads = 4, kEach = 15;
  std::vector<std::unique_ptr<store::Store>> clients;
  for (int c = 0; c < kClients; ++c) {
    auto r = store::RemoteStore::connect(sock, "spam_test");
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    clients.push_back(std::move(*r));
  }
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c)
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, c, t] {
        for (int i = 0; i < kEach; ++i) {
          store::AccountId user = 1 + ((c * kThreads + t) * kEach + i);
          auto n = bulk_record(*clients[c], digest, {user}, 1000 + i, o);
          EXPECT_TRUE(n.is_ok()) << n.status().to_string();
        }
      });
  for (auto& th : threads) th.join();
  constexpr uint32_t kUsers = kClients * kThreads * kEach;
  EXPECT_EQ(*bulk_record(*clients[0], digest, {kUsers}, 2000, o), kUsers);  // the last user again
  EXPECT_EQ(*bulk_record(*store_, digest, {kUsers + 1}, 2000, o), kUsers + 1);
  clients.clear();
  server.stop();
}

TEST_F(SpamTest, BulkDigestCountsDistinctUsersInTheWindow) {
  BulkDigest digest;
  ASSERT_TRUE(bulk_digest(kRun, digest));
  BulkOptions o{3, 3600};
  EXPECT_EQ(*bulk_record(*store_, digest, {1}, 1000, o), 1u);
  EXPECT_EQ(*bulk_record(*store_, digest, {1}, 1001, o), 1u);  // the same user again
  EXPECT_EQ(*bulk_record(*store_, digest, {2, 3}, 1002, o), 3u);
  EXPECT_EQ(*bulk_record(*store_, digest, {4}, 1000 + 3601, o), 3u);  // user 1 left the window
  // Through the classifier: BULK_DIGEST fires at min_users local recipients.
  Options options;
  options.bulk = BulkOptions{3, 3600};
  Classifier c(store_.get(), RuleSet(), options);
  std::string msg = "From: a@b.example\nSubject: parcel\n\n" + std::string(kRun) + " Ref 77.\n";
  Context one;
  one.local_recipients = {10};
  auto fired = [&](const Result<Verdict>& v) {
    return std::any_of(v->hits.begin(), v->hits.end(), [](const Hit& h) { return h.name == "BULK_DIGEST"; });
  };
  EXPECT_FALSE(fired(c.check(msg, 10, one)));
  Context many;
  many.local_recipients = {11, 12};
  EXPECT_TRUE(fired(c.check(msg, 0, many)));
  EXPECT_FALSE(fired(c.check(msg, 0, {})));  // no recipients (mail-spamscore): not counted
}

}  // namespace
}  // namespace mail::spam
