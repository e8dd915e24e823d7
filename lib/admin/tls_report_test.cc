#include "admin/tls_report.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace mail::admin {
namespace {

TlsReportMeta meta() { return {"mx.example.com", "postmaster@mx.example.com", "2026-11-28.dane.example@mx.example.com",
                               1795824000, 1795824000 + 86399}; }

TEST(TlsReport, JsonHasTheRequiredFields) {
  TlsRptCounts c;
  c.success = 5;
  c.failure = 3;
  c.policy_type = "tlsa";
  c.failures = {{"validation-failure", 2}, {"starttls-not-supported", 1}};
  auto j = nlohmann::json::parse(tls_report_json(meta(), "dane.example", c));
  EXPECT_EQ(j["organization-name"], "mx.example.com");
  EXPECT_EQ(j["contact-info"], "postmaster@mx.example.com");
  EXPECT_EQ(j["report-id"], "2026-11-28.dane.example@mx.example.com");
  EXPECT_EQ(j["date-range"]["start-datetime"], "2026-11-28T00:00:00Z");
  EXPECT_EQ(j["date-range"]["end-datetime"], "2026-11-28T23:59:59Z");
  ASSERT_EQ(j["policies"].size(), 1u);
  const auto& p = j["policies"][0];
  EXPECT_EQ(p["policy"]["policy-type"], "tlsa");
  EXPECT_EQ(p["policy"]["policy-domain"], "dane.example");
  EXPECT_EQ(p["summary"]["total-successful-session-count"], 5);
  EXPECT_EQ(p["summary"]["total-failure-session-count"], 3);
  ASSERT_EQ(p["failure-details"].size(), 2u);
  EXPECT_EQ(p["failure-details"][0]["result-type"], "validation-failure");
  EXPECT_EQ(p["failure-details"][0]["failed-session-count"], 2);

  TlsRptCounts old;  // counts recorded before the policy type was: MTA-STS
  old.success = 1;
  auto k = nlohmann::json::parse(tls_report_json(meta(), "sts.example", old));
  EXPECT_EQ(k["policies"][0]["policy"]["policy-type"], "sts");
  EXPECT_FALSE(k["policies"][0].contains("failure-details"));
}

TEST(TlsReport, MessageAndFileName) {
  EXPECT_EQ(tls_report_filename(meta(), "dane.example"), "mx.example.com!dane.example!1795824000!1795910399.json.gz");
  std::string m = tls_report_message(meta(), "dane.example", "gzipped", "rua@dane.example", 1795910400);
  EXPECT_NE(m.find("TLS-Report-Domain: dane.example\r\n"), std::string::npos);
  EXPECT_NE(m.find("TLS-Report-Submitter: mx.example.com\r\n"), std::string::npos);
  EXPECT_NE(m.find("multipart/report; report-type=\"tlsrpt\""), std::string::npos);
  EXPECT_NE(m.find("Content-Type: application/tlsrpt+gzip"), std::string::npos);
  EXPECT_NE(m.find("Report-ID: <2026-11-28.dane.example@mx.example.com>"), std::string::npos);
  EXPECT_NE(m.find("Z3ppcHBlZA=="), std::string::npos);  // base64 of the attachment
}

TEST(TlsReport, ParsesTheTxtRecord) {
  auto r = parse_tlsrpt_record("v=TLSRPTv1; rua=mailto:a@example.com, https://r.example/x ;");
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(*r, (std::vector<std::string>{"mailto:a@example.com", "https://r.example/x"}));
  EXPECT_FALSE(parse_tlsrpt_record("v=spf1 -all"));
  EXPECT_FALSE(parse_tlsrpt_record("rua=mailto:a@b; v=TLSRPTv1"));  // the version comes first
  EXPECT_FALSE(parse_tlsrpt_record("v=TLSRPTv1;"));                  // no rua
  EXPECT_FALSE(parse_tlsrpt_record(""));
}

}  // namespace
}  // namespace mail::admin
