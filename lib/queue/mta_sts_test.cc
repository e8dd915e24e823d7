#include "queue/mta_sts.h"

#include <gtest/gtest.h>

namespace mail::queue {
namespace {

TEST(MtaSts, ParsesAPolicy) {
  auto p = parse_sts_policy("version: STSv1\r\nmode: enforce\r\nmx: MX1.Example.com\r\nmx: *.example.net\r\n"
                            "max_age: 604800\r\nfuture_key: anything at all\r\n");
  ASSERT_TRUE(p) << p.status().to_string();
  EXPECT_EQ(p->sts_mode(), StsMode::enforce);
  EXPECT_EQ(p->max_age, 604800u);
  EXPECT_EQ(p->mx, (std::vector<std::string>{"mx1.example.com", "*.example.net"}));
  // LF lines, trailing blank lines and a far too long max_age (capped at one year)
  auto q = parse_sts_policy("version: STSv1\nmode: testing\nmx: a.b\nmax_age: 9999999999\n\n");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->sts_mode(), StsMode::testing);
  EXPECT_EQ(q->max_age, 31557600u);
  auto none = parse_sts_policy("version: STSv1\nmode: none\nmax_age: 86400\n");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->sts_mode(), StsMode::none);
}

TEST(MtaSts, RejectsBadPolicies) {
  for (const char* bad : {
           "",
           "mode: enforce\nmx: a.b\nmax_age: 1\n",                            // no version
           "version: STSv2\nmode: enforce\nmx: a.b\nmax_age: 1\n",            // unknown version
           "version: STSv1\nmode: strict\nmx: a.b\nmax_age: 1\n",             // unknown mode
           "version: STSv1\nmode: enforce\nmax_age: 1\n",                     // no mx
           "version: STSv1\nmode: enforce\nmx: a.b\n",                        // no max_age
           "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: -1\n",           // not a number
           "version: STSv1\nmode: enforce\nmx: a..b\nmax_age: 1\n",           // empty label
           "version: STSv1\nmode: enforce\nmx: a.*.b\nmax_age: 1\n",          // wildcard inside
           "version: STSv1\nmode: enforce\nmx: -a.b\nmax_age: 1\n",           // leading hyphen
           "version: STSv1\nmode: enforce\nmode: none\nmx: a.b\nmax_age: 1\n",  // twice
           "version: STSv1\n\nmode: enforce\nmx: a.b\nmax_age: 1\n",          // blank line inside
           "version STSv1\nmode: enforce\nmx: a.b\nmax_age: 1\n",             // no colon
           "<html>version: STSv1</html>\n",
       })
    EXPECT_FALSE(parse_sts_policy(bad)) << bad;
}

TEST(MtaSts, MxPatterns) {
  auto p = parse_sts_policy("version: STSv1\nmode: enforce\nmx: mx.example.com\nmx: *.example.net\nmax_age: 1\n");
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->allows("mx.example.com"));
  EXPECT_TRUE(p->allows("MX.Example.COM."));
  EXPECT_TRUE(p->allows("a.example.net"));
  EXPECT_FALSE(p->allows("example.net"));      // the wildcard needs a label
  EXPECT_FALSE(p->allows("a.b.example.net"));  // and only one
  EXPECT_FALSE(p->allows("mx.example.com.evil.test"));
  EXPECT_FALSE(p->allows("xmx.example.com"));
}

TEST(MtaSts, TxtRecord) {
  EXPECT_EQ(*parse_sts_record("v=STSv1; id=20160831085700Z;"), "20160831085700Z");
  EXPECT_EQ(*parse_sts_record("v=STSv1;id=abc"), "abc");
  EXPECT_FALSE(parse_sts_record("v=STSv1;"));
  EXPECT_FALSE(parse_sts_record("v=STSv1; id=bad-id;"));
  EXPECT_FALSE(parse_sts_record("id=1; v=STSv1"));
  EXPECT_FALSE(parse_sts_record("v=spf1 -all"));
  EXPECT_FALSE(parse_sts_record("v=STSv1; id=123456789012345678901234567890123"));  // 33 characters
}

TEST(MtaSts, HttpResponse) {
  EXPECT_EQ(*parse_sts_http_response("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nbody"), "body");
  EXPECT_EQ(*parse_sts_http_response("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                                     "Content-Length: 2\r\n\r\nbody"),
            "bo");
  EXPECT_FALSE(parse_sts_http_response("HTTP/1.1 301 Moved\r\nLocation: x\r\nContent-Type: text/plain\r\n\r\n"));
  EXPECT_FALSE(parse_sts_http_response("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\nbody"));
  EXPECT_FALSE(parse_sts_http_response("HTTP/1.1 200 OK\r\nContent-Type: text/plainish\r\n\r\nbody"));
  EXPECT_FALSE(parse_sts_http_response("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nbody"));
  EXPECT_FALSE(parse_sts_http_response("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"));
  EXPECT_FALSE(parse_sts_http_response("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" +
                                       std::string(70000, 'x')));
}

TEST(MtaSts, CachedForm) {
  auto p = parse_sts_policy("version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 100\n");
  ASSERT_TRUE(p);
  p->id = "7";
  p->fetched = 1000;
  StsPolicy q;
  ASSERT_TRUE(decode(encode(*p), q));
  EXPECT_EQ(q.mx, p->mx);
  EXPECT_EQ(q.id, "7");
  EXPECT_FALSE(q.expired(1099));
  EXPECT_TRUE(q.expired(1100));
}

}  // namespace
}  // namespace mail::queue
