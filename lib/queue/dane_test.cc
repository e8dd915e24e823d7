#include "queue/dane.h"

#include <gtest/gtest.h>

namespace mail::queue {
namespace {

std::string rdata(uint8_t usage, uint8_t selector, uint8_t mtype, size_t len) {
  std::string s{static_cast<char>(usage), static_cast<char>(selector), static_cast<char>(mtype)};
  return s + std::string(len, '\x5a');
}

SecureAnswer answer(DnsSecurity security, std::vector<std::string> records = {"\x7f\0\0\x02"}) {
  SecureAnswer a;
  a.security = security;
  a.rdata = std::move(records);
  if (security == DnsSecurity::bogus) a.why = "signature expired";
  return a;
}

TEST(Dane, ParsesTlsaRdata) {
  auto t = parse_tlsa(rdata(3, 1, 1, 32));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->usage, 3);
  EXPECT_EQ(t->selector, 1);
  EXPECT_EQ(t->mtype, 1);
  EXPECT_EQ(t->data.size(), 32u);
  EXPECT_FALSE(parse_tlsa(std::string("\x03\x01\x01", 3)));  // no data
  EXPECT_FALSE(parse_tlsa(""));
}

TEST(Dane, OnlyDaneUsagesAreUsableForSmtp) {
  EXPECT_TRUE(usable_tlsa(*parse_tlsa(rdata(3, 1, 1, 32))));
  EXPECT_TRUE(usable_tlsa(*parse_tlsa(rdata(2, 0, 2, 64))));
  EXPECT_TRUE(usable_tlsa(*parse_tlsa(rdata(3, 0, 0, 300))));
  EXPECT_FALSE(usable_tlsa(*parse_tlsa(rdata(0, 1, 1, 32))));  // PKIX-TA
  EXPECT_FALSE(usable_tlsa(*parse_tlsa(rdata(1, 1, 1, 32))));  // PKIX-EE
  EXPECT_FALSE(usable_tlsa(*parse_tlsa(rdata(3, 2, 1, 32))));  // unknown selector
  EXPECT_FALSE(usable_tlsa(*parse_tlsa(rdata(3, 1, 3, 32))));  // unknown matching type
  EXPECT_FALSE(usable_tlsa(*parse_tlsa(rdata(3, 1, 1, 31))));  // digest of the wrong length
}

TEST(Dane, DomainNeedsASecureMxAnswer) {
  StubDnssecResolver r;
  r.add("signed.example", kDnsMx, answer(DnsSecurity::secure));
  r.add("plain.example", kDnsMx, answer(DnsSecurity::insecure));
  r.add("bogus.example", kDnsMx, answer(DnsSecurity::bogus));
  EXPECT_TRUE(*dane_domain_secure(r, "signed.example"));
  EXPECT_FALSE(*dane_domain_secure(r, "plain.example"));
  auto bogus = dane_domain_secure(r, "bogus.example");
  ASSERT_FALSE(bogus);
  EXPECT_EQ(bogus.code(), Code::temporary);
  EXPECT_NE(bogus.status().message().find("dnssec-invalid"), std::string::npos);
  EXPECT_EQ(dane_domain_secure(r, "down.example").code(), Code::temporary);  // never a downgrade
}

TEST(Dane, HostPolicyFollowsTheTlsaAnswer) {
  StubDnssecResolver r;
  auto host = [&](const std::string& name, DnsSecurity addr, std::optional<SecureAnswer> tlsa) {
    r.add(name, kDnsA, answer(addr));
    if (tlsa) r.add("_25._tcp." + name, kDnsTlsa, *tlsa);
  };
  host("ee.example", DnsSecurity::secure, answer(DnsSecurity::secure, {rdata(3, 1, 1, 32), rdata(1, 1, 1, 32)}));
  host("pkix.example", DnsSecurity::secure, answer(DnsSecurity::secure, {rdata(1, 1, 1, 32)}));
  host("none.example", DnsSecurity::secure, answer(DnsSecurity::secure, {}));
  host("insecure.example", DnsSecurity::secure, answer(DnsSecurity::insecure, {rdata(3, 1, 1, 32)}));
  host("plainaddr.example", DnsSecurity::insecure, answer(DnsSecurity::secure, {rdata(3, 1, 1, 32)}));
  host("bogus.example", DnsSecurity::secure, answer(DnsSecurity::bogus));
  host("fail.example", DnsSecurity::secure, std::nullopt);  // the TLSA lookup times out

  DanePolicy ee = dane_policy(r, "ee.example", 25);
  EXPECT_EQ(ee.kind, DanePolicy::verify);
  ASSERT_EQ(ee.records.size(), 1u);  // the PKIX-EE record is left out
  EXPECT_EQ(ee.records[0].usage, 3);
  EXPECT_EQ(dane_policy(r, "pkix.example", 25).kind, DanePolicy::tls_only);
  EXPECT_EQ(dane_policy(r, "none.example", 25).kind, DanePolicy::none);
  EXPECT_EQ(dane_policy(r, "insecure.example", 25).kind, DanePolicy::none);
  EXPECT_EQ(dane_policy(r, "plainaddr.example", 25).kind, DanePolicy::none);
  DanePolicy bogus = dane_policy(r, "bogus.example", 25);
  EXPECT_EQ(bogus.kind, DanePolicy::unusable);
  EXPECT_EQ(bogus.result_type, "dnssec-invalid");
  EXPECT_NE(bogus.why.find("signature expired"), std::string::npos);
  EXPECT_EQ(dane_policy(r, "fail.example", 25).kind, DanePolicy::unusable);
  EXPECT_EQ(dane_policy(r, "ee.example", 2525).kind, DanePolicy::unusable);  // _2525._tcp: not answered
}

TEST(Dane, AliasedHostTakesTheRecordsOfItsCnameTargetFirst) {
  StubDnssecResolver r;
  auto alias = [&](const std::string& name, const std::string& target) {
    SecureAnswer a = answer(DnsSecurity::secure);
    a.canonical = target;
    r.add(name, kDnsA, a);
  };
  alias("mx.one.example", "real.one.example");  // records at both names: the target's win
  r.add("_25._tcp.real.one.example", kDnsTlsa, answer(DnsSecurity::secure, {rdata(3, 1, 1, 32)}));
  r.add("_25._tcp.mx.one.example", kDnsTlsa, answer(DnsSecurity::secure, {rdata(2, 0, 1, 32)}));
  alias("mx.two.example", "real.two.example");  // none at the target: the MX name's
  r.add("_25._tcp.real.two.example", kDnsTlsa, answer(DnsSecurity::secure, {}));
  r.add("_25._tcp.mx.two.example", kDnsTlsa, answer(DnsSecurity::secure, {rdata(2, 0, 1, 32)}));
  alias("mx.three.example", "real.three.example");  // bogus at the target: no fallback
  r.add("_25._tcp.real.three.example", kDnsTlsa, answer(DnsSecurity::bogus));
  r.add("_25._tcp.mx.three.example", kDnsTlsa, answer(DnsSecurity::secure, {rdata(3, 1, 1, 32)}));

  DanePolicy one = dane_policy(r, "mx.one.example", 25);
  ASSERT_EQ(one.kind, DanePolicy::verify);
  EXPECT_EQ(one.records[0].usage, 3);
  EXPECT_EQ(one.base_domain, "real.one.example");
  EXPECT_EQ(one.other_name, "mx.one.example");  // a DANE-TA peer may carry either name
  DanePolicy two = dane_policy(r, "mx.two.example", 25);
  ASSERT_EQ(two.kind, DanePolicy::verify);
  EXPECT_EQ(two.records[0].usage, 2);
  EXPECT_EQ(two.base_domain, "mx.two.example");
  EXPECT_EQ(two.other_name, "");
  EXPECT_EQ(dane_policy(r, "mx.three.example", 25).kind, DanePolicy::unusable);
}

TEST(Dane, ResolverNeedsItsTrustAnchorFile) {
  auto r = make_dnssec_resolver("127.0.0.1@53", "/nonexistent/root.key");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), Code::config);
}

}  // namespace
}  // namespace mail::queue
