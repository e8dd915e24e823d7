// mailctl tls-report send, and the RFC 8460 report it mails.
#include "admin/tls_report.h"

#include <nlohmann/json.hpp>

#include <ctime>
#include <map>
#include <set>

#include "admin/auth_ops.h"
#include "auth/dmarc_report.h"
#include "auth/resolver.h"
#include "base/address.h"
#include "base/base64.h"
#include "base/date.h"

namespace mail::admin {

using nlohmann::json;

std::string tls_report_json(const TlsReportMeta& meta, std::string_view policy_domain, const TlsRptCounts& counts) {
  json failures = json::array();
  for (const auto& f : counts.failures) failures.push_back({{"result-type", f.result_type}, {"failed-session-count", f.count}});
  json policy = {{"policy",
                  {{"policy-type", counts.policy_type.empty() ? "sts" : counts.policy_type},
                   {"policy-domain", std::string(policy_domain)}}},
                 {"summary",
                  {{"total-successful-session-count", counts.success},
                   {"total-failure-session-count", counts.failure}}}};
  if (!failures.empty()) policy["failure-details"] = failures;
  json report = {{"organization-name", meta.org_name},
                 {"date-range",
                  {{"start-datetime", utc_time(meta.begin, "%Y-%m-%dT%H:%M:%SZ")},
                   {"end-datetime", utc_time(meta.end, "%Y-%m-%dT%H:%M:%SZ")}}},
                 {"contact-info", meta.contact},
                 {"report-id", meta.report_id},
                 {"policies", json::array({policy})}};
  return report.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string tls_report_filename(const TlsReportMeta& meta, std::string_view policy_domain) {
  return meta.org_name + "!" + std::string(policy_domain) + "!" + std::to_string(meta.begin) + "!" +
         std::to_string(meta.end) + ".json.gz";
}

std::string tls_report_message(const TlsReportMeta& meta, std::string_view policy_domain, std::string_view gz,
                               std::string_view to, int64_t now) {
  auth::ReportMail r;
  r.kind = "tlsrpt";
  r.from = meta.contact;
  r.to = std::string(to);
  r.policy_domain = std::string(policy_domain);
  r.org_name = meta.org_name;
  r.report_id = meta.report_id;
  r.extra_headers = "TLS-Report-Domain: " + r.policy_domain + "\r\nTLS-Report-Submitter: " + meta.org_name + "\r\n";
  r.content_type = "multipart/report; report-type=\"tlsrpt\";\r\n ";
  r.intro = "This is an aggregate TLS report (RFC 8460) for " + r.policy_domain + " from " + meta.org_name;
  r.begin = meta.begin;
  r.end = meta.end;
  r.attachment_type = "application/tlsrpt+gzip";
  r.filename = tls_report_filename(meta, policy_domain);
  r.gz = gz;
  return auth::report_mail(r, now);
}

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<std::vector<std::string>> parse_tlsrpt_record(std::string_view txt) {
  std::vector<std::string> rua;
  bool first = true;
  while (!txt.empty()) {
    size_t semi = txt.find(';');
    std::string_view field = trim(txt.substr(0, semi));
    txt = semi == std::string_view::npos ? std::string_view() : txt.substr(semi + 1);
    size_t eq = field.find('=');
    std::string_view key = trim(field.substr(0, eq));
    std::string_view value = eq == std::string_view::npos ? std::string_view() : trim(field.substr(eq + 1));
    if (first) {  // RFC 8460 3: the version comes first
      if (key != "v" || value != "TLSRPTv1") return error(Code::invalid, "not a TLSRPTv1 record");
      first = false;
    } else if (key == "rua") {
      while (!value.empty()) {
        size_t comma = value.find(',');
        std::string_view uri = trim(value.substr(0, comma));
        value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
        if (!uri.empty()) rua.emplace_back(uri);
      }
    }
  }
  if (first) return error(Code::invalid, "not a TLSRPTv1 record");
  if (rua.empty()) return error(Code::invalid, "TLSRPTv1 record without rua");
  return rua;
}

Result<Output> tls_report_send(store::Store& s, const Args& args) {
  MAIL_ASSIGN_OR_RETURN(const ReportRun run, report_run(args, "tls-report send"));
  const DmarcSendEnv& env = send_env();

  store::DataScanReq req;
  req.account = 0;
  req.ns = std::string(kTlsRptNamespace);
  MAIL_ASSIGN_OR_RETURN(auto resp, s.data_scan(req));
  std::unique_ptr<auth::Resolver> dns;
  std::set<std::string> done_keys;     // sent, or older than --keep-days
  std::set<std::string> done_records;  // deleted after the rows
  Output out{{"domain", "date", "successful", "failed", "to", "result"}, {}, {}};
  json reports = json::array();
  for (const auto& item : resp.items) {
    if (is_delivery_record(item.key)) {
      if (run.expired(delivery_record_day(item.key))) done_records.insert(item.key);
      continue;
    }
    size_t slash = item.key.rfind('/');
    TlsRptCounts counts;
    if (slash == std::string::npos || !decode(item.value, counts)) continue;
    const std::string domain = item.key.substr(0, slash), day = item.key.substr(slash + 1);
    if (run.expired(day)) done_keys.insert(item.key);
    if (!run.reports_on(day)) continue;
    auto begin = day_start(day);
    if (!begin) continue;
    auto note = [&](const std::string& to, const std::string& result) {
      out.rows.push_back({domain, day, std::to_string(counts.success), std::to_string(counts.failure), to, result});
      reports.push_back({{"domain", domain}, {"date", day}, {"successful", counts.success},
                         {"failed", counts.failure}, {"to", to}, {"result", result}});
    };
    if (!dns) {
      MAIL_ASSIGN_OR_RETURN(dns, env.make_resolver());
    }
    auto txt = dns->lookup("_smtp._tls." + domain, auth::DnsType::txt);
    if (!txt && txt.code() == Code::temporary) {
      note("", "deferred (DNS)");
      continue;
    }
    std::vector<std::string> rua;
    for (const auto& t : txt ? *txt : std::vector<std::string>()) {
      if (auto r = parse_tlsrpt_record(t)) rua = std::move(*r);
    }
    if (rua.empty()) {
      note("", "no rua");
      continue;
    }
    TlsReportMeta meta{run.org, run.email, day + "." + domain + "@" + run.org, *begin, *begin + 86399};
    MAIL_ASSIGN_OR_RETURN(std::string gz, auth::gzip(tls_report_json(meta, domain, counts)));
    MAIL_ASSIGN_OR_RETURN(auto delivery, ReportDelivery::load(s, kTlsRptNamespace, domain, day));
    for (const auto& uri : rua) {
      auto dest = auth::parse_rua(uri);  // mailto: (https: reports are not posted)
      if (!dest) {
        note(uri, "unsupported rua");
        continue;
      }
      std::string message = tls_report_message(meta, domain, gz, dest->address, run.now);
      MAIL_ASSIGN_OR_RETURN(std::string result, delivery.submit(s, run.email, dest->address, message));
      note(dest->address, result);
    }
    if (delivery.done()) {
      done_keys.insert(item.key);
      done_records.insert(delivery.record_key());
    }
  }
  MAIL_ASSIGN_OR_RETURN(size_t pruned, delete_data(s, kTlsRptNamespace, done_keys));
  MAIL_TRY(delete_data(s, kTlsRptNamespace, done_records).status());
  out.json = json({{"reports", reports}, {"rows_deleted", pruned}}).dump(2, ' ', false, json::error_handler_t::replace);
  return out;
}

}  // namespace mail::admin
