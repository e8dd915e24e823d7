// dmarc send and tls-report send across runs: a destination deferred in one
// run gets the report in a later one, and none gets it twice.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <set>

#include "admin/auth_ops.h"
#include "admin/tls_report.h"
#include "auth/dmarc_report.h"
#include "auth/resolver.h"
#include "store/store.h"

namespace mail::admin {
namespace {

class ReportSendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/reportsendXXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = store::open_store(store::StorePaths{dir_}, store::OpenMode::direct);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    store_ = std::move(*s);
    DmarcSendEnv env;
    env.submit = [this](store::Store&, const std::string&, const std::string& to, const std::string&) -> Status {
      auto fail = failing_.find(to);
      if (fail != failing_.end()) return error(fail->second, "cannot submit to " + to);
      submitted_.push_back(to);
      return Status();
    };
    env.make_resolver = [this]() -> Result<std::unique_ptr<auth::Resolver>> {
      auto dns = std::make_unique<auth::StubResolver>();
      MAIL_TRY(dns->load_zone(zone_));
      return std::unique_ptr<auth::Resolver>(std::move(dns));
    };
    env.hostname = "mx.test";
    set_dmarc_send_env(std::move(env));
  }
  void TearDown() override {
    set_dmarc_send_env({});
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // A finished day's row for `policy_domain`, reporting to `rua`.
  void add_dmarc_row(const std::string& policy_domain, std::vector<std::string> rua) {
    auth::DmarcReportRow row;
    row.time = static_cast<int64_t>(std::time(nullptr)) - 86400;
    row.source_ip = "192.0.2.1";
    row.header_from = policy_domain;
    row.policy_domain = policy_domain;
    row.rua = std::move(rua);
    ASSERT_TRUE(store_->data_put({{0, std::string(auth::kDmarcNamespace), auth::dmarc_row_key(row)}, encode(row)}).is_ok());
  }
  std::string yesterday() const { return auth::utc_day(static_cast<int64_t>(std::time(nullptr)) - 86400); }
  size_t keys_in(std::string_view ns) {
    store::DataScanReq req;
    req.ns = std::string(ns);
    return store_->data_scan(req)->items.size();
  }
  // One run: the JSON output, or the error's code.
  Result<nlohmann::json> run(const Handler& op) {
    Args args;
    args.set("date", yesterday());
    MAIL_ASSIGN_OR_RETURN(auto out, op(*store_, args));
    return nlohmann::json::parse(out.json);
  }
  static std::map<std::string, std::string> results(const nlohmann::json& out) {
    std::map<std::string, std::string> r;
    for (const auto& rep : out["reports"]) r[rep["to"].get<std::string>()] = rep["result"].get<std::string>();
    return r;
  }

  std::string dir_;
  std::unique_ptr<store::Store> store_;
  std::string zone_;
  std::map<std::string, Code> failing_;  // submission to these fails
  std::vector<std::string> submitted_;
};

TEST_F(ReportSendTest, DmarcRowsWaitForADeferredDestination) {
  add_dmarc_row("p.example", {"mailto:a@p.example", "mailto:b@other.example"});
  // b's authorization (RFC 7489 7.1) cannot be looked up now.
  zone_ = "p.example._report._dmarc.other.example TIMEOUT TXT\n";
  auto first = run(dmarc_send);
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  EXPECT_EQ(results(*first), (std::map<std::string, std::string>{{"a@p.example", "sent"},
                                                                  {"b@other.example", "deferred (DNS)"}}));
  EXPECT_EQ((*first)["rows_deleted"], 0);
  EXPECT_EQ(submitted_, std::vector<std::string>{"a@p.example"});
  EXPECT_EQ(keys_in(auth::kDmarcNamespace), 2u);  // the row and who took its report

  // Still deferred: a is not sent to again.
  auto second = run(dmarc_send);
  ASSERT_TRUE(second.is_ok());
  EXPECT_EQ(results(*second)["a@p.example"], "sent before");
  EXPECT_EQ((*second)["rows_deleted"], 0);
  EXPECT_EQ(submitted_.size(), 1u);

  // The lookup answers: b gets the report, the row and the record go.
  zone_ = "p.example._report._dmarc.other.example TXT v=DMARC1\n";
  auto third = run(dmarc_send);
  ASSERT_TRUE(third.is_ok());
  EXPECT_EQ(results(*third), (std::map<std::string, std::string>{{"a@p.example", "sent before"},
                                                                  {"b@other.example", "sent"}}));
  EXPECT_EQ((*third)["rows_deleted"], 1);
  EXPECT_EQ(submitted_, (std::vector<std::string>{"a@p.example", "b@other.example"}));
  EXPECT_EQ(keys_in(auth::kDmarcNamespace), 0u);
  EXPECT_TRUE((*run(dmarc_send))["reports"].empty());
}

TEST_F(ReportSendTest, DmarcRowsGoWhenTheOthersFailForGood) {
  add_dmarc_row("p.example", {"mailto:a@p.example", "mailto:b@other.example", "mailto:gone@p.example"});
  failing_["gone@p.example"] = Code::not_found;  // a local address that does not exist
  auto out = run(dmarc_send);
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  EXPECT_EQ(results(*out), (std::map<std::string, std::string>{{"a@p.example", "sent"},
                                                                {"b@other.example", "not authorized"},
                                                                {"gone@p.example", "no such user"}}));
  EXPECT_EQ((*out)["rows_deleted"], 1);
  EXPECT_EQ(keys_in(auth::kDmarcNamespace), 0u);
}

TEST_F(ReportSendTest, DmarcReportsNothingWhenNobodyTookIt) {
  add_dmarc_row("p.example", {"mailto:b@other.example"});
  auto out = run(dmarc_send);
  ASSERT_TRUE(out.is_ok());
  EXPECT_EQ(results(*out)["b@other.example"], "not authorized");
  EXPECT_EQ((*out)["rows_deleted"], 0);  // kept for `dmarc report` until --keep-days
  EXPECT_EQ(keys_in(auth::kDmarcNamespace), 1u);
}

TEST_F(ReportSendTest, TlsReportAfterAFailedRunIsNotSentTwice) {
  TlsRptCounts counts;
  counts.success = 3;
  ASSERT_TRUE(store_->data_put({{0, std::string(kTlsRptNamespace), "t.example/" + yesterday()}, encode(counts)}).is_ok());
  zone_ = "_smtp._tls.t.example TXT v=TLSRPTv1; rua=mailto:x@t.example,mailto:y@t.example\n";
  failing_["y@t.example"] = Code::io;  // the store fails under the second submission
  EXPECT_EQ(run(tls_report_send).code(), Code::io);
  EXPECT_EQ(submitted_, std::vector<std::string>{"x@t.example"});
  EXPECT_EQ(keys_in(kTlsRptNamespace), 2u);

  failing_.clear();
  auto again = run(tls_report_send);
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_EQ(results(*again), (std::map<std::string, std::string>{{"x@t.example", "sent before"},
                                                                  {"y@t.example", "sent"}}));
  EXPECT_EQ((*again)["rows_deleted"], 1);
  EXPECT_EQ(submitted_, (std::vector<std::string>{"x@t.example", "y@t.example"}));
  EXPECT_EQ(keys_in(kTlsRptNamespace), 0u);
}

TEST_F(ReportSendTest, OldDeliveryRecordsGoWithTheirDays) {
  std::string old_day = auth::utc_day(static_cast<int64_t>(std::time(nullptr)) - 30 * 86400);
  for (auto ns : {auth::kDmarcNamespace, kTlsRptNamespace}) {
    ASSERT_TRUE(store_->data_put({{0, std::string(ns), "sent:p.example/" + old_day}, ""}).is_ok());
  }
  EXPECT_TRUE(is_delivery_record("sent:p.example/" + old_day));
  EXPECT_EQ(delivery_record_day("sent:p.example/" + old_day), old_day);
  EXPECT_FALSE(is_delivery_record("p.example/" + old_day));
  ASSERT_TRUE(run(dmarc_send).is_ok());
  ASSERT_TRUE(run(tls_report_send).is_ok());
  EXPECT_EQ(keys_in(auth::kDmarcNamespace), 0u);
  EXPECT_EQ(keys_in(kTlsRptNamespace), 0u);
}

TEST_F(ReportSendTest, DmarcRowsExpireByWholeDays) {
  // Both ends of the oldest day kept (--keep-days 7): they go together on a
  // later run, with the day's delivery record, never half a day's report.
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  const std::string oldest = auth::utc_day(now - 7 * 86400);
  for (int64_t t : {*day_start(oldest), *day_start(oldest) + 86399}) {
    auth::DmarcReportRow row;
    row.time = t;
    row.source_ip = "192.0.2.1";
    row.header_from = row.policy_domain = "p.example";
    ASSERT_TRUE(store_->data_put({{0, std::string(auth::kDmarcNamespace), auth::dmarc_row_key(row)}, encode(row)}).is_ok());
  }
  ASSERT_TRUE(run(dmarc_send).is_ok());
  EXPECT_EQ(keys_in(auth::kDmarcNamespace), 2u);
}

}  // namespace
}  // namespace mail::admin
