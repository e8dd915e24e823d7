#include "base/address.h"

#include <gtest/gtest.h>

using mail::canonical_domain;
using mail::parse_address;

TEST(Address, CanonicalDomainLowercasesAndStripsDot) {
  EXPECT_EQ(*canonical_domain("Example.ORG."), "example.org");
}

TEST(Address, InternationalisedDomainBecomesALabel) {
  EXPECT_EQ(*canonical_domain("Bücher.example"), "xn--bcher-kva.example");
  EXPECT_EQ(*canonical_domain("xn--bcher-kva.example"), "xn--bcher-kva.example");
  EXPECT_EQ(mail::display_domain("xn--bcher-kva.example"), "bücher.example");
}

TEST(Address, RejectsBadDomains) {
  for (const char* d : {"", ".", "a..b", "-a.b", "a-.b", "a b.c", "exa_mple.org", "[1.2.3.4]",
                        "xn--zz-.example"}) {
    EXPECT_FALSE(canonical_domain(d).is_ok()) << d;
  }
  EXPECT_FALSE(canonical_domain(std::string(64, 'a') + ".org").is_ok());
}

TEST(Address, ParsesAndCanonicalises) {
  auto a = parse_address("John.Doe@Example.org");
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(a->local, "john.doe");
  EXPECT_EQ(a->str(), "john.doe@example.org");
  auto u = parse_address("jörg@bücher.example");
  ASSERT_TRUE(u.is_ok());
  EXPECT_EQ(u->str(), "jörg@xn--bcher-kva.example");
  auto q = parse_address("\"a b\"@example.org");
  ASSERT_TRUE(q.is_ok());
  EXPECT_EQ(q->local, "a b");
  EXPECT_EQ(q->str(), "\"a b\"@example.org");
}

TEST(Address, RejectsBadAddresses) {
  for (const char* s : {"", "@example.org", "joe@", "joe", "jo e@example.org", "joe..x@example.org",
                        ".joe@example.org", "joe@exa mple.org", "\"unterminated@example.org",
                        "joe@[127.0.0.1]"}) {
    EXPECT_FALSE(parse_address(s).is_ok()) << s;
  }
  EXPECT_FALSE(parse_address(std::string(65, 'a') + "@example.org").is_ok());
  EXPECT_FALSE(parse_address(std::string("a\xff@example.org")).is_ok());
}

TEST(Address, SplitsDetail) {
  auto p = mail::split_detail("joe+lists");
  EXPECT_EQ(p.user, "joe");
  EXPECT_EQ(p.detail, "lists");
  EXPECT_EQ(mail::split_detail("+x").user, "+x");
  EXPECT_EQ(mail::split_detail("joe").detail, "");
}
