#include "auth/auth_results.h"

#include <gtest/gtest.h>

#include "auth/dmarc_report.h"
#include "auth/psl.h"
#include "auth/resolver.h"

namespace mail::auth {
namespace {

// Whether the message's first header field is an Authentication-Results of "mx.example.org".
bool ours(std::string_view field) {
  std::string text = std::string(field) + "Subject: x\r\n\r\nbody\r\n";  // the message only views it
  MailMessage msg(text);
  return !msg.headers().empty() && is_our_auth_results(msg.headers()[0], "mx.example.org");
}

TEST(AuthResults, RecognisesOurAuthservId) {
  EXPECT_TRUE(ours("Authentication-Results: mx.example.org; spf=pass\r\n"));
  EXPECT_TRUE(ours("authentication-results:MX.Example.ORG;dkim=pass\r\n"));
  EXPECT_TRUE(ours("Authentication-Results: (forged) mx.example.org (really);\r\n\tspf=pass\r\n"));
  EXPECT_TRUE(ours("Authentication-Results: mx.example.org 1; none\r\n"));  // with a version
  EXPECT_TRUE(ours("Authentication-Results: mx.example.org\r\n"));
  EXPECT_FALSE(ours("Authentication-Results: other.example.org; spf=pass smtp.mailfrom=mx.example.org\r\n"));
  EXPECT_FALSE(ours("Authentication-Results: mx.example.org.evil; spf=pass\r\n"));
  EXPECT_FALSE(ours("ARC-Authentication-Results: i=1; mx.example.org; spf=pass\r\n"));
  EXPECT_FALSE(ours("Authentication-Results: ; spf=pass\r\n"));
  EXPECT_FALSE(ours("Authentication-Results: (mx.example.org) ; spf=pass\r\n"));
}

TEST(AuthResults, Field) {
  EXPECT_EQ(auth_results_field("mx", {}), "Authentication-Results: mx; none\r\n");
  EXPECT_EQ(auth_results_field("mx", {"spf=pass smtp.mailfrom=a@b", "dkim=none"}),
            "Authentication-Results: mx;\r\n\tspf=pass smtp.mailfrom=a@b;\r\n\tdkim=none\r\n");
}

TEST(DmarcReport, EqualRowsCountOnceAndXmlIsEscaped) {
  DmarcReportRow a;
  a.time = 86400 * 365;
  a.source_ip = "192.0.2.1";
  a.header_from = "ex<ample>.org";
  a.policy_domain = "example.org";
  a.spf_domain = "example.org";
  a.spf_result = "pass";
  a.spf_aligned = true;
  DmarcReportRow b = a;
  b.time += 10;
  DmarcReportRow c = a;
  c.source_ip = "192.0.2.2";
  std::string xml = dmarc_aggregate_xml({"us", "postmaster@us", "id&1", 0, 86399}, {a, b, c});
  EXPECT_NE(xml.find("<count>2</count>"), std::string::npos);
  EXPECT_NE(xml.find("<count>1</count>"), std::string::npos);
  EXPECT_NE(xml.find("<header_from>ex&lt;ample&gt;.org</header_from>"), std::string::npos);
  EXPECT_NE(xml.find("<report_id>id&amp;1</report_id>"), std::string::npos);
  EXPECT_EQ(utc_day(a.time), "1971-01-01");
  EXPECT_EQ(dmarc_row_key(a).rfind(dmarc_key_prefix("example.org", "1971-01-01"), 0), 0u);
  EXPECT_NE(dmarc_row_key(a), dmarc_row_key(a));  // never overwrite each other
  auto gz = gzip(xml);
  ASSERT_TRUE(gz);
  EXPECT_EQ(static_cast<unsigned char>((*gz)[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>((*gz)[1]), 0x8b);
}

TEST(DmarcReport, RuaUris) {
  auto a = parse_rua("mailto:Reports@Example.ORG");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->address, "reports@example.org");
  EXPECT_EQ(a->max_size, 0u);
  EXPECT_EQ(parse_rua("MAILTO:r@example.org!10m")->max_size, 10u << 20);
  EXPECT_EQ(parse_rua("mailto:r@example.org!500")->max_size, 500u);
  for (const char* bad : {"", "mailto:", "https://example.org/r", "mailto:r@example.org!", "mailto:r@example.org!10x",
                          "mailto:r@example.org!-1", "mailto:nobody", "mailto:r@example.org?subject=x", "mailto:r%40x@y.org"})
    EXPECT_EQ(parse_rua(bad).code(), Code::invalid) << bad;
}

TEST(DmarcReport, ExternalDestinationsNeedTheirConsent) {
  auto psl = PublicSuffixList::parse("org\ncom\n");
  StubResolver dns;
  dns.add("example.org._report._dmarc.collector.com", DnsType::txt, "v=DMARC1");
  dns.add("other.org._report._dmarc.collector.com", DnsType::txt, "v=spf1 -all");
  dns.fail("slow.org._report._dmarc.collector.com");
  EXPECT_TRUE(*dmarc_rua_authorized(dns, psl, "mail.example.org", "example.org"));  // same organization: no lookup
  EXPECT_EQ(dns.lookups(), 0u);
  EXPECT_TRUE(*dmarc_rua_authorized(dns, psl, "example.org", "collector.com"));
  EXPECT_FALSE(*dmarc_rua_authorized(dns, psl, "other.org", "collector.com"));
  EXPECT_FALSE(*dmarc_rua_authorized(dns, psl, "unknown.org", "collector.com"));
  EXPECT_EQ(dmarc_rua_authorized(dns, psl, "slow.org", "collector.com").code(), Code::temporary);
}

TEST(DmarcReport, MessageCarriesTheGzipAttachment) {
  DmarcReportRow a;
  a.policy_domain = "example.org";
  DmarcReportMeta meta{"mx.us.example", "postmaster@us.example", "example.org.1970-01-01@mx.us.example", 0, 86399};
  auto report = make_dmarc_report(meta, "example.org", {a});
  ASSERT_TRUE(report);
  EXPECT_EQ(report->filename, "mx.us.example!example.org!0!86399.xml.gz");
  EXPECT_EQ(report->records, 1u);
  std::string m = dmarc_report_message(meta, *report, "rua@example.org", 100);
  EXPECT_NE(m.find("Subject: Report Domain: example.org Submitter: mx.us.example\r\n Report-ID: <"), std::string::npos);
  EXPECT_NE(m.find("Content-Type: application/gzip;\r\n name=\"" + report->filename + "\""), std::string::npos);
  EXPECT_EQ(m.find("\n\n"), std::string::npos);  // CRLF only
  for (size_t pos = 0, next; (next = m.find("\r\n", pos)) != std::string::npos; pos = next + 2)
    EXPECT_LE(next - pos, 78u);
}

}  // namespace
}  // namespace mail::auth
