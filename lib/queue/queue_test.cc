#include <gtest/gtest.h>

#include "auth/resolver.h"
#include "queue/dsn.h"
#include "queue/route.h"
#include "queue/smtp_client.h"

namespace mail::queue {
namespace {

TEST(QueueContent, OutboundDropsLocalTraceFields) {
  EXPECT_EQ(outbound_content("Return-Path: <a@b>\r\nDelivered-To: c@d\r\nReceived: x\r\n\r\nbody\r\n"),
            "Received: x\r\n\r\nbody\r\n");
  EXPECT_EQ(outbound_content("Subject: s\r\nReturn-Path: <a@b>\r\n\r\n"), "Subject: s\r\nReturn-Path: <a@b>\r\n\r\n");
  EXPECT_EQ(outbound_content("return-path: <>\r\n"), "");
  EXPECT_EQ(header_of("A: b\r\n\r\nbody"), "A: b\r\n\r\n");
}

TEST(QueueContent, DotStuffing) {
  EXPECT_EQ(dot_stuff(".a\r\nb\r\n.\r\n"), "..a\r\nb\r\n..\r\n.\r\n");
  EXPECT_EQ(dot_stuff("no end"), "no end\r\n.\r\n");
}

TEST(QueueReply, EnhancedStatus) {
  EXPECT_EQ((SmtpReply{550, "5.1.1 no such user"}).status(), "5.1.1");
  EXPECT_EQ((SmtpReply{451, "try later"}).status(), "4.0.0");
  EXPECT_EQ((SmtpReply{550, "4.1.1 mismatched class"}).status(), "5.0.0");
  EXPECT_EQ((SmtpReply{250, "ok"}).str(), "250 ok");
}

TEST(QueueReply, TakeReplyWholeRepliesOnly) {
  std::string in = "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-AUTH LOGIN PLAIN\r\n250 CHUNKING\r\n451 4.";
  auto r = take_reply(in);
  ASSERT_TRUE(r.is_ok() && r->has_value());
  EXPECT_EQ((*r)->code, 250);
  Extensions e = parse_ehlo(**r);
  EXPECT_TRUE(e.pipelining && e.chunking && e.auth_plain);
  EXPECT_FALSE(e.starttls || e.dsn);
  EXPECT_EQ(e.size, 1000u);
  EXPECT_EQ(in, "451 4.");
  auto partial = take_reply(in);
  ASSERT_TRUE(partial.is_ok());
  EXPECT_FALSE(partial->has_value());
  in = "250-a\r\n550 b\r\n";
  EXPECT_EQ(take_reply(in).code(), Code::protocol);
  in = "hello\r\n";
  EXPECT_EQ(take_reply(in).code(), Code::protocol);
}

TEST(QueueConfig, RetrySchedule) {
  auto s = parse_retry_schedule("30s, 5m,1h,2d,7");
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(*s, (std::vector<uint32_t>{30, 300, 3600, 172800, 7}));
  EXPECT_FALSE(parse_retry_schedule("").is_ok());
  EXPECT_FALSE(parse_retry_schedule("5x").is_ok());
  EXPECT_FALSE(parse_retry_schedule("0s").is_ok());
  EXPECT_FALSE(parse_retry_schedule("1m,,2m").is_ok());
}

TEST(QueueDsn, FieldsOfRfc3464) {
  Dsn d;
  d.reporting_mta = "mx.example.com";
  d.to = "joe@example.com";
  d.envid = "env 1";
  d.ret = 2;
  d.arrival = 1700000000;
  d.now = 1700000100;
  d.recipients.push_back({"far@remote.test", "rfc822;Far+2Bx@remote.test", "failed", "5.1.1", "mx.remote.test",
                          "550 5.1.1 no\r\nInjected: yes"});
  d.original = "Subject: hi\r\n\r\nsecret body\r\n";
  std::string m = build_dsn(d);
  EXPECT_NE(m.find("Content-Type: multipart/report; report-type=delivery-status;"), std::string::npos);
  EXPECT_NE(m.find("Reporting-MTA: dns; mx.example.com\r\nOriginal-Envelope-Id: env 1\r\n"), std::string::npos);
  EXPECT_NE(m.find("Original-Recipient: rfc822;Far+x@remote.test\r\nFinal-Recipient: rfc822; far@remote.test\r\n"
                   "Action: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.remote.test\r\n"
                   "Diagnostic-Code: smtp; 550 5.1.1 no  Injected: yes\r\n"),
            std::string::npos);
  EXPECT_NE(m.find("Content-Type: text/rfc822-headers\r\n\r\nSubject: hi\r\n\r\n"), std::string::npos);
  EXPECT_EQ(m.find("secret body"), std::string::npos);  // RET=HDRS
  d.ret = 1;
  EXPECT_NE(build_dsn(d).find("message/rfc822\r\n\r\nSubject: hi\r\n\r\nsecret body\r\n"), std::string::npos);
}

TEST(QueueRoute, MxPreferenceNullMxImplicitMxSmarthost) {
  auth::StubResolver dns;
  dns.add("remote.test", auth::DnsType::mx, "20 b.remote.test");
  dns.add("remote.test", auth::DnsType::mx, "10 a.remote.test");
  dns.add("a.remote.test", auth::DnsType::a, "127.0.0.2");
  dns.add("b.remote.test", auth::DnsType::a, "127.0.0.3");
  dns.add("nomail.test", auth::DnsType::mx, "0 ");
  dns.add("plain.test", auth::DnsType::a, "127.0.0.4");
  dns.fail("broken.test");
  QueueConfig config;
  auto r = find_route(dns, config, "remote.test");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  ASSERT_EQ(r->hosts.size(), 2u);
  EXPECT_EQ(r->hosts[0].name, "a.remote.test");
  EXPECT_EQ(r->hosts[0].addresses, std::vector<std::string>{"127.0.0.2"});
  EXPECT_EQ(r->port, 25);
  EXPECT_EQ(find_route(dns, config, "nomail.test").code(), Code::denied);
  EXPECT_EQ(find_route(dns, config, "nx.test").code(), Code::not_found);
  EXPECT_EQ(find_route(dns, config, "broken.test").code(), Code::temporary);
  auto implicit = find_route(dns, config, "plain.test");
  ASSERT_TRUE(implicit.is_ok());
  EXPECT_EQ(implicit->hosts[0].addresses[0], "127.0.0.4");

  config.smarthost = "127.0.0.9:2525";
  config.smarthost_domains = "other.test, Remote.Test";
  auto smart = find_route(dns, config, "remote.test");
  ASSERT_TRUE(smart.is_ok());
  EXPECT_TRUE(smart->smarthost);
  EXPECT_EQ(smart->port, 2525);
  EXPECT_EQ(smart->hosts[0].addresses[0], "127.0.0.9");
  EXPECT_FALSE(find_route(dns, config, "plain.test")->smarthost);
}

}  // namespace
}  // namespace mail::queue
