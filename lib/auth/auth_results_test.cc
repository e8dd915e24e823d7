#include "auth/auth_results.h"

#include <gtest/gtest.h>

#include "auth/dmarc_report.h"

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

}  // namespace
}  // namespace mail::auth
