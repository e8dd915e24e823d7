#include "auth/dmarc.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace mail::auth {
namespace {

const PublicSuffixList& test_psl() {
  static const PublicSuffixList psl = PublicSuffixList::parse(
      "// a few rules in the list's format\n"
      "com\nuk\nco.uk\njp\n*.kawasaki.jp\n!city.kawasaki.jp\n"
      "// ===BEGIN PRIVATE DOMAINS===\nblogspot.com\n\xE4\xB8\xAD\xE5\x9B\xBD\n");
  return psl;
}

TEST(Psl, OrganizationalDomains) {
  const auto& psl = test_psl();
  EXPECT_EQ(psl.organizational_domain("mail.example.com"), "example.com");
  EXPECT_EQ(psl.organizational_domain("example.com"), "example.com");
  EXPECT_EQ(psl.organizational_domain("a.b.example.co.uk"), "example.co.uk");
  EXPECT_EQ(psl.organizational_domain("www.foo.kawasaki.jp"), "www.foo.kawasaki.jp");
  EXPECT_EQ(psl.organizational_domain("a.b.foo.kawasaki.jp"), "b.foo.kawasaki.jp");
  EXPECT_EQ(psl.organizational_domain("www.city.kawasaki.jp"), "city.kawasaki.jp");
  EXPECT_EQ(psl.organizational_domain("x.alice.blogspot.com"), "alice.blogspot.com");
  EXPECT_EQ(psl.organizational_domain("mail.example.unlisted"), "example.unlisted");  // the "*" rule
  EXPECT_EQ(psl.organizational_domain("www.example.xn--fiqs8s"), "example.xn--fiqs8s");  // U-label rule
  EXPECT_EQ(psl.public_suffix("com"), "com");
}

TEST(Psl, SystemListWhenInstalled) {
  if (!std::filesystem::exists(kDefaultPslPath)) GTEST_SKIP() << "publicsuffix is not installed";
  const auto& psl = PublicSuffixList::system();
  EXPECT_GT(psl.size(), 5000u);
  EXPECT_EQ(psl.organizational_domain("a.b.example.co.uk"), "example.co.uk");
  EXPECT_EQ(psl.organizational_domain("mail.example.com"), "example.com");
  EXPECT_EQ(psl.organizational_domain("www.city.kawasaki.jp"), "city.kawasaki.jp");
}

TEST(DmarcRecord, Parses) {
  auto r = parse_dmarc_record("v=DMARC1; p=reject; sp=quarantine; adkim=s; pct=20; rua=mailto:a@example.com,"
                              "mailto:b@example.net; fo=1; ri=3600");
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(r->p, DmarcPolicy::reject);
  EXPECT_EQ(r->sp, DmarcPolicy::quarantine);
  EXPECT_TRUE(r->strict_dkim);
  EXPECT_FALSE(r->strict_spf);
  EXPECT_EQ(r->pct, 20);
  ASSERT_EQ(r->rua.size(), 2u);
  EXPECT_EQ(r->rua[1], "mailto:b@example.net");
  EXPECT_EQ(r->ri, 3600u);
  EXPECT_FALSE(parse_dmarc_record("p=reject; v=DMARC1"));  // v must come first
  EXPECT_FALSE(parse_dmarc_record("v=DMARC1; p=block"));
  EXPECT_FALSE(parse_dmarc_record("v=DMARC1"));
  auto rua_only = parse_dmarc_record("v=DMARC1; rua=mailto:r@example.com");
  ASSERT_TRUE(rua_only);
  EXPECT_EQ(rua_only->p, DmarcPolicy::none);
}

DmarcResult run(StubResolver& dns, std::string_view from, DmarcAuth auth, int sample = 0) {
  DmarcOptions opt;
  opt.psl = &test_psl();
  opt.sample = sample;
  return dmarc_check(from, auth, dns, opt);
}

TEST(Dmarc, Alignment) {
  StubResolver dns;
  dns.add("_dmarc.example.com", DnsType::txt, "v=DMARC1; p=reject");
  // Relaxed: a DKIM signature of a sibling subdomain aligns.
  auto r = run(dns, "news.example.com", {{"mail.example.com"}, "", false});
  EXPECT_EQ(r.status, DmarcStatus::pass);
  EXPECT_TRUE(r.dkim_aligned);
  EXPECT_EQ(r.policy_domain, "example.com");
  // SPF of the organizational domain aligns too.
  r = run(dns, "example.com", {{}, "bounce.example.com", true});
  EXPECT_EQ(r.status, DmarcStatus::pass);
  EXPECT_TRUE(r.spf_aligned);
  // A passing SPF or DKIM of another domain does not.
  r = run(dns, "example.com", {{"example.net"}, "example.org", true});
  EXPECT_EQ(r.status, DmarcStatus::fail);
  EXPECT_EQ(r.disposition, DmarcPolicy::reject);
  // Strict alignment needs the exact domain.
  StubResolver strict;
  strict.add("_dmarc.example.com", DnsType::txt, "v=DMARC1; p=quarantine; adkim=s; aspf=s");
  r = run(strict, "example.com", {{"mail.example.com"}, "bounce.example.com", true});
  EXPECT_EQ(r.status, DmarcStatus::fail);
  EXPECT_EQ(r.disposition, DmarcPolicy::quarantine);
  r = run(strict, "example.com", {{"mail.example.com", "Example.COM"}, "", false});
  EXPECT_EQ(r.status, DmarcStatus::pass);
}

TEST(Dmarc, PolicySelection) {
  StubResolver dns;
  dns.add("_dmarc.example.com", DnsType::txt, "v=DMARC1; p=reject; sp=quarantine; np=reject");
  dns.add("exists.example.com", DnsType::a, "192.0.2.1");
  dns.add("_dmarc.own.example.com", DnsType::txt, "v=DMARC1; p=none");
  EXPECT_EQ(run(dns, "example.com", {}).policy, DmarcPolicy::reject);
  EXPECT_EQ(run(dns, "exists.example.com", {}).policy, DmarcPolicy::quarantine);
  EXPECT_EQ(run(dns, "ghost.example.com", {}).policy, DmarcPolicy::reject);  // np
  auto own = run(dns, "own.example.com", {});  // its own record wins
  EXPECT_EQ(own.policy, DmarcPolicy::none);
  EXPECT_EQ(own.policy_domain, "own.example.com");
  StubResolver none;
  EXPECT_EQ(run(none, "example.com", {}).status, DmarcStatus::none);
  StubResolver two;
  two.add("_dmarc.example.com", DnsType::txt, "v=DMARC1; p=reject");
  two.add("_dmarc.example.com", DnsType::txt, "v=DMARC1; p=none");
  EXPECT_EQ(run(two, "example.com", {}).status, DmarcStatus::none);
  StubResolver broken;
  broken.fail("_dmarc.example.com");
  EXPECT_EQ(run(broken, "example.com", {}).status, DmarcStatus::temperror);
}

TEST(Dmarc, PercentSampling) {
  StubResolver dns;
  dns.add("_dmarc.example.com", DnsType::txt, "v=DMARC1; p=reject; pct=25");
  EXPECT_EQ(run(dns, "example.com", {}, 10).disposition, DmarcPolicy::reject);
  EXPECT_EQ(run(dns, "example.com", {}, 60).disposition, DmarcPolicy::quarantine);  // one step down
  StubResolver q;
  q.add("_dmarc.example.com", DnsType::txt, "v=DMARC1; p=quarantine; pct=0");
  EXPECT_EQ(run(q, "example.com", {}, 0).disposition, DmarcPolicy::none);
}

TEST(Dmarc, FromDomain) {
  auto d = [](const char* msg) { return dmarc_from_domain(MailMessage(msg)); };
  EXPECT_EQ(*d("From: \"Doe, Jane\" <jane@Mail.Example.COM>\r\n\r\n"), "mail.example.com");
  EXPECT_EQ(*d("From: jane@example.com (Jane <x@evil.com>)\r\n\r\n"), "example.com");
  EXPECT_EQ(*d("From: a@example.com, b@example.com\r\n\r\n"), "example.com");
  EXPECT_FALSE(d("From: a@example.com, b@example.net\r\n\r\n"));
  EXPECT_FALSE(d("From: a@example.com\r\nFrom: b@example.com\r\n\r\n"));
  EXPECT_FALSE(d("To: a@example.com\r\n\r\n"));
  EXPECT_FALSE(d("From: undisclosed\r\n\r\n"));
}

}  // namespace
}  // namespace mail::auth
