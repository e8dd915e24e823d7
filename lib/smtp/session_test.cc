// Session tests over a real RocksStore in a temporary directory: bytes go in as
// a client sends them, replies are checked as text, and delivered messages are
// read back from the store.
#include "smtp/session.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <filesystem>

#include "base/base64.h"
#include "base/password.h"
#include "store/rocks_store.h"

namespace mail::smtp {
namespace {

using namespace std::string_literals;

const char kBody[] = "From: ann@remote.example\r\nTo: joe@example.com\r\nSubject: hi\r\n\r\nHello\r\n";

class SmtpSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("smtp_session_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    store::RocksStore::Options o;
    o.data_dir = dir_.string();
    o.sync = false;
    auto s = store::RocksStore::open(o);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    store_ = std::move(s).value();
    ASSERT_TRUE(store_->domain_add({"example.com"}).is_ok());
    ASSERT_TRUE(store_->domain_add({"catch.example"}).is_ok());
    joe_ = add_account("joe@example.com");
    ann_ = add_account("ann@example.com");
    full_ = add_account("full@example.com", store::Quota{100, 0});
    ASSERT_TRUE(store_->alias_add({"team@example.com", {"joe@example.com", "ann@example.com"}}).is_ok());
    ASSERT_TRUE(store_->alias_add({"fwd@example.com", {"joe@example.com", "far@remote.example"}}).is_ok());
    ASSERT_TRUE(store_->alias_add({"@catch.example", {"ann@example.com"}}).is_ok());
    config_.max_message_size = 10000;
    config_.max_recipients = 5;
    config_.max_line_length = 512;
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  store::AccountId add_account(const std::string& address, store::Quota quota = {}) {
    store::Credentials cred;
    cred.password_hash = hash_password("secret").value();
    ScramKeys k = derive_scram_keys("secret", 4096);
    cred.scram = {k.salt, k.iterations, k.stored_key, k.server_key};
    auto r = store_->account_add({address, cred, quota, ""});
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r ? r->id : 0;
  }

  std::unique_ptr<Session> session(Mode mode = Mode::mx, bool loopback = true) {
    SessionEnv env;
    env.store = store_.get();
    env.config = &config_;
    env.mode = mode;
    env.hostname = "mx.example.com";
    env.peer_ip = loopback ? "127.0.0.1" : "192.0.2.7";
    env.loopback = loopback;
    env.starttls_available = true;
    env.throttle = &throttle_;
    env.filters = filters_;
    env.delay = [](unsigned) {};
    env.now = [] { return int64_t{1800000000}; };
    return std::make_unique<Session>(std::move(env));
  }
  static std::string send(Session& s, std::string_view bytes) {
    std::string out;
    s.feed(bytes, out);
    return out;
  }
  std::vector<store::MessageEntry> inbox(store::AccountId account, const std::string& name = "INBOX") {
    auto mb = store_->mailbox_get({account, name});
    EXPECT_TRUE(mb.is_ok()) << mb.status().to_string();
    if (!mb) return {};
    auto list = store_->message_list({mb->id, 1, 0});
    EXPECT_TRUE(list.is_ok());
    return list ? list->messages : std::vector<store::MessageEntry>{};
  }
  std::string content(const store::MessageEntry& e) {
    auto c = store_->content_get({e.content});
    EXPECT_TRUE(c.is_ok());
    return c ? c->bytes : "";
  }
  std::unique_ptr<Session> authed(const std::string& user = "joe@example.com", Mode mode = Mode::submission) {
    auto s = session(mode);
    send(*s, "EHLO c\r\n");
    std::string out = send(*s, "AUTH PLAIN " + base64_encode(std::string("\0", 1) + user + std::string("\0", 1) + "secret") + "\r\n");
    EXPECT_NE(out.find("235 2.7.0"), std::string::npos) << out;
    return s;
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::RocksStore> store_;
  SmtpConfig config_;
  AuthThrottle throttle_;
  std::vector<MessageFilter*> filters_;
  store::AccountId joe_ = 0, ann_ = 0, full_ = 0;
};

TEST_F(SmtpSessionTest, GreetingAndEhlo) {
  auto s = session();
  EXPECT_EQ(s->greeting(), "220 mx.example.com ESMTP ready\r\n");
  std::string out = send(*s, "EHLO client.example\r\n");
  EXPECT_EQ(out.rfind("250-mx.example.com\r\n", 0), 0u) << out;
  for (const char* ext : {"PIPELINING", "SIZE 10000", "8BITMIME", "BINARYMIME", "CHUNKING", "SMTPUTF8",
                          "ENHANCEDSTATUSCODES", "DSN", "STARTTLS", "AUTH PLAIN LOGIN SCRAM-SHA-256"})
    EXPECT_NE(out.find(ext), std::string::npos) << ext;
  EXPECT_EQ(out.find("REQUIRETLS"), std::string::npos);  // only over TLS
  EXPECT_EQ(out.find("FUTURERELEASE"), std::string::npos);  // only for submission
  EXPECT_EQ(send(*s, "HELO x\r\n"), "250 mx.example.com\r\n");
  EXPECT_EQ(send(*s, "QUIT\r\n").substr(0, 3), "221");
  EXPECT_TRUE(s->closed());
  // Not on loopback and without TLS: no AUTH offered.
  auto remote = session(Mode::mx, false);
  out = send(*remote, "EHLO c\r\n");
  EXPECT_EQ(out.find("AUTH"), std::string::npos);
  EXPECT_NE(send(*remote, "AUTH PLAIN AGpvZQBzZWNyZXQ=\r\n").find("538 5.7.11"), std::string::npos);
}

TEST_F(SmtpSessionTest, DeliversWithTraceHeaders) {
  auto s = session();
  std::string out = send(*s,
                         "EHLO client.example\r\nMAIL FROM:<Ann@Remote.Example>\r\nRCPT TO:<Joe@Example.com>\r\n"
                         "DATA\r\n");
  EXPECT_NE(out.find("250 2.1.0"), std::string::npos);
  EXPECT_NE(out.find("250 2.1.5"), std::string::npos);
  EXPECT_NE(out.find("354 "), std::string::npos);
  EXPECT_TRUE(s->in_data());
  out = send(*s, "Subject: x\r\n\r\n..leading dot\r\n.\r");
  EXPECT_EQ(out, "");
  out = send(*s, "\n");
  EXPECT_EQ(out.substr(0, 10), "250 2.0.0 ") << out;
  auto msgs = inbox(joe_);
  ASSERT_EQ(msgs.size(), 1u);
  std::string c = content(msgs[0]);
  EXPECT_EQ(c.rfind("Return-Path: <ann@remote.example>\r\nDelivered-To: joe@example.com\r\nReceived: from "
                    "client.example (127.0.0.1 [127.0.0.1])\r\n\tby mx.example.com (mailtk) with ESMTP id ",
                    0),
            0u)
      << c;
  EXPECT_NE(c.find("\tfor <joe@example.com>; "), std::string::npos);
  EXPECT_NE(c.find("\r\nSubject: x\r\n\r\n.leading dot\r\n"), std::string::npos) << c;
  EXPECT_EQ(msgs[0].size, c.size());
  // The summary was stored with the content.
  auto meta = store_->content_meta({{msgs[0].content}});
  ASSERT_TRUE(meta.is_ok());
  EXPECT_FALSE(meta->metas[0].summary.empty());
}

TEST_F(SmtpSessionTest, PipelinedTransactions) {
  auto s = session();
  std::string out = send(*s,
                         "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<joe@example.com>\r\nRCPT TO:<nobody@example.com>\r\n"
                         "RCPT TO:<ann@example.com>\r\nDATA\r\n" + std::string(kBody) + ".\r\n"
                         "MAIL FROM:<a@b.example>\r\nRCPT TO:<ann@example.com>\r\nBDAT 5\r\nabc\r\nBDAT 0 LAST\r\n"
                         "QUIT\r\n");
  EXPECT_NE(out.find("550 5.1.1 <nobody@example.com>"), std::string::npos) << out;
  size_t n250 = 0;
  for (size_t p = out.find("250 "); p != std::string::npos; p = out.find("250 ", p + 1)) ++n250;
  EXPECT_EQ(n250, 9u) << out;  // MAIL, 2 RCPT, DATA end, MAIL, RCPT, 2 BDAT ... and EHLO's last line
  EXPECT_TRUE(s->closed());
  EXPECT_EQ(inbox(joe_).size(), 1u);
  auto ann = inbox(ann_);
  ASSERT_EQ(ann.size(), 2u);
  // Two recipients share one stored copy.
  EXPECT_EQ(inbox(joe_)[0].content, ann[0].content);
  EXPECT_EQ(content(ann[0]).find("Delivered-To"), std::string::npos);
  std::string second = content(ann[1]);
  EXPECT_EQ(second.substr(second.size() - 5), "abc\r\n");
}

TEST_F(SmtpSessionTest, RecipientsResolve) {
  auto s = session();
  std::string out = send(*s,
                         "EHLO c\r\nMAIL FROM:<x@remote.example>\r\nRCPT TO:<joe+lists@example.com>\r\n"
                         "RCPT TO:<team@example.com>\r\nRCPT TO:<whoever@catch.example>\r\n"
                         "RCPT TO:<someone@elsewhere.example>\r\nRCPT TO:<bad address>\r\nDATA\r\n" +
                             std::string(kBody) + ".\r\n");
  EXPECT_NE(out.find("550 5.7.1 <someone@elsewhere.example>: Relay access denied"), std::string::npos) << out;
  EXPECT_NE(out.find("501 5.1.3"), std::string::npos) << out;
  EXPECT_NE(out.find("250 2.0.0 Ok"), std::string::npos) << out;
  EXPECT_EQ(inbox(joe_).size(), 1u);  // once, though reached twice
  EXPECT_EQ(inbox(ann_).size(), 1u);
  // Alias forwarding to a remote address from an unauthenticated sender: queued.
  out = send(*s, "MAIL FROM:<x@remote.example>\r\nRCPT TO:<fwd@example.com>\r\nDATA\r\n" + std::string(kBody) + ".\r\n");
  EXPECT_NE(out.find("250 2.0.0 Ok"), std::string::npos) << out;
  auto q = store_->queue_list({});
  ASSERT_TRUE(q.is_ok());
  ASSERT_EQ(q->entries.size(), 1u);
  EXPECT_EQ(q->entries[0].recipients[0].address, "far@remote.example");
  EXPECT_EQ(q->entries[0].recipients[0].orcpt, "rfc822;fwd@example.com");
  EXPECT_EQ(inbox(joe_).size(), 2u);
}

TEST_F(SmtpSessionTest, PostmasterWithoutDomain) {
  ASSERT_TRUE(store_->alias_add({"postmaster@example.com", {"ann@example.com"}}).is_ok());
  auto s = session();
  std::string out = send(*s, "HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<Postmaster>\r\nDATA\r\nhi\r\n.\r\n");
  EXPECT_NE(out.find("250 2.0.0"), std::string::npos) << out;
  ASSERT_EQ(inbox(ann_).size(), 1u);
  EXPECT_NE(content(inbox(ann_)[0]).find("with SMTP id"), std::string::npos);
  EXPECT_EQ(send(*s, "VRFY joe\r\n").substr(0, 9), "252 2.5.2");
  EXPECT_EQ(send(*s, "EXPN team\r\n").substr(0, 9), "502 5.5.1");
  EXPECT_EQ(send(*s, "HELP\r\n").substr(0, 9), "214 2.0.0");
}

TEST_F(SmtpSessionTest, SubmissionRelayAndDsn) {
  auto s = session(Mode::submission);
  send(*s, "EHLO c\r\n");
  EXPECT_NE(send(*s, "MAIL FROM:<joe@example.com>\r\n").find("530 5.7.0"), std::string::npos);
  s = authed();
  EXPECT_NE(send(*s, "MAIL FROM:<ann@example.com>\r\n").find("553 5.7.1"), std::string::npos);
  EXPECT_NE(send(*s, "MAIL FROM:<team@example.com>\r\n").find("250"), std::string::npos);  // an alias of joe's
  send(*s, "RSET\r\n");
  std::string out = send(*s,
                         "MAIL FROM:<joe@example.com> RET=HDRS ENVID=abc+2B1 HOLDFOR=600 BY=3600;R SMTPUTF8\r\n"
                         "RCPT TO:<dest@remote.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;dest@remote.example\r\n"
                         "RCPT TO:<ann@example.com>\r\nDATA\r\n" + std::string(kBody) + ".\r\n");
  EXPECT_NE(out.find("250 2.0.0 Ok"), std::string::npos) << out;
  auto q = store_->queue_list({});
  ASSERT_EQ(q->entries.size(), 1u);
  const auto& e = q->entries[0];
  EXPECT_EQ(e.sender, "joe@example.com");
  EXPECT_EQ(e.envid, "abc+1");
  EXPECT_EQ(e.ret, 2);
  EXPECT_EQ(e.next_attempt, 1800000000 + 600);
  EXPECT_EQ(e.deliver_by, 1800000000 + 3600);
  EXPECT_TRUE(e.smtputf8);
  EXPECT_EQ(e.submitter, joe_);
  ASSERT_EQ(e.recipients.size(), 1u);
  EXPECT_EQ(e.recipients[0].notify, (1u << 1) | (1u << 2));
  EXPECT_EQ(e.recipients[0].orcpt, "rfc822;dest@remote.example");
  ASSERT_EQ(inbox(ann_).size(), 1u);
  EXPECT_EQ(inbox(ann_)[0].content, e.content);  // one copy for the mailbox and the queue
  std::string c = content(inbox(ann_)[0]);
  EXPECT_NE(c.find("with UTF8SMTPA id"), std::string::npos) << c;
}

TEST_F(SmtpSessionTest, SizeLimits) {
  auto s = session();
  send(*s, "EHLO c\r\n");
  EXPECT_NE(send(*s, "MAIL FROM:<> SIZE=20000\r\n").find("552 5.3.4"), std::string::npos);
  std::string big(11000, 'x');
  std::string out = send(*s, "MAIL FROM:<>\r\nRCPT TO:<joe@example.com>\r\nDATA\r\n" + big + "\r\n.\r\n");
  EXPECT_NE(out.find("552 5.3.4"), std::string::npos) << out;
  out = send(*s, "MAIL FROM:<>\r\nRCPT TO:<joe@example.com>\r\nBDAT 11000 LAST\r\n" + big.substr(0, 11000));
  EXPECT_NE(out.find("552 5.3.4"), std::string::npos) << out;
  EXPECT_EQ(inbox(joe_).size(), 0u);
  // The session goes on normally.
  out = send(*s, "MAIL FROM:<>\r\nRCPT TO:<joe@example.com>\r\nDATA\r\nsmall\r\n.\r\n");
  EXPECT_NE(out.find("250 2.0.0"), std::string::npos) << out;
}

TEST_F(SmtpSessionTest, LongLinesInData) {
  config_.max_message_size = 400000;
  auto s = session();
  send(*s, "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<joe@example.com>\r\nDATA\r\n");
  // A 200 KiB line without a line end arrives in pieces; it is passed on, not buffered.
  std::string line = "." + std::string(200 * 1024, 'x');
  for (size_t i = 0; i < line.size(); i += 7000) EXPECT_EQ(send(*s, line.substr(i, 7000)), "");
  std::string out = send(*s, "\r\n.\r\n");
  EXPECT_NE(out.find("250 2.0.0"), std::string::npos) << out;
  auto msgs = inbox(joe_);
  ASSERT_EQ(msgs.size(), 1u);
  std::string c = content(msgs[0]);
  EXPECT_EQ(c.substr(c.size() - 200 * 1024 - 2), std::string(200 * 1024, 'x') + "\r\n");  // dot unstuffed
}

TEST_F(SmtpSessionTest, BadInput) {
  auto s = session();
  EXPECT_NE(send(*s, "MAIL FROM:<>\r\n").find("503 5.5.1"), std::string::npos);
  EXPECT_NE(send(*s, "EHLO c\n").find("500 5.5.2 Bare LF"), std::string::npos);
  EXPECT_NE(send(*s, "EHLO c\r\nDATA\r\n").find("503 5.5.1"), std::string::npos);
  EXPECT_NE(send(*s, "RCPT TO:<joe@example.com>\r\n").find("503 5.5.1"), std::string::npos);
  EXPECT_NE(send(*s, std::string(600, 'A') + "\r\n").find("500 5.5.2 Line too long"), std::string::npos);
  EXPECT_NE(send(*s, "NOOP a\0b\r\n"s).find("500 5.5.2"), std::string::npos);
  // Bare LF, bare CR and NUL in content: refused, nothing stored; "\n.\n" does not end DATA.
  std::string out = send(*s, "MAIL FROM:<>\r\nRCPT TO:<joe@example.com>\r\nDATA\r\nbare\nlf\n.\nstill data\r\n.\r\n");
  EXPECT_NE(out.find("554 5.6.0 Message contains bare LF"), std::string::npos) << out;
  out = send(*s, "MAIL FROM:<>\r\nRCPT TO:<joe@example.com>\r\nDATA\r\nbare\rcr\r\n.\r\n");
  EXPECT_NE(out.find("554 5.6.0 Message contains bare CR"), std::string::npos) << out;
  out = send(*s, "MAIL FROM:<>\r\nRCPT TO:<joe@example.com>\r\nDATA\r\nn\0l\r\n.\r\n"s);
  EXPECT_NE(out.find("554 5.6.0 Message contains NUL"), std::string::npos) << out;
  out = send(*s, "MAIL FROM:<>\r\nRCPT TO:<joe@example.com>\r\nBDAT 4 LAST\r\na\nb\n");
  EXPECT_NE(out.find("554 5.6.0"), std::string::npos) << out;
  EXPECT_EQ(inbox(joe_).size(), 0u);
  // BINARYMIME over BDAT takes anything; over DATA it is refused.
  out = send(*s, "MAIL FROM:<> BODY=BINARYMIME\r\nRCPT TO:<joe@example.com>\r\nDATA\r\n");
  EXPECT_NE(out.find("503 5.5.1"), std::string::npos) << out;
  out = send(*s, "BDAT 6 LAST\r\n\0\n\r\xff\n\n"s);
  EXPECT_NE(out.find("250 2.0.0"), std::string::npos) << out;
  EXPECT_EQ(inbox(joe_).size(), 1u);
  // Non-ASCII addresses need SMTPUTF8.
  out = send(*s, "MAIL FROM:<jöe@example.com>\r\n");
  EXPECT_NE(out.find("553 5.6.7"), std::string::npos) << out;
  out = send(*s, "MAIL FROM:<jöe@exämple.com> SMTPUTF8\r\nRCPT TO:<joe@example.com>\r\n");
  EXPECT_EQ(out, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
}

TEST_F(SmtpSessionTest, JunkLimit) {
  config_.max_unauth_commands = 3;
  auto s = session();
  std::string out = send(*s, "FOO\r\nBAR\r\nBAZ\r\nQUX\r\nEHLO c\r\n");
  EXPECT_NE(out.find("421 4.7.0"), std::string::npos) << out;
  EXPECT_TRUE(s->closed());
  EXPECT_EQ(out.find("250"), std::string::npos);
}

TEST_F(SmtpSessionTest, Quota) {
  auto s = session();
  send(*s, "EHLO c\r\n");
  EXPECT_NE(send(*s, "MAIL FROM:<> SIZE=500\r\nRCPT TO:<full@example.com>\r\n").find("552 5.2.2"), std::string::npos);
  send(*s, "RSET\r\n");
  std::string out = send(*s, "MAIL FROM:<>\r\nRCPT TO:<full@example.com>\r\nDATA\r\n" + std::string(kBody) + ".\r\n");
  EXPECT_NE(out.find("552 5.2.2"), std::string::npos) << out;  // larger than the whole 100-byte quota
  EXPECT_EQ(inbox(full_).size(), 0u);
  // Fits the quota but not what is left of it: 452 4.2.2.
  ASSERT_TRUE(store_->quota_set({"full@example.com", {1000, 0}}).is_ok());
  out = send(*s, "MAIL FROM:<>\r\nRCPT TO:<full@example.com>\r\nDATA\r\n" + std::string(600, 'a') + "\r\n.\r\n");
  EXPECT_NE(out.find("250 2.0.0"), std::string::npos) << out;
  out = send(*s, "MAIL FROM:<>\r\nRCPT TO:<full@example.com>\r\nDATA\r\n" + std::string(300, 'a') + "\r\n.\r\n");
  EXPECT_NE(out.find("452 4.2.2"), std::string::npos) << out;
  EXPECT_EQ(inbox(full_).size(), 1u);
}

TEST_F(SmtpSessionTest, Lmtp) {
  auto s = session(Mode::lmtp);
  EXPECT_EQ(s->greeting(), "220 mx.example.com LMTP ready\r\n");
  EXPECT_NE(send(*s, "EHLO c\r\n").find("500 5.5.1"), std::string::npos);
  std::string out = send(*s, "LHLO mta\r\n");
  EXPECT_EQ(out.find("STARTTLS"), std::string::npos);
  EXPECT_EQ(out.find("AUTH"), std::string::npos);
  // full@ passes RCPT (no size given and 0 bytes used) but the message is too big for it.
  out = send(*s,
             "MAIL FROM:<a@remote.example>\r\nRCPT TO:<joe@example.com>\r\nRCPT TO:<far@remote.example>\r\n"
             "RCPT TO:<full@example.com>\r\nRCPT TO:<ann@example.com>\r\nDATA\r\n" + std::string(kBody) + ".\r\n");
  EXPECT_NE(out.find("550 5.7.1 <far@remote.example>"), std::string::npos) << out;
  EXPECT_NE(out.find("250 2.1.5 <joe@example.com> Ok"), std::string::npos) << out;
  EXPECT_NE(out.find("552 5.2.2 <full@example.com> Message is larger"), std::string::npos) << out;
  EXPECT_NE(out.find("250 2.1.5 <ann@example.com> Ok"), std::string::npos) << out;
  EXPECT_LT(out.find("<joe@example.com> Ok"), out.find("<full@example.com> Message"));
  EXPECT_EQ(inbox(joe_).size(), 1u);
  EXPECT_EQ(inbox(ann_).size(), 1u);
  EXPECT_EQ(inbox(full_).size(), 0u);
  std::string c = content(inbox(joe_)[0]);
  EXPECT_NE(c.find("with LMTP id"), std::string::npos) << c;
}

TEST_F(SmtpSessionTest, AuthPlainLogin) {
  auto s = session(Mode::submission);
  send(*s, "EHLO c\r\n");
  std::string bad = base64_encode(std::string("\0joe@example.com\0wrong", 22));
  EXPECT_NE(send(*s, "AUTH PLAIN " + bad + "\r\n").find("535 5.7.8"), std::string::npos);
  EXPECT_NE(send(*s, "AUTH PLAIN\r\n"), "");
  EXPECT_NE(send(*s, "*\r\n").find("501 5.0.0"), std::string::npos);
  EXPECT_NE(send(*s, "AUTH LOGIN\r\n").find("334 VXNlcm5hbWU6"), std::string::npos);
  EXPECT_NE(send(*s, base64_encode("Joe@Example.com") + "\r\n").find("334 UGFzc3dvcmQ6"), std::string::npos);
  EXPECT_NE(send(*s, base64_encode("secret") + "\r\n").find("235 2.7.0"), std::string::npos);
  EXPECT_EQ(s->auth_user(), "joe@example.com");
  EXPECT_NE(send(*s, "AUTH PLAIN x\r\n").find("503"), std::string::npos);

  auto t = session(Mode::submission);
  send(*t, "EHLO c\r\n");
  send(*t, "AUTH PLAIN " + bad + "\r\n");
  send(*t, "AUTH PLAIN " + bad + "\r\n");
  std::string out = send(*t, "AUTH PLAIN " + bad + "\r\n");
  EXPECT_NE(out.find("421 4.7.0"), std::string::npos) << out;
  EXPECT_TRUE(t->closed());
  EXPECT_GE(throttle_.failures("127.0.0.1", ""), 3u);
}

std::string hmac(std::string_view key, std::string_view data) {
  unsigned char out[32];
  unsigned len = 32;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

TEST_F(SmtpSessionTest, AuthScram) {
  auto s = session(Mode::submission);
  send(*s, "EHLO c\r\n");
  std::string client_first_bare = "n=joe@example.com,r=clientnonce";
  std::string out = send(*s, "AUTH SCRAM-SHA-256 " + base64_encode("n,," + client_first_bare) + "\r\n");
  ASSERT_EQ(out.substr(0, 4), "334 ") << out;
  std::string server_first = base64_decode(out.substr(4, out.size() - 6)).value();
  // r=<nonce>,s=<salt>,i=<n>
  std::string nonce = server_first.substr(2, server_first.find(',') - 2);
  size_t sp = server_first.find(",s=") + 3;
  std::string salt = base64_decode(server_first.substr(sp, server_first.find(",i=") - sp)).value();
  int iterations = std::stoi(server_first.substr(server_first.find(",i=") + 3));
  unsigned char salted[32];
  PKCS5_PBKDF2_HMAC("secret", 6, reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                    iterations, EVP_sha256(), 32, salted);
  std::string salted_password(reinterpret_cast<char*>(salted), 32);
  std::string client_key = hmac(salted_password, "Client Key");
  unsigned char stored[32];
  SHA256(reinterpret_cast<const unsigned char*>(client_key.data()), 32, stored);
  std::string without_proof = "c=biws,r=" + nonce;
  std::string auth_message = client_first_bare + "," + server_first + "," + without_proof;
  std::string signature = hmac(std::string(reinterpret_cast<char*>(stored), 32), auth_message);
  std::string proof(32, '\0');
  for (int i = 0; i < 32; ++i) proof[i] = static_cast<char>(client_key[i] ^ signature[i]);
  out = send(*s, base64_encode(without_proof + ",p=" + base64_encode(proof)) + "\r\n");
  ASSERT_EQ(out.substr(0, 4), "334 ") << out;
  EXPECT_EQ(base64_decode(out.substr(4, out.size() - 6)).value().substr(0, 2), "v=");
  out = send(*s, "\r\n");
  EXPECT_NE(out.find("235 2.7.0"), std::string::npos) << out;
  EXPECT_EQ(s->auth_user(), "joe@example.com");
}

TEST_F(SmtpSessionTest, StartTlsDiscardsPipelinedInput) {
  auto s = session(Mode::submission, false);
  send(*s, "EHLO c\r\n");
  std::string out = send(*s, "STARTTLS\r\nMAIL FROM:<injected@example.com>\r\n");
  EXPECT_EQ(out, "220 2.0.0 Ready to start TLS\r\n");
  EXPECT_TRUE(s->starttls_pending());
  s->tls_started("TLSv1.3 with cipher TLS_AES_256_GCM_SHA384");
  EXPECT_NE(send(*s, "MAIL FROM:<>\r\n").find("503 5.5.1"), std::string::npos);  // EHLO again first
  out = send(*s, "EHLO c\r\n");
  EXPECT_EQ(out.find("STARTTLS"), std::string::npos);
  EXPECT_NE(out.find("REQUIRETLS"), std::string::npos);
  EXPECT_NE(out.find("AUTH PLAIN"), std::string::npos);
  EXPECT_NE(out.find("FUTURERELEASE 604800"), std::string::npos);
}

class TestFilter : public MessageFilter {
 public:
  std::string_view name() const override { return "test"; }
  FilterResult run(const FilterContext& ctx, std::string_view message) override {
    seen = std::string(message);
    FilterResult r;
    r.prepend = "X-Test: yes\r\n";
    if (message.find("REJECT") != std::string_view::npos) {
      r.action = FilterResult::Action::reject;
      r.reply = Reply{550, "5.7.1", "Spam"};
    }
    if (message.find("JUNK") != std::string_view::npos) r.placement[junk_account] = Placement{"Junk", 0, {"$Junk"}};
    return r;
  }
  std::string seen;
  store::AccountId junk_account = 0;
};

TEST_F(SmtpSessionTest, Filters) {
  TestFilter f;
  f.junk_account = joe_;
  filters_.push_back(&f);
  auto s = session();
  std::string out = send(*s, "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<joe@example.com>\r\nDATA\r\nREJECT\r\n.\r\n");
  EXPECT_NE(out.find("550 5.7.1 Spam"), std::string::npos) << out;
  EXPECT_EQ(f.seen.rfind("Received: ", 0), 0u);
  out = send(*s, "MAIL FROM:<>\r\nRCPT TO:<joe@example.com>\r\nDATA\r\nJUNK\r\n.\r\n");
  EXPECT_NE(out.find("250 2.0.0"), std::string::npos) << out;
  EXPECT_EQ(inbox(joe_).size(), 0u);
  auto junk = inbox(joe_, "Junk");
  ASSERT_EQ(junk.size(), 1u);
  EXPECT_EQ(junk[0].keywords, std::vector<std::string>{"$Junk"});
  EXPECT_NE(content(junk[0]).find("\r\nX-Test: yes\r\nReceived: "), std::string::npos);
}

}  // namespace
}  // namespace mail::smtp
