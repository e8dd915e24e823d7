// Session tests over a real RocksStore in a temporary directory: commands go in
// as the server would hand them over, responses are checked as text.
#include "imap/session.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "base/password.h"
#include "store/rocks_store.h"

namespace mail::store {
namespace {
// Forwards to a real store; content_get_many fails as told (a store that
// cannot read, or one content corrupt).
class ForwardingStore : public Store {
 public:
  explicit ForwardingStore(Store& inner) : inner_(inner) {}
#define MAIL_FORWARD_OP(code, name, Req, Resp) \
  Result<Resp> name(const Req& r) override { return inner_.name(r); }
  MAIL_STORE_OPS(MAIL_FORWARD_OP)
#undef MAIL_FORWARD_OP
  Result<std::unique_ptr<Subscription>> subscribe(AccountId account, ChangeHandler handler) override {
    return inner_.subscribe(account, std::move(handler));
  }
  std::string backend_name() const override { return "forwarding"; }

 protected:
  Store& inner_;
};
class FaultyContentStore final : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Result<ContentManyResp> content_get_many(const ContentManyReq& r) override {
    if (fail_request != Code::ok) return error(fail_request, "store went away");
    auto resp = inner_.content_get_many(r);
    if (resp && corrupt_item < resp->contents.size()) {
      resp->contents[corrupt_item] = {Code::corrupt, "", "content failed its checksum"};
    }
    return resp;
  }
  Code fail_request = Code::ok;    // the whole request fails with this
  size_t corrupt_item = SIZE_MAX;  // this item of the answer fails its checksum
};
}  // namespace
}  // namespace mail::store

namespace mail::imap {
namespace {

const char kMessage[] =
    "From: Ann Example <ann@example.com>\r\nTo: joe@example.com\r\nSubject: lunch plans\r\n"
    "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <1@example.com>\r\n\r\n"
    "Shall we meet at noon?\r\n";

class ImapSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("imap_session_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    store::RocksStore::Options o;
    o.data_dir = dir_.string();
    o.sync = false;
    auto s = store::RocksStore::open(o);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    store_ = std::move(s).value();
    ASSERT_TRUE(store_->domain_add({"example.com"}).is_ok());
    store::Credentials cred;
    auto hash = hash_password("secret");
    ASSERT_TRUE(hash.is_ok());
    cred.password_hash = *hash;
    auto r = store_->account_add({"joe@example.com", cred, {}, ""});
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<Session> session(std::function<void()> wake = {}) {
    SessionEnv env;
    env.store = store_.get();
    env.config = &config_;
    env.auth_cache = &cache_;
    env.throttle = &throttle_;
    env.peer_ip = "127.0.0.1";
    env.loopback = true;
    env.wake = std::move(wake);
    return std::make_unique<Session>(std::move(env));
  }
  static std::string run(Session& s, const std::string& command) {
    std::string out;
    s.handle(command + "\r\n", out);
    return out;
  }
  std::unique_ptr<Session> logged_in(std::function<void()> wake = {}) {
    auto s = session(std::move(wake));
    std::string out = run(*s, "a LOGIN joe@example.com secret");
    EXPECT_NE(out.find("a OK"), std::string::npos) << out;
    return s;
  }
  static std::string append(Session& s, const std::string& mailbox, const std::string& msg,
                            const std::string& flags = "") {
    return run(s, "ap APPEND " + mailbox + (flags.empty() ? "" : " (" + flags + ")") + " {" +
                      std::to_string(msg.size()) + "+}\r\n" + msg);
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::RocksStore> store_;
  ImapConfig config_;
  AuthCache cache_;
  AuthThrottle throttle_;
};

bool has(const std::string& out, const std::string& what) { return out.find(what) != std::string::npos; }

TEST_F(ImapSessionTest, LoginAndBadCommands) {
  auto s = session();
  EXPECT_TRUE(has(s->greeting(), "* OK [CAPABILITY IMAP4rev1 IMAP4rev2"));
  EXPECT_TRUE(has(run(*s, "x SELECT INBOX"), "x BAD log in first"));
  EXPECT_TRUE(has(run(*s, "x FROB"), "x BAD unknown command"));
  EXPECT_TRUE(has(run(*s, "x LOGIN joe@example.com wrong"), "x NO [AUTHENTICATIONFAILED]"));
  EXPECT_TRUE(has(run(*s, "x LOGIN nobody@example.com secret"), "x NO [AUTHENTICATIONFAILED]"));
  EXPECT_TRUE(has(run(*s, "x LOGIN"), "x BAD"));
  EXPECT_TRUE(has(run(*s, ""), "* BAD"));
  EXPECT_TRUE(has(run(*s, "y LOGIN joe@example.com secret"), "y OK"));
  EXPECT_EQ(s->state(), State::authenticated);
  EXPECT_TRUE(has(run(*s, "z LOGIN joe@example.com secret"), "z BAD already authenticated"));
}

TEST_F(ImapSessionTest, AuthenticatePlainWithInitialResponse) {
  auto s = session();
  // "\0joe@example.com\0secret"
  EXPECT_TRUE(has(run(*s, "p AUTHENTICATE PLAIN AGpvZUBleGFtcGxlLmNvbQBzZWNyZXQ="), "p OK"));
  auto t = session();
  std::string out = run(*t, "q AUTHENTICATE PLAIN");
  EXPECT_EQ(out, "+ \r\n");
  ASSERT_TRUE(t->wants_continuation());
  out.clear();
  t->handle_continuation("AGpvZUBleGFtcGxlLmNvbQB3cm9uZw==\r\n", out);  // wrong password
  EXPECT_TRUE(has(out, "q NO [AUTHENTICATIONFAILED]")) << out;
  EXPECT_TRUE(has(run(*t, "r AUTHENTICATE X-UNKNOWN"), "r NO"));
}

TEST_F(ImapSessionTest, PlaintextNeedsTlsOffLoopback) {
  SessionEnv env;
  env.store = store_.get();
  env.config = &config_;
  env.loopback = false;
  env.starttls_available = true;
  Session s(env);
  EXPECT_TRUE(has(s.greeting(), "STARTTLS"));
  EXPECT_TRUE(has(s.greeting(), "LOGINDISABLED"));
  EXPECT_TRUE(has(run(s, "a LOGIN joe@example.com secret"), "a NO [PRIVACYREQUIRED]"));
  EXPECT_TRUE(has(run(s, "b STARTTLS"), "b OK"));
  EXPECT_TRUE(s.starttls_pending());
  s.tls_started();
  EXPECT_TRUE(has(run(s, "c LOGIN joe@example.com secret"), "c OK"));
}

// Sets map to messages range by range (UIDs by binary search): gaps, '*',
// reversed and overlapping ranges each give a message once, in mailbox order.
TEST_F(ImapSessionTest, SequenceSetsWithGapsStarsAndOverlaps) {
  auto s = logged_in();
  for (int i = 0; i < 6; ++i) append(*s, "INBOX", kMessage);
  run(*s, "s SELECT INBOX");
  EXPECT_TRUE(has(run(*s, "d STORE 2,4 +FLAGS.SILENT (\\Deleted)"), "d OK"));
  EXPECT_TRUE(has(run(*s, "e EXPUNGE"), "e OK"));  // UIDs 1 3 5 6 at 1..4
  auto lines = [](const std::string& out) {
    std::string got;
    for (size_t i = out.find("* "); i != std::string::npos; i = out.find("* ", i + 1)) {
      size_t e = out.find(" FETCH", i);
      if (e == std::string::npos) break;
      got += out.substr(i + 2, e - i - 2) + ",";
    }
    return got;
  };
  EXPECT_EQ(lines(run(*s, "f UID FETCH 2:4,6:*,1,5:3,100 UID")), "1,2,3,4,");
  EXPECT_EQ(lines(run(*s, "f UID FETCH 4 UID")), "");
  EXPECT_EQ(lines(run(*s, "f UID FETCH *:5 UID")), "3,4,");
  EXPECT_EQ(lines(run(*s, "f UID FETCH 7:9 UID")), "");
  EXPECT_EQ(lines(run(*s, "f FETCH 3:2,*,2 UID")), "2,3,4,");
  EXPECT_EQ(lines(run(*s, "f FETCH 4:* UID")), "4,");
}

// A References chain deeper than THREAD's cut (1000 levels) is split, not
// recursed into: crafted mail must not exhaust the session's stack.
TEST_F(ImapSessionTest, ThreadOfADeepReferencesChain) {
  auto s = logged_in();
  for (int i = 0; i < 1205; ++i) {
    std::string refs = i ? "References: <m" + std::to_string(i - 1) + "@x>\r\n" : "";
    append(*s, "INBOX", "Message-ID: <m" + std::to_string(i) + "@x>\r\n" + refs + "Subject: deep\r\n\r\nx\r\n");
  }
  run(*s, "s SELECT INBOX");
  std::string out = run(*s, "t THREAD REFERENCES UTF-8 ALL");
  ASSERT_TRUE(has(out, "t OK")) << out.substr(0, 200);
  // 1..1000 one chain, 1001.. cut off it; one subject puts both under a dummy.
  EXPECT_TRUE(has(out, "* THREAD ((1 2 3 ")) << out.substr(0, 200);
  EXPECT_TRUE(has(out, " 999 1000)(1001 1002 ")) << out.substr(0, 200);
}

TEST_F(ImapSessionTest, MailboxesFromTheStore) {
  auto s = logged_in();
  std::string out = run(*s, "l LIST \"\" *");
  EXPECT_TRUE(has(out, "* LIST (\\HasNoChildren) \"/\" \"INBOX\""));
  EXPECT_TRUE(has(out, "\\Sent) \"/\" \"Sent\""));
  EXPECT_TRUE(has(run(*s, "c CREATE Projects/2024"), "c OK"));
  out = run(*s, "l LIST \"\" Projects*");
  EXPECT_TRUE(has(out, "(\\HasChildren) \"/\" \"Projects\""));
  EXPECT_TRUE(has(out, "(\\HasNoChildren) \"/\" \"Projects/2024\""));
  EXPECT_TRUE(has(run(*s, "c CREATE Projects"), "c NO [ALREADYEXISTS]"));
  EXPECT_TRUE(has(run(*s, "r RENAME Projects Work"), "r OK"));
  EXPECT_TRUE(has(run(*s, "l LIST \"\" Work/%"), "\"Work/2024\""));
  EXPECT_TRUE(has(run(*s, "u SUBSCRIBE Work"), "u OK"));
  EXPECT_TRUE(has(run(*s, "l LSUB \"\" *"), "* LSUB () \"/\" \"Work\""));
  EXPECT_TRUE(has(run(*s, "d DELETE Work/2024"), "d OK"));
  EXPECT_TRUE(has(run(*s, "d DELETE Nope"), "d NO [NONEXISTENT]"));
  EXPECT_TRUE(has(run(*s, "d DELETE INBOX"), "d NO"));
  EXPECT_TRUE(has(run(*s, "s STATUS INBOX (MESSAGES UIDNEXT UNSEEN SIZE)"), "* STATUS \"INBOX\" (MESSAGES 0 UIDNEXT 1"));
}

TEST_F(ImapSessionTest, AppendSelectFetchStoreSearch) {
  auto s = logged_in();
  std::string out = append(*s, "INBOX", kMessage, "\\Flagged $Work");
  EXPECT_TRUE(has(out, "ap OK [APPENDUID ")) << out;
  EXPECT_TRUE(has(append(*s, "Nowhere", kMessage), "ap NO [TRYCREATE]"));
  out = run(*s, "s SELECT INBOX");
  EXPECT_TRUE(has(out, "* 1 EXISTS")) << out;
  EXPECT_TRUE(has(out, "s OK [READ-WRITE]"));
  out = run(*s, "f FETCH 1 (FLAGS RFC822.SIZE ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
  EXPECT_TRUE(has(out, "FLAGS (\\Flagged $Work)")) << out;
  EXPECT_TRUE(has(out, "RFC822.SIZE " + std::to_string(sizeof kMessage - 1)));
  EXPECT_TRUE(has(out, "\"lunch plans\""));
  EXPECT_TRUE(has(out, "BODY[HEADER.FIELDS (SUBJECT)] {24}\r\nSubject: lunch plans\r\n\r\n"));
  out = run(*s, "f FETCH 1 BODY[TEXT]");
  EXPECT_TRUE(has(out, "BODY[TEXT] {24}\r\nShall we meet at noon?\r\n")) << out;
  EXPECT_TRUE(has(out, "\\Seen"));  // BODY[] without PEEK sets \Seen
  EXPECT_TRUE(has(run(*s, "f FETCH 2 FLAGS"), "f BAD"));
  EXPECT_TRUE(has(run(*s, "f FETCH 1 (FLAGS"), "f BAD"));
  EXPECT_TRUE(has(run(*s, "k SEARCH SUBJECT lunch"), "* SEARCH 1"));
  EXPECT_TRUE(has(run(*s, "k SEARCH BODY noon UNDELETED"), "* SEARCH 1"));
  EXPECT_TRUE(has(run(*s, "k SEARCH FROM nobody"), "* SEARCH\r\n"));
  EXPECT_TRUE(has(run(*s, "k SEARCH FROB"), "k BAD"));
  out = run(*s, "t STORE 1 +FLAGS (\\Deleted)");
  EXPECT_TRUE(has(out, "* 1 FETCH (FLAGS (\\Seen \\Flagged \\Deleted $Work))")) << out;
  EXPECT_TRUE(has(run(*s, "t STORE 1 -FLAGS.SILENT (\\Deleted)"), "t OK"));
  out = run(*s, "t UID STORE 1 (UNCHANGEDSINCE 1) +FLAGS (\\Answered)");
  EXPECT_TRUE(has(out, "[MODIFIED 1]")) << out;
}

// A message that cannot be read ends FETCH and SEARCH BODY with a tagged NO:
// the messages before it are sent whole, nothing of it or after it is.
TEST_F(ImapSessionTest, UnreadableContentIsNoNeverATruncatedLiteral) {
  store::FaultyContentStore faulty(*store_);
  SessionEnv env;
  env.store = &faulty;
  env.config = &config_;
  env.auth_cache = &cache_;
  env.throttle = &throttle_;
  env.peer_ip = "127.0.0.1";
  env.loopback = true;
  Session s(std::move(env));
  EXPECT_TRUE(has(run(s, "a LOGIN joe@example.com secret"), "a OK"));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(has(append(s, "INBOX", kMessage), "ap OK"));
  EXPECT_TRUE(has(run(s, "s SELECT INBOX"), "* 3 EXISTS"));
  std::string literal = "BODY[] {" + std::to_string(sizeof kMessage - 1) + "}\r\n" + kMessage + ")\r\n";
  std::string out = run(s, "f FETCH 1:* BODY.PEEK[]");
  EXPECT_TRUE(has(out, "* 3 FETCH (" + literal)) << out;
  EXPECT_TRUE(has(out, "f OK")) << out;

  faulty.corrupt_item = 1;
  out = run(s, "f FETCH 1:* (UID BODY.PEEK[])");
  EXPECT_TRUE(has(out, "* 1 FETCH (UID 1 " + literal)) << out;
  EXPECT_FALSE(has(out, "* 2 FETCH")) << out;
  EXPECT_FALSE(has(out, "* 3 FETCH")) << out;
  EXPECT_TRUE(has(out, "f NO [SERVERBUG] cannot read message UID 2: content failed its checksum\r\n")) << out;
  out = run(s, "k SEARCH BODY noon");
  EXPECT_TRUE(has(out, "k NO [SERVERBUG] cannot read message UID 2")) << out;
  EXPECT_FALSE(has(out, "* SEARCH")) << out;

  faulty.corrupt_item = SIZE_MAX;
  faulty.fail_request = Code::unavailable;
  out = run(s, "f FETCH 1:* BODY.PEEK[]");
  EXPECT_EQ(out.find("FETCH ("), std::string::npos) << out;
  EXPECT_TRUE(has(out, "f NO [UNAVAILABLE] cannot read message UID 1: store went away")) << out;
  EXPECT_TRUE(has(run(s, "k SORT (DATE) UTF-8 BODY noon"), "k NO [UNAVAILABLE]"));
  // Without contents (flags, the summary's header) nothing is read.
  EXPECT_TRUE(has(run(s, "f FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"), "f OK"));
  faulty.fail_request = Code::ok;
  EXPECT_TRUE(has(run(s, "k SEARCH BODY noon"), "* SEARCH 1 2 3"));
}

// SEARCH BODY: ASCII case folds, the needle may sit at either end of the
// body, and a base64 text part is searched decoded; header text is not body.
TEST_F(ImapSessionTest, SearchBodyCaseEdgesAndEncodedParts) {
  auto s = logged_in();
  EXPECT_TRUE(has(append(*s, "INBOX", "Subject: plain\r\n\r\nnumber 4242 ends here 77-B"), "ap OK"));
  EXPECT_TRUE(has(append(*s, "INBOX",
                         "Subject: encoded\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n"
                         "Content-Transfer-Encoding: base64\r\n\r\nSGVsbG8gV29ybGQ=\r\n"),
                  "ap OK"));
  EXPECT_TRUE(has(run(*s, "s SELECT INBOX"), "* 2 EXISTS"));
  EXPECT_TRUE(has(run(*s, "k SEARCH BODY \"NUMBER 4242\""), "* SEARCH 1\r\n"));
  EXPECT_TRUE(has(run(*s, "k SEARCH BODY nUmBeR"), "* SEARCH 1\r\n"));
  EXPECT_TRUE(has(run(*s, "k SEARCH BODY 77-b"), "* SEARCH 1\r\n"));
  EXPECT_TRUE(has(run(*s, "k SEARCH BODY \"77-B!\""), "* SEARCH\r\n"));
  EXPECT_TRUE(has(run(*s, "k SEARCH BODY \"hello world\""), "* SEARCH 2\r\n"));
  EXPECT_TRUE(has(run(*s, "k SEARCH BODY plain"), "* SEARCH\r\n"));
  EXPECT_TRUE(has(run(*s, "k SEARCH TEXT \"subject: PLAIN\""), "* SEARCH 1\r\n"));
  EXPECT_TRUE(has(run(*s, "k SEARCH BODY \"\""), "* SEARCH 1 2\r\n"));
}

TEST_F(ImapSessionTest, CopyMoveExpunge) {
  auto s = logged_in();
  append(*s, "INBOX", kMessage);
  append(*s, "INBOX", kMessage);
  append(*s, "INBOX", kMessage);
  run(*s, "s SELECT INBOX");
  std::string out = run(*s, "c COPY 1:2 Archive");
  EXPECT_TRUE(has(out, "c OK [COPYUID ")) << out;
  EXPECT_TRUE(has(run(*s, "c COPY 1 Nowhere"), "c NO [TRYCREATE]"));
  out = run(*s, "m UID MOVE 2 Trash");
  EXPECT_TRUE(has(out, "* OK [COPYUID ")) << out;
  EXPECT_TRUE(has(out, "* 2 EXPUNGE")) << out;
  run(*s, "t STORE 1 +FLAGS.SILENT (\\Deleted)");
  out = run(*s, "e EXPUNGE");
  EXPECT_TRUE(has(out, "* 1 EXPUNGE")) << out;
  out = run(*s, "f FETCH 1:* UID");
  EXPECT_TRUE(has(out, "* 1 FETCH (UID 3)")) << out;
  EXPECT_TRUE(has(run(*s, "s STATUS Archive (MESSAGES)"), "(MESSAGES 2)"));
  EXPECT_TRUE(has(run(*s, "s STATUS Trash (MESSAGES)"), "(MESSAGES 1)"));
}

TEST_F(ImapSessionTest, OtherSessionsExpungeWaitsForAllowedCommands) {
  auto a = logged_in();
  auto b = logged_in();
  for (int i = 0; i < 3; ++i) append(*a, "INBOX", kMessage);
  run(*a, "s SELECT INBOX");
  run(*b, "s SELECT INBOX");
  run(*b, "t STORE 2 +FLAGS.SILENT (\\Deleted)");
  EXPECT_TRUE(has(run(*b, "e EXPUNGE"), "* 2 EXPUNGE"));
  // A non-UID FETCH must not report the expunge; its sequence numbers stay.
  std::string out = run(*a, "f FETCH 3 UID");
  EXPECT_FALSE(has(out, "EXPUNGE")) << out;
  EXPECT_TRUE(has(out, "* 3 FETCH (UID 3)")) << out;
  out = run(*a, "n NOOP");
  EXPECT_TRUE(has(out, "* 2 EXPUNGE")) << out;
  EXPECT_TRUE(has(run(*a, "f FETCH 2 UID"), "* 2 FETCH (UID 3)"));
  // New mail and flag changes from b show up at a's next NOOP.
  append(*b, "INBOX", kMessage);
  run(*b, "t STORE 1 +FLAGS (\\Answered)");
  out = run(*a, "n NOOP");
  EXPECT_TRUE(has(out, "* 1 FETCH (UID 1 FLAGS (\\Answered))")) << out;
  EXPECT_TRUE(has(out, "* 3 EXISTS")) << out;
  EXPECT_EQ(run(*a, "n NOOP"), "n OK NOOP completed\r\n");
}

TEST_F(ImapSessionTest, QuotaUnauthenticateAndStatusExtensions) {
  ASSERT_TRUE(store_->quota_set({"joe@example.com", {10 * 1024 * 1024, 1000}}).is_ok());
  auto s = logged_in();
  EXPECT_TRUE(has(s->greeting(), "APPENDLIMIT="));
  append(*s, "INBOX", kMessage);
  std::string out = run(*s, "q GETQUOTAROOT INBOX");
  EXPECT_TRUE(has(out, "* QUOTAROOT \"INBOX\" \"\"\r\n")) << out;
  EXPECT_TRUE(has(out, "* QUOTA \"\" (STORAGE 1 10240 MESSAGE 1 1000)")) << out;
  EXPECT_TRUE(has(run(*s, "q GETQUOTA \"\""), "q OK"));
  EXPECT_TRUE(has(run(*s, "q GETQUOTA other"), "q NO"));
  EXPECT_TRUE(has(run(*s, "q SETQUOTA \"\" (STORAGE 1)"), "q NO [NOPERM]"));
  run(*s, "s SELECT INBOX");
  run(*s, "t STORE 1 +FLAGS.SILENT (\\Deleted)");
  out = run(*s, "s STATUS INBOX (DELETED DELETED-STORAGE APPENDLIMIT)");
  EXPECT_TRUE(has(out, "(DELETED 1 DELETED-STORAGE " + std::to_string(sizeof kMessage - 1) + " APPENDLIMIT ")) << out;
  EXPECT_TRUE(has(run(*s, "u UNAUTHENTICATE"), "u OK"));
  EXPECT_EQ(s->state(), State::not_authenticated);
  EXPECT_TRUE(has(run(*s, "f FETCH 1 FLAGS"), "f BAD log in first"));
  EXPECT_TRUE(has(run(*s, "l LOGIN joe@example.com secret"), "l OK"));
}

TEST_F(ImapSessionTest, IdleSeesAnotherSessionsAppend) {
  std::atomic<int> woken{0};
  auto idler = logged_in([&] { woken++; });
  run(*idler, "s SELECT INBOX");
  std::string out = run(*idler, "i IDLE");
  EXPECT_EQ(out, "+ idling\r\n");
  ASSERT_TRUE(idler->idling());

  auto other = logged_in();
  EXPECT_TRUE(has(append(*other, "INBOX", kMessage), "ap OK"));
  for (int i = 0; i < 200 && woken == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_GT(woken.load(), 0);
  out.clear();
  idler->on_wake(out);
  EXPECT_EQ(out, "* 1 EXISTS\r\n* 0 RECENT\r\n");  // IMAP4rev1; no RecentTracker here
  run(*other, "s SELECT INBOX");
  run(*other, "t STORE 1 +FLAGS (\\Flagged)");
  for (int i = 0; i < 200 && woken < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  out.clear();
  idler->on_wake(out);
  EXPECT_TRUE(has(out, "* 1 FETCH (UID 1 FLAGS (\\Flagged))")) << out;
  out.clear();
  idler->handle_continuation("DONE\r\n", out);
  EXPECT_EQ(out, "i OK IDLE terminated\r\n");
}

TEST_F(ImapSessionTest, MultiappendIsAllOrNothing) {
  auto s = logged_in();
  std::string m(kMessage);
  std::string lit = " {" + std::to_string(m.size()) + "+}\r\n" + m;
  std::string out = run(*s, "m APPEND INBOX (\\Seen)" + lit + " \"7-Feb-1994 21:52:25 -0800\"" + lit + lit);
  EXPECT_TRUE(has(out, "m OK [APPENDUID ")) << out;
  EXPECT_TRUE(has(out, " 1:3] APPEND completed")) << out;
  // An empty second message: BAD nothing, NO, and nothing stored.
  out = run(*s, "e APPEND INBOX" + lit + " {0+}\r\n");
  EXPECT_TRUE(has(out, "e NO empty message (2)")) << out;
  // Over quota with the second message: NO [OVERQUOTA], the first is not kept either.
  ASSERT_TRUE(store_->quota_set({"joe@example.com", {0, 4}}).is_ok());
  out = run(*s, "q APPEND INBOX" + lit + lit);
  EXPECT_TRUE(has(out, "q NO")) << out;
  EXPECT_TRUE(has(run(*s, "s STATUS INBOX (MESSAGES)"), "(MESSAGES 3)"));
  EXPECT_TRUE(has(run(*s, "n APPEND nosuch" + lit + lit), "n NO [TRYCREATE]"));
  EXPECT_TRUE(has(run(*s, "b APPEND INBOX" + lit + " junk"), "b BAD"));
  EXPECT_TRUE(has(run(*s, "c CAPABILITY"), " MULTIAPPEND "));
}

TEST_F(ImapSessionTest, QresyncReportsVanished) {
  auto s = logged_in();
  for (int i = 0; i < 4; ++i) append(*s, "INBOX", kMessage);
  EXPECT_TRUE(has(run(*s, "e ENABLE QRESYNC"), "* ENABLED QRESYNC\r\n"));
  std::string out = run(*s, "s SELECT INBOX");
  auto at = out.find("HIGHESTMODSEQ ");
  ASSERT_NE(at, std::string::npos);
  std::string modseq = out.substr(at + 14, out.find(']', at) - at - 14);
  auto other = logged_in();
  run(*other, "s SELECT INBOX");
  run(*other, "t STORE 2 +FLAGS.SILENT (\\Deleted)");
  run(*other, "x EXPUNGE");
  run(*other, "t STORE 3 +FLAGS.SILENT (\\Seen)");  // UID 4
  out = run(*s, "n NOOP");
  EXPECT_TRUE(has(out, "* VANISHED 2\r\n")) << out;
  EXPECT_FALSE(has(out, "EXPUNGE")) << out;
  out = run(*s, "s SELECT INBOX (QRESYNC (" + std::to_string(1) + " 1))");
  EXPECT_TRUE(has(out, "s OK")) << out;  // another UIDVALIDITY is fine, just no resync
  auto uv = run(*s, "s STATUS INBOX (UIDVALIDITY)");
  std::string uidvalidity = uv.substr(uv.find("UIDVALIDITY ") + 12);
  uidvalidity = uidvalidity.substr(0, uidvalidity.find(')'));
  out = run(*s, "s SELECT INBOX (QRESYNC (" + uidvalidity + " " + modseq + "))");
  EXPECT_TRUE(has(out, "* VANISHED (EARLIER) 2\r\n")) << out;
  EXPECT_TRUE(has(out, "* 3 FETCH (UID 4 FLAGS (\\Seen) MODSEQ (")) << out;
  out = run(*s, "f UID FETCH 1:* FLAGS (CHANGEDSINCE " + modseq + " VANISHED)");
  EXPECT_TRUE(has(out, "* VANISHED (EARLIER) 2\r\n* 3 FETCH (UID 4 FLAGS (\\Seen) MODSEQ (")) << out;
  EXPECT_TRUE(has(run(*s, "f UID FETCH 3 FLAGS (CHANGEDSINCE " + modseq + " VANISHED)"), "f OK"));
  EXPECT_FALSE(has(run(*s, "f UID FETCH 3 FLAGS (CHANGEDSINCE " + modseq + " VANISHED)"), "VANISHED"));
  EXPECT_TRUE(has(run(*s, "f FETCH 1 FLAGS (VANISHED)"), "f BAD"));
  EXPECT_TRUE(has(run(*s, "f UID FETCH 1 FLAGS (CHANGEDSINCE 1 BOGUS)"), "f BAD"));
  EXPECT_TRUE(has(run(*s, "s SELECT INBOX (QRESYNC (1 x))"), "s BAD"));
}

TEST_F(ImapSessionTest, ReplaceAppendsThenExpunges) {
  auto s = logged_in();
  append(*s, "Drafts", kMessage, "\\Draft");
  append(*s, "Drafts", kMessage);
  run(*s, "s SELECT Drafts");
  std::string m(kMessage);
  std::string lit = " {" + std::to_string(m.size()) + "+}\r\n" + m;
  std::string out = run(*s, "r REPLACE 1 Drafts (\\Draft \\Seen)" + lit);
  EXPECT_TRUE(has(out, "* OK [APPENDUID ")) << out;
  EXPECT_TRUE(has(out, " 3] replacement message stored\r\n* 1 EXPUNGE\r\n* 2 EXISTS\r\n")) << out;
  out = run(*s, "u UID REPLACE 3 INBOX" + lit);
  EXPECT_TRUE(has(out, "* 2 EXPUNGE\r\n")) << out;
  EXPECT_TRUE(has(out, "u OK REPLACE completed")) << out;
  EXPECT_TRUE(has(run(*s, "x STATUS INBOX (MESSAGES)"), "(MESSAGES 1)"));
  // Errors leave the original where it is.
  EXPECT_TRUE(has(run(*s, "n REPLACE 1 Nowhere" + lit), "n NO [TRYCREATE]"));
  EXPECT_TRUE(has(run(*s, "n UID REPLACE 99 INBOX" + lit), "n NO no such message"));
  EXPECT_TRUE(has(run(*s, "n REPLACE 9 INBOX" + lit), "n BAD"));
  EXPECT_TRUE(has(run(*s, "n REPLACE 1 INBOX {0+}\r\n"), "n NO empty message"));
  EXPECT_TRUE(has(run(*s, "n REPLACE 1 INBOX"), "n BAD"));
  run(*s, "e EXAMINE Drafts");
  EXPECT_TRUE(has(run(*s, "n REPLACE 1 INBOX" + lit), "n NO [READ-ONLY]"));
  EXPECT_TRUE(has(run(*s, "x STATUS Drafts (MESSAGES)"), "(MESSAGES 1)"));
}

TEST_F(ImapSessionTest, ListExtendedSubscriptionsOutliveMailboxes) {
  auto s = logged_in();
  for (const char* n : {"a/b/c", "a/d", "gone"}) run(*s, std::string("c CREATE ") + n);
  EXPECT_TRUE(has(run(*s, "u SUBSCRIBE a/b/c"), "u OK"));
  EXPECT_TRUE(has(run(*s, "u SUBSCRIBE gone"), "u OK"));
  EXPECT_TRUE(has(run(*s, "d DELETE gone"), "d OK"));
  EXPECT_TRUE(has(run(*s, "u SUBSCRIBE never/made"), "u OK"));
  std::string out = run(*s, "l LIST (SUBSCRIBED) \"\" (gone never*)");
  EXPECT_TRUE(has(out, "* LIST (\\NonExistent \\Subscribed) \"/\" \"gone\"\r\n")) << out;
  EXPECT_TRUE(has(out, "* LIST (\\NonExistent \\Subscribed) \"/\" \"never/made\"\r\n")) << out;
  EXPECT_TRUE(has(run(*s, "l LSUB \"\" gone"), "* LSUB () \"/\" \"gone\""));
  // RECURSIVEMATCH: a/b has a subscribed child the pattern does not reach.
  out = run(*s, "l LIST (SUBSCRIBED RECURSIVEMATCH) \"\" a/%");
  EXPECT_TRUE(has(out, "* LIST (\\HasChildren) \"/\" \"a/b\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n")) << out;
  EXPECT_FALSE(has(out, "a/d")) << out;
  out = run(*s, "l LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (a/b a/b/c)");
  EXPECT_FALSE(has(out, "CHILDINFO")) << out;
  EXPECT_TRUE(has(out, "\"a/b/c\"")) << out;
  // Recreated, it is subscribed again; unsubscribing a name with no mailbox works.
  EXPECT_TRUE(has(run(*s, "c CREATE gone"), "c OK"));
  EXPECT_TRUE(has(run(*s, "l LIST (SUBSCRIBED) \"\" gone"), "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"gone\""));
  EXPECT_TRUE(has(run(*s, "u UNSUBSCRIBE never/made"), "u OK"));
  EXPECT_FALSE(has(run(*s, "l LIST (SUBSCRIBED) \"\" *"), "never")) << out;
  EXPECT_TRUE(has(run(*s, "u UNSUBSCRIBE never/made"), "u NO"));
  EXPECT_TRUE(has(run(*s, "l LIST \"\" (a/% )"), "l BAD"));
  EXPECT_TRUE(has(run(*s, "l LIST \"\" ()"), "l BAD"));
}

TEST_F(ImapSessionTest, CompressOncePerConnectionAfterLogin) {
  auto s = session();
  EXPECT_FALSE(has(s->greeting(), "COMPRESS=DEFLATE"));
  EXPECT_TRUE(has(run(*s, "z COMPRESS DEFLATE"), "z BAD log in first"));
  EXPECT_TRUE(has(run(*s, "a LOGIN joe@example.com secret"), "COMPRESS=DEFLATE"));
  EXPECT_TRUE(has(run(*s, "z COMPRESS LZW"), "z BAD"));
  EXPECT_EQ(run(*s, "z COMPRESS DEFLATE"), "z OK DEFLATE active\r\n");
  EXPECT_TRUE(s->compress_pending());
  s->compress_started();
  EXPECT_TRUE(has(run(*s, "z COMPRESS DEFLATE"), "z NO [COMPRESSIONACTIVE]"));
  EXPECT_FALSE(has(run(*s, "c CAPABILITY"), "COMPRESS=DEFLATE"));
}

TEST_F(ImapSessionTest, MailboxNamesInModifiedUtf7UnlessUtf8Accept) {
  auto rev1 = logged_in();
  EXPECT_TRUE(has(run(*rev1, "c CREATE \"Entw&APw-rfe/p&AOQA5A-\""), "c OK"));
  EXPECT_TRUE(has(run(*rev1, "l LIST \"\" Entw*"), "* LIST (\\HasNoChildren) \"/\" \"Entw&APw-rfe/p&AOQA5A-\"\r\n"));
  auto utf8 = logged_in();
  EXPECT_TRUE(has(run(*utf8, "e ENABLE UTF8=ACCEPT"), "* ENABLED UTF8=ACCEPT"));
  EXPECT_TRUE(has(run(*utf8, "l LIST \"\" Entw*"), "* LIST (\\HasNoChildren) \"/\" {15}\r\nEntw\xc3\xbcrfe/p\xc3\xa4\xc3\xa4\r\n"));
  EXPECT_TRUE(has(run(*utf8, "s SELECT \"Entw\xc3\xbcrfe/p\xc3\xa4\xc3\xa4\""), "s OK"));
  EXPECT_TRUE(has(run(*rev1, "s STATUS \"Entw&APw-rfe\" (MESSAGES)"), "* STATUS \"Entw&APw-rfe\" (MESSAGES 0)"));
  EXPECT_TRUE(has(rev1->greeting(), " UTF8=ACCEPT "));
}

}  // namespace
}  // namespace mail::imap
