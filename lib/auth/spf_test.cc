#include "auth/spf.h"

#include <gtest/gtest.h>

namespace mail::auth {
namespace {

SpfVerdict check(StubResolver& dns, const std::string& ip, const std::string& from, const std::string& helo = "mx.example.net") {
  SpfRequest req;
  req.ip = ip;
  req.mail_from = from;
  req.helo = helo;
  SpfOptions opt;
  opt.default_explanation = "not allowed";
  return spf_check(req, dns, opt);
}

TEST(SpfRecord, Parses) {
  auto r = parse_spf_record("v=spf1 +a mx/24 -ip4:192.0.2.0/24 ~ip6:2001:db8::/32 a:x.example.com/24//64 "
                            "include:_spf.example.com exists:%{ir}.example.com ?all redirect=x.example.com "
                            "exp=why.example.com foo=bar");
  ASSERT_TRUE(r) << r.status().message();
  ASSERT_EQ(r->terms.size(), 11u);
  EXPECT_EQ(r->terms[2].qualifier, '-');
  EXPECT_EQ(r->terms[2].cidr4, 24);
  EXPECT_EQ(r->terms[4].domain_spec, "x.example.com");
  EXPECT_EQ(r->terms[4].cidr6, 64);
  EXPECT_EQ(r->redirect, 8);
  EXPECT_EQ(r->exp, 9);
}

TEST(SpfRecord, RejectsBadSyntax) {
  for (const char* bad : {"v=spf1 a:", "v=spf1 ip4:1.2.3.4/33", "v=spf1 ip4:1.2.3", "v=spf1 all:x",
                          "v=spf1 foo", "v=spf1 a:example", "v=spf1 redirect=a.com redirect=b.com",
                          "v=spf1 include:%{x}.com", "v=spf1 a:%{c}.example.com", "v=spf1 ip6:::1/129",
                          "v=spf1 mx/08", "v=spf1 -all\t", "v=spf1 exists:%"}) {
    EXPECT_FALSE(parse_spf_record(bad)) << bad;
  }
  EXPECT_FALSE(is_spf_record("v=spf10 -all"));
  EXPECT_TRUE(is_spf_record("V=SPF1"));
}

TEST(Spf, Mechanisms) {
  StubResolver dns;
  dns.add("example.com", DnsType::txt, "v=spf1 ip4:192.0.2.0/24 a mx include:inc.example.org ~all");
  dns.add("example.com", DnsType::a, "198.51.100.1");
  dns.add("example.com", DnsType::mx, "10 mx.example.com");
  dns.add("mx.example.com", DnsType::a, "198.51.100.25");
  dns.add("inc.example.org", DnsType::txt, "v=spf1 ip6:2001:db8::/32 -all");
  EXPECT_EQ(check(dns, "192.0.2.77", "a@example.com").result, SpfResult::pass);
  EXPECT_EQ(check(dns, "198.51.100.1", "a@example.com").result, SpfResult::pass);
  EXPECT_EQ(check(dns, "198.51.100.25", "a@example.com").result, SpfResult::pass);
  EXPECT_EQ(check(dns, "2001:db8::5", "a@example.com").result, SpfResult::pass);
  EXPECT_EQ(check(dns, "203.0.113.9", "a@example.com").result, SpfResult::softfail);
  EXPECT_EQ(check(dns, "::ffff:192.0.2.1", "a@example.com").result, SpfResult::pass);
  EXPECT_EQ(check(dns, "192.0.2.1", "a@nowhere.example").result, SpfResult::none);
  // An empty MAIL FROM checks the HELO name.
  EXPECT_EQ(check(dns, "192.0.2.1", "", "example.com").result, SpfResult::pass);
}

TEST(Spf, FailCarriesTheExplanation) {
  StubResolver dns;
  dns.add("example.com", DnsType::txt, "v=spf1 -all exp=why.example.com");
  dns.add("why.example.com", DnsType::txt, "%{i} may not send for %{d} (%{l})");
  auto v = check(dns, "192.0.2.1", "joe@example.com");
  EXPECT_EQ(v.result, SpfResult::fail);
  EXPECT_EQ(v.explanation, "192.0.2.1 may not send for example.com (joe)");
  StubResolver plain;
  plain.add("example.com", DnsType::txt, "v=spf1 -all");
  EXPECT_EQ(check(plain, "192.0.2.1", "joe@example.com").explanation, "not allowed");
}

TEST(Spf, LookupLimits) {
  StubResolver dns;
  std::string rec = "v=spf1";
  for (int i = 0; i < 11; ++i) {
    std::string name = "i" + std::to_string(i) + ".example.com";
    rec += " include:" + name;
    dns.add(name, DnsType::txt, "v=spf1 -all");
  }
  dns.add("example.com", DnsType::txt, rec + " +all");
  EXPECT_EQ(check(dns, "192.0.2.1", "a@example.com").result, SpfResult::permerror);
  StubResolver voids;
  voids.add("example.com", DnsType::txt, "v=spf1 a:n1.example.com a:n2.example.com a:n3.example.com +all");
  EXPECT_EQ(check(voids, "192.0.2.1", "a@example.com").result, SpfResult::permerror);
  StubResolver loop;
  loop.add("example.com", DnsType::txt, "v=spf1 include:example.com");
  EXPECT_EQ(check(loop, "192.0.2.1", "a@example.com").result, SpfResult::permerror);
}

TEST(Spf, Errors) {
  StubResolver dns;
  dns.fail("example.com");
  EXPECT_EQ(check(dns, "192.0.2.1", "a@example.com").result, SpfResult::temperror);
  StubResolver two;
  two.add("example.com", DnsType::txt, "v=spf1 -all");
  two.add("example.com", DnsType::txt, "v=spf1 +all");
  EXPECT_EQ(check(two, "192.0.2.1", "a@example.com").result, SpfResult::permerror);
  StubResolver redirect;
  redirect.add("example.com", DnsType::txt, "v=spf1 redirect=none.example.com");
  EXPECT_EQ(check(redirect, "192.0.2.1", "a@example.com").result, SpfResult::permerror);
  EXPECT_EQ(check(redirect, "not-an-ip", "a@example.com").result, SpfResult::permerror);
}

TEST(Spf, Macros) {
  StubResolver dns;
  // RFC 7208 7.4: %{l1r-} of "mary-joe" is "mary".
  dns.add("example.com", DnsType::txt, "v=spf1 exists:%{ir}.%{l1r-}.%{o}._spf.%{d2} -all");
  dns.add("1.2.0.192.mary.example.com._spf.example.com", DnsType::a, "127.0.0.2");
  EXPECT_EQ(check(dns, "192.0.2.1", "mary-joe@example.com").result, SpfResult::pass);
  EXPECT_EQ(check(dns, "192.0.2.2", "mary-joe@example.com").result, SpfResult::fail);
}

}  // namespace
}  // namespace mail::auth
