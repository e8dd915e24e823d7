#include "auth/arc.h"

#include <gtest/gtest.h>

namespace mail::auth {
namespace {

const DkimKey& key() {
  static DkimKey k = *DkimKey::generate(DkimAlgorithm::ed25519_sha256);
  return k;
}

StubResolver dns() {
  StubResolver r;
  r.add("s1._domainkey.fwd.example", DnsType::txt, key().dns_record());
  return r;
}

const char kMessage[] =
    "Authentication-Results: mx.fwd.example; arc=none;\r\n spf=pass smtp.mailfrom=example.org;\r\n"
    " dkim=pass header.d=example.org\r\n"
    "From: a@example.org\r\nTo: list@fwd.example\r\nSubject: hi\r\n\r\nbody\r\n";

std::string seal(const std::string& msg) {
  ArcSealOptions opt;
  opt.domain = "fwd.example";
  opt.selector = "s1";
  opt.authserv_id = "mx.fwd.example";
  opt.timestamp = 1700000000;
  auto set = arc_seal(MailMessage(msg), key(), opt);
  EXPECT_TRUE(set) << set.status().message();
  return *set + msg;
}

TEST(Arc, NoSetsIsNone) {
  auto r = dns();
  EXPECT_EQ(arc_validate(MailMessage(kMessage), r).status, ArcStatus::none);
}

TEST(Arc, SealedChainsValidate) {
  auto r = dns();
  std::string once = seal(kMessage);
  EXPECT_NE(once.find("ARC-Seal: a=ed25519-sha256;"), std::string::npos);
  EXPECT_NE(once.find("cv=none; d=fwd.example; i=1;"), std::string::npos);
  EXPECT_NE(once.find("ARC-Authentication-Results: i=1; mx.fwd.example; arc=none;"), std::string::npos);
  auto v = arc_validate(MailMessage(once), r);
  EXPECT_EQ(v.status, ArcStatus::pass) << v.reason;
  EXPECT_EQ(v.instances, 1);

  std::string twice = seal("Authentication-Results: mx.fwd.example; arc=pass\r\n" + once);
  EXPECT_NE(twice.find("cv=pass; d=fwd.example; i=2;"), std::string::npos);
  v = arc_validate(MailMessage(twice), r);
  EXPECT_EQ(v.status, ArcStatus::pass) << v.reason;
  EXPECT_EQ(v.instances, 2);

  std::string changed = twice;
  changed.replace(changed.find("body"), 4, "BODY");
  EXPECT_EQ(arc_validate(MailMessage(changed), r).status, ArcStatus::fail);
  // Dropping a header field of set 1 breaks the chain.
  std::string missing = twice;
  size_t at = missing.find("ARC-Authentication-Results: i=1");
  missing.erase(at, missing.find("\r\nFrom:", at) + 2 - at);
  EXPECT_EQ(arc_validate(MailMessage(missing), r).status, ArcStatus::fail);
}

TEST(Arc, FailedChainsGetNoMoreSets) {
  std::string failed = seal("Authentication-Results: mx.fwd.example; arc=fail\r\n" + seal(kMessage));
  EXPECT_NE(failed.find("cv=fail"), std::string::npos);
  auto r = dns();
  EXPECT_EQ(arc_validate(MailMessage(failed), r).status, ArcStatus::fail);
  ArcSealOptions opt{"fwd.example", "s1", "mx.fwd.example"};
  auto more = arc_seal(MailMessage("Authentication-Results: mx.fwd.example; arc=pass\r\n" + failed), key(), opt);
  ASSERT_TRUE(more);
  EXPECT_EQ(*more, "");
  EXPECT_EQ(arc_seal(MailMessage("From: a@b.example\r\n\r\n"), key(), opt).code(), Code::invalid);
}

}  // namespace
}  // namespace mail::auth
