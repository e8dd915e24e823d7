#include "smtp/command.h"

#include <gtest/gtest.h>

namespace mail::smtp {
namespace {

Command ok(std::string_view line) {
  auto r = parse_command(line);
  EXPECT_TRUE(r.command.has_value()) << line << " -> " << r.error.render();
  return r.command.value_or(Command{});
}

Reply bad(std::string_view line) {
  auto r = parse_command(line);
  EXPECT_FALSE(r.command.has_value()) << line;
  return r.error;
}

TEST(SmtpCommand, Verbs) {
  EXPECT_EQ(ok("EHLO client.example").verb, Verb::ehlo);
  EXPECT_EQ(ok("ehlo client.example").arg, "client.example");
  EXPECT_EQ(ok("HELO [192.0.2.1]").arg, "[192.0.2.1]");
  EXPECT_EQ(ok("LHLO mta").verb, Verb::lhlo);
  EXPECT_EQ(ok("DATA").verb, Verb::data);
  EXPECT_EQ(ok("rset").verb, Verb::rset);
  EXPECT_EQ(ok("NOOP anything at all").verb, Verb::noop);
  EXPECT_EQ(ok("QUIT").verb, Verb::quit);
  EXPECT_EQ(ok("STARTTLS").verb, Verb::starttls);
  EXPECT_EQ(ok("HELP").verb, Verb::help);
  EXPECT_EQ(ok("VRFY joe").arg, "joe");
  EXPECT_EQ(ok("AUTH PLAIN AGpvZQBzZWNyZXQ=").arg, "PLAIN AGpvZQBzZWNyZXQ=");
  EXPECT_EQ(bad("FOO bar").code, 500);
  EXPECT_EQ(bad("").code, 500);
  EXPECT_EQ(bad("EHLO").code, 501);
  EXPECT_EQ(bad("DATA now").code, 501);
  EXPECT_EQ(bad("QUIT please").code, 501);
  EXPECT_EQ(bad("AUTH").code, 501);
  EXPECT_EQ(bad("NOOP \x01").code, 500);
}

TEST(SmtpCommand, Bdat) {
  auto c = ok("BDAT 1000");
  EXPECT_EQ(c.chunk_size, 1000u);
  EXPECT_FALSE(c.last);
  c = ok("BDAT 0 LAST");
  EXPECT_EQ(c.chunk_size, 0u);
  EXPECT_TRUE(c.last);
  EXPECT_TRUE(ok("bdat 5 last").last);
  EXPECT_EQ(bad("BDAT").code, 501);
  EXPECT_EQ(bad("BDAT -1").code, 501);
  EXPECT_EQ(bad("BDAT 10 FIRST").code, 501);
  EXPECT_EQ(bad("BDAT 999999999999999999999999").code, 501);
}

TEST(SmtpCommand, MailPaths) {
  EXPECT_EQ(ok("MAIL FROM:<joe@example.com>").path, "joe@example.com");
  EXPECT_EQ(ok("mail from:<>").path, "");
  EXPECT_EQ(ok("MAIL FROM: <joe@example.com>").path, "joe@example.com");  // lenient space
  EXPECT_EQ(ok("MAIL FROM:joe@example.com").path, "joe@example.com");     // lenient brackets
  EXPECT_EQ(ok("MAIL FROM:<@relay.example,@b.example:joe@example.com>").path, "joe@example.com");
  EXPECT_EQ(ok("MAIL FROM:<\"joe > x\"@example.com>").path, "\"joe > x\"@example.com");
  EXPECT_EQ(ok("RCPT TO:<Postmaster>").path, "Postmaster");
  EXPECT_EQ(bad("MAIL FROM:<joe@example.com").code, 501);
  EXPECT_EQ(bad("MAIL <joe@example.com>").code, 501);
  EXPECT_EQ(bad("MAIL FROM:<joe@example.com>x").code, 501);
  EXPECT_EQ(bad("RCPT TO:<>").code, 501);
  EXPECT_EQ(bad("RCPT TO:<a<b@c>").code, 501);
  EXPECT_EQ(bad("RCPT FROM:<a@b>").code, 501);
}

TEST(SmtpCommand, MailParams) {
  auto c = ok("MAIL FROM:<a@b.example> SIZE=12345 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ+2B123 REQUIRETLS");
  EXPECT_EQ(c.mail.size, 12345u);
  EXPECT_EQ(c.mail.body, BodyType::eight_bit_mime);
  EXPECT_TRUE(c.mail.smtputf8);
  EXPECT_EQ(c.mail.ret, 2);
  EXPECT_EQ(c.mail.envid, "QQ+123");
  EXPECT_TRUE(c.mail.requiretls);
  c = ok("MAIL FROM:<a@b.example> body=binarymime auth=<> holdfor=3600 by=120;RT");
  EXPECT_EQ(c.mail.body, BodyType::binary_mime);
  EXPECT_EQ(c.mail.auth, "<>");
  EXPECT_EQ(c.mail.hold_for, 3600);
  ASSERT_TRUE(c.mail.by.has_value());
  EXPECT_EQ(c.mail.by->seconds, 120);
  EXPECT_EQ(c.mail.by->mode, 'R');
  EXPECT_TRUE(c.mail.by->trace);
  c = ok("MAIL FROM:<a@b.example> HOLDUNTIL=2030-01-02T03:04:05Z");
  EXPECT_EQ(c.mail.hold_until, 1893553445);
  EXPECT_EQ(ok("MAIL FROM:<a@b.example> AUTH=joe+40example.com").mail.auth, "joe@example.com");

  EXPECT_EQ(bad("MAIL FROM:<a@b> SIZE=abc").code, 501);
  EXPECT_EQ(bad("MAIL FROM:<a@b> SIZE").code, 501);
  EXPECT_EQ(bad("MAIL FROM:<a@b> SIZE=1 SIZE=2").code, 501);
  EXPECT_EQ(bad("MAIL FROM:<a@b> BODY=9BIT").code, 501);
  EXPECT_EQ(bad("MAIL FROM:<a@b> SMTPUTF8=yes").code, 501);
  EXPECT_EQ(bad("MAIL FROM:<a@b> RET=ALL").code, 501);
  EXPECT_EQ(bad("MAIL FROM:<a@b> ENVID=a+zz").code, 501);
  EXPECT_EQ(bad("MAIL FROM:<a@b> BY=0;N").code, 501);
  EXPECT_EQ(bad("MAIL FROM:<a@b> BY=10;X").code, 501);
  EXPECT_EQ(bad("MAIL FROM:<a@b> HOLDUNTIL=2030-13-02T03:04:05Z").code, 501);
  EXPECT_EQ(bad("MAIL FROM:<a@b> X-FOO=1").code, 555);
  EXPECT_EQ(bad("MAIL FROM:<a@b> NOTIFY=NEVER").code, 555);
  EXPECT_EQ(bad("MAIL FROM:<a@b> =1").code, 501);
}

TEST(SmtpCommand, RcptParams) {
  auto c = ok("RCPT TO:<x@y.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+2Bt@y.example");
  EXPECT_EQ(c.rcpt.notify, (1u << 1) | (1u << 2));
  EXPECT_EQ(c.rcpt.orcpt, "rfc822;x+2Bt@y.example");
  EXPECT_EQ(c.rcpt.orcpt_address, "x+t@y.example");
  EXPECT_EQ(ok("RCPT TO:<x@y> NOTIFY=never").rcpt.notify, 1u);
  EXPECT_EQ(bad("RCPT TO:<x@y> NOTIFY=NEVER,DELAY").code, 501);
  EXPECT_EQ(bad("RCPT TO:<x@y> NOTIFY=SOMETIMES").code, 501);
  EXPECT_EQ(bad("RCPT TO:<x@y> NOTIFY=DELAY,DELAY").code, 501);
  EXPECT_EQ(bad("RCPT TO:<x@y> ORCPT=x@y").code, 501);
  EXPECT_EQ(bad("RCPT TO:<x@y> ORCPT=;x@y").code, 501);
  EXPECT_EQ(bad("RCPT TO:<x@y> SIZE=1").code, 555);
}

TEST(SmtpCommand, Xtext) {
  EXPECT_EQ(xtext_decode("abc"), "abc");
  EXPECT_EQ(xtext_decode("a+2Bb+3D"), "a+b=");
  EXPECT_EQ(xtext_decode(""), "");
  EXPECT_FALSE(xtext_decode("a+2b"));  // lower-case hex is not xtext
  EXPECT_FALSE(xtext_decode("a+2"));
  EXPECT_FALSE(xtext_decode("a+"));
  EXPECT_FALSE(xtext_decode("a=b"));
  EXPECT_FALSE(xtext_decode("a b"));
  EXPECT_EQ(xtext_encode("a+b= c"), "a+2Bb+3D+20c");
  EXPECT_EQ(xtext_decode(xtext_encode("\x01\xff+=ok")), "\x01\xff+=ok");
}

TEST(SmtpCommand, Rfc3339) {
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_rfc3339("2000-03-01T00:00:00Z"), 951868800);
  EXPECT_EQ(parse_rfc3339("1970-01-01T01:00:00+01:00"), 0);
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00.123-00:30"), 1800);
  EXPECT_FALSE(parse_rfc3339("1970-01-01 00:00:00Z"));
  EXPECT_FALSE(parse_rfc3339("1970-01-01T00:00:00"));
  EXPECT_FALSE(parse_rfc3339("1970-02-30T00:00:00Z"));
  EXPECT_FALSE(parse_rfc3339("1970-01-01T24:00:00Z"));
  EXPECT_FALSE(parse_rfc3339("1970-01-01T00:00:00Zjunk"));
}

TEST(SmtpCommand, ReplyRender) {
  EXPECT_EQ((Reply{250, "2.0.0", "Ok"}).render(), "250 2.0.0 Ok\r\n");
  EXPECT_EQ((Reply{250, "", "mx.example\nPIPELINING\nSIZE 10"}).render(),
            "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 10\r\n");
}

}  // namespace
}  // namespace mail::smtp
