// mailctl dkim keygen|list|show|remove and mailctl dmarc report.
#include "admin/auth_ops.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "auth/dkim.h"
#include "auth/dkim_keys.h"
#include "auth/dmarc_report.h"
#include "auth/psl.h"
#include "auth/resolver.h"
#include "base/address.h"
#include "base/date.h"

namespace mail::admin {
namespace {

using nlohmann::json;
using store::Store;

std::string dump(const json& j) { return j.dump(2, ' ', false, json::error_handler_t::replace); }

Result<std::string> domain_of_arg(const Args& args) {
  const std::string& text = args.get("DOMAIN");
  auto d = canonical_domain(text);
  if (!d) return error(Code::invalid, "invalid domain '" + text + "': " + d.status().message());
  return d;
}

store::DataKey dkim_key(const std::string& domain) { return store::DataKey{0, std::string(auth::kDkimNamespace), domain}; }

Result<auth::DkimKeyEntry> load_key(Store& s, const std::string& domain) {
  MAIL_ASSIGN_OR_RETURN(auto v, s.data_get(dkim_key(domain)));
  if (!v.found) return error(Code::not_found, "no DKIM key for " + domain);
  auth::DkimKeyEntry e;
  if (!decode(v.value, e)) return error(Code::corrupt, "the DKIM key record of " + domain + " is damaged");
  return e;
}

std::string when(int64_t t) { return utc_time(t, "%Y-%m-%dT%H:%M:%SZ"); }

const std::vector<std::string> kKeyColumns = {"domain", "selector", "algorithm", "dns name", "txt record"};

Output key_output(const auth::DkimKeyEntry& e) {
  Output out{kKeyColumns, {{e.domain, e.selector, e.algorithm, e.dns_name(), e.dns_record}}, {}};
  out.json = dump({{"domain", e.domain},
                   {"selector", e.selector},
                   {"algorithm", e.algorithm},
                   {"dns_name", e.dns_name()},
                   {"txt_record", e.dns_record},
                   {"created", when(e.created)}});
  return out;
}

// Selectors are DNS labels (RFC 6376 3.1), dot-separated.
bool valid_selector(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '.' || s.back() == '.' || s.front() == '-') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

auth::DmarcReportMeta day_meta(const std::string& org, const std::string& email, const std::string& policy_domain,
                               const std::string& day, int64_t begin) {
  auth::DmarcReportMeta meta;
  meta.org_name = org;
  meta.email = email;
  meta.report_id = policy_domain + "." + day + "@" + org;
  meta.begin = begin;
  meta.end = begin + 86399;
  return meta;
}

}  // namespace

// "YYYY-MM-DD" as the Unix time of its start (UTC).
Result<int64_t> day_start(const std::string& day) {
  std::tm tm{};
  const char* end = strptime(day.c_str(), "%Y-%m-%d", &tm);
  if (!end || *end || day.size() != 10) return error(Code::invalid, "invalid date '" + day + "': expected YYYY-MM-DD");
  return static_cast<int64_t>(timegm(&tm));
}

// Who we are in reports: --org, else the configured host name, else the machine's.
std::string report_org(const Args& args, const std::string& hostname) {
  if (!args.get("org").empty()) return args.get("org");
  if (!hostname.empty()) return hostname;
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return host;
}

DmarcSendEnv& send_env() {
  static DmarcSendEnv env;
  return env;
}

namespace {

// The value of a ReportDelivery record.
struct DeliveryRecord {
  std::vector<std::string> sent;
  MAIL_FIELDS(sent)
};

// No domain name has a ':', so no report data key starts this way.
constexpr std::string_view kDeliveryPrefix = "sent:";

}  // namespace

bool is_delivery_record(std::string_view key) { return key.substr(0, kDeliveryPrefix.size()) == kDeliveryPrefix; }

std::string_view delivery_record_day(std::string_view key) {
  size_t slash = key.rfind('/');
  return slash == std::string_view::npos ? std::string_view() : key.substr(slash + 1);
}

Result<ReportDelivery> ReportDelivery::load(Store& s, std::string_view ns, std::string_view domain,
                                            std::string_view day) {
  ReportDelivery d;
  d.ns_ = std::string(ns);
  d.key_ = std::string(kDeliveryPrefix) + std::string(domain) + "/" + std::string(day);
  MAIL_ASSIGN_OR_RETURN(auto v, s.data_get(store::DataKey{0, d.ns_, d.key_}));
  DeliveryRecord rec;
  if (v.found && !decode(v.value, rec))
    return error(Code::corrupt, "the delivery record " + d.key_ + " of namespace " + d.ns_ + " is damaged");
  d.sent_ = std::move(rec.sent);
  return d;
}

Result<std::string> ReportDelivery::submit(Store& s, const std::string& from, const std::string& to,
                                           const std::string& message) {
  if (std::find(sent_.begin(), sent_.end(), to) != sent_.end()) return std::string("sent before");
  Status submitted = send_env().submit(s, from, to, message);
  if (submitted.code() == Code::not_found) return std::string("no such user");  // a local address that does not exist
  MAIL_TRY(submitted);
  // Recorded at once: a later failure in this run must not send it twice.
  sent_.push_back(to);
  MAIL_TRY(s.data_put(store::DataPutReq{store::DataKey{0, ns_, key_}, encode(DeliveryRecord{sent_})}).status());
  return std::string("sent");
}

Result<size_t> delete_data(Store& s, std::string_view ns, const std::set<std::string>& keys) {
  size_t deleted = 0;
  for (const auto& key : keys) {
    auto d = s.data_delete(store::DataKey{0, std::string(ns), key});
    if (!d && d.code() != Code::not_found) return d.status();
    ++deleted;
  }
  return deleted;
}

Result<Output> dkim_keygen(Store& s, const Args& args) {
  MAIL_ASSIGN_OR_RETURN(auto domain, domain_of_arg(args));
  std::string algorithm = args.has("algorithm") ? args.get("algorithm") : "ed25519";
  if (algorithm != "ed25519" && algorithm != "rsa2048")
    return error(Code::invalid, "unknown algorithm '" + algorithm + "': use ed25519 or rsa2048");
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  std::string selector = args.get("selector");
  if (selector.empty()) {  // one selector per key generation month: rotation without clashes
    std::time_t t = static_cast<std::time_t>(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "s%Y%m", &tm);
    selector = buf;
  }
  if (!valid_selector(selector)) return error(Code::invalid, "invalid selector '" + selector + "': letters, digits, '-' and '.'");
  auto existing = load_key(s, domain);
  if (existing) return error(Code::exists, domain + " already has a DKIM key (selector " + existing->selector +
                                               "); remove it first with: mailctl dkim remove " + domain);
  if (existing.code() != Code::not_found) return existing.status();
  MAIL_ASSIGN_OR_RETURN(auto key, auth::DkimKey::generate(algorithm == "ed25519" ? auth::DkimAlgorithm::ed25519_sha256
                                                                                 : auth::DkimAlgorithm::rsa_sha256,
                                                          2048));
  auth::DkimKeyEntry e;
  e.domain = domain;
  e.selector = selector;
  e.algorithm = std::string(auth::dkim_algorithm_name(key.algorithm()));
  e.private_pem = key.private_pem();
  e.dns_record = key.dns_record();
  e.created = now;
  MAIL_TRY(s.data_put(store::DataPutReq{dkim_key(domain), encode(e)}).status());
  return key_output(e);
}

Result<Output> dkim_list(Store& s, const Args&) {
  store::DataScanReq req;
  req.account = 0;
  req.ns = std::string(auth::kDkimNamespace);
  MAIL_ASSIGN_OR_RETURN(auto resp, s.data_scan(req));
  Output out{{"domain", "selector", "algorithm", "created"}, {}, {}};
  json arr = json::array();
  for (const auto& item : resp.items) {
    auth::DkimKeyEntry e;
    if (!decode(item.value, e)) continue;
    out.rows.push_back({e.domain, e.selector, e.algorithm, when(e.created)});
    arr.push_back({{"domain", e.domain}, {"selector", e.selector}, {"algorithm", e.algorithm}, {"created", when(e.created)}});
  }
  out.json = dump(arr);
  return out;
}

Result<Output> dkim_show(Store& s, const Args& args) {
  MAIL_ASSIGN_OR_RETURN(auto domain, domain_of_arg(args));
  MAIL_ASSIGN_OR_RETURN(auto e, load_key(s, domain));
  return key_output(e);
}

Result<Output> dkim_remove(Store& s, const Args& args) {
  MAIL_ASSIGN_OR_RETURN(auto domain, domain_of_arg(args));
  MAIL_TRY(load_key(s, domain).status());
  MAIL_TRY(s.data_delete(dkim_key(domain)).status());
  return Output{{}, {}, dump({{"domain", domain}, {"removed", true}})};
}

Result<Output> dmarc_report(Store& s, const Args& args) {
  std::string domain;
  if (args.has("domain")) {
    auto d = canonical_domain(args.get("domain"));
    if (!d) return error(Code::invalid, "invalid domain '" + args.get("domain") + "': " + d.status().message());
    domain = *d;
  }
  // The day: yesterday (UTC) unless given, as a daily cron job wants it.
  std::string day = args.get("date");
  if (day.empty()) day = auth::utc_day(static_cast<int64_t>(std::time(nullptr)) - 86400);
  MAIL_ASSIGN_OR_RETURN(int64_t begin, day_start(day));
  std::string dir = args.has("output") ? args.get("output") : ".";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return error(Code::not_found, "no such directory: " + dir);
  std::string org = report_org(args, "");
  std::string email = args.has("email") ? args.get("email") : "postmaster@" + org;

  // All rows of the day (one domain, or every domain: filtered below).
  store::DataScanReq req;
  req.account = 0;
  req.ns = std::string(auth::kDmarcNamespace);
  req.prefix = domain.empty() ? std::string() : auth::dmarc_key_prefix(domain, day);
  MAIL_ASSIGN_OR_RETURN(auto resp, s.data_scan(req));
  std::map<std::string, std::vector<auth::DmarcReportRow>> by_domain;
  for (const auto& item : resp.items) {
    auth::DmarcReportRow row;
    if (is_delivery_record(item.key) || !decode(item.value, row)) continue;
    if (auth::utc_day(row.time) != day) continue;
    by_domain[row.policy_domain].push_back(std::move(row));
  }

  Output out{{"domain", "date", "messages", "records", "file"}, {}, {}};
  json arr = json::array();
  for (const auto& entry : by_domain) {
    const std::string& policy_domain = entry.first;
    const auto& rows = entry.second;
    auto meta = day_meta(org, email, policy_domain, day, begin);
    MAIL_ASSIGN_OR_RETURN(auto report, auth::make_dmarc_report(meta, policy_domain, rows));
    const std::string& gz = report.gz;
    std::string path = (std::filesystem::path(dir) / report.filename).string();
    std::string tmp = path + ".tmp";
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      f.write(gz.data(), static_cast<std::streamsize>(gz.size()));
      f.close();
      if (!f) {
        std::filesystem::remove(tmp, ec);
        return error(Code::io, "cannot write " + tmp);
      }
    }
    std::filesystem::rename(tmp, path, ec);  // no half-written report under the final name
    if (ec) return error(Code::io, "cannot rename " + tmp + ": " + ec.message());
    size_t records = report.records;
    out.rows.push_back({policy_domain, day, std::to_string(rows.size()), std::to_string(records), path});
    arr.push_back({{"domain", policy_domain}, {"date", day}, {"messages", rows.size()}, {"records", records},
                   {"file", path}, {"rua", rows.back().rua}});
  }
  out.json = dump(arr);
  return out;
}

void set_dmarc_send_env(DmarcSendEnv env) { send_env() = std::move(env); }

bool ReportRun::expired(std::string_view day) const {
  return keep_days && day < auth::utc_day(now - static_cast<int64_t>(keep_days) * 86400);
}

Result<ReportRun> report_run(const Args& args, std::string_view command) {
  const DmarcSendEnv& env = send_env();
  if (!env.submit || !env.make_resolver)
    return error(Code::unavailable, std::string(command) +
                                        ": mail submission is not available here; run it with mailctl (without --master)");
  ReportRun run;
  run.now = static_cast<int64_t>(std::time(nullptr));
  run.today = auth::utc_day(run.now);
  run.only_day = args.get("date");
  if (!run.only_day.empty()) MAIL_TRY(day_start(run.only_day).status());
  if (args.has("keep-days")) {
    MAIL_ASSIGN_OR_RETURN(run.keep_days, parse_count(args.get("keep-days")));
  }
  run.org = report_org(args, env.hostname);
  run.email = args.has("email") ? args.get("email") : "postmaster@" + run.org;
  if (!parse_address(run.email)) return error(Code::invalid, "invalid report address '" + run.email + "'");
  return run;
}

Result<Output> dmarc_send(Store& s, const Args& args) {
  MAIL_ASSIGN_OR_RETURN(const ReportRun run, report_run(args, "dmarc send"));
  const DmarcSendEnv& env = send_env();

  store::DataScanReq req;
  req.account = 0;
  req.ns = std::string(auth::kDmarcNamespace);
  MAIL_ASSIGN_OR_RETURN(auto resp, s.data_scan(req));
  struct Group {
    std::vector<std::string> keys;
    std::vector<auth::DmarcReportRow> rows;
  };
  std::map<std::pair<std::string, std::string>, Group> groups;  // (policy domain, day)
  std::set<std::string> done_keys;                                // reported, or beyond --keep-days
  std::set<std::string> done_records;                             // deleted after the rows
  for (const auto& item : resp.items) {
    if (is_delivery_record(item.key)) {
      if (run.expired(delivery_record_day(item.key))) done_records.insert(item.key);
      continue;
    }
    auth::DmarcReportRow row;
    if (!decode(item.value, row)) continue;
    std::string day = auth::utc_day(row.time);
    if (run.expired(day)) done_keys.insert(item.key);  // whole days, as the day's delivery record
    if (!run.reports_on(day)) continue;
    auto& g = groups[{row.policy_domain, day}];
    g.keys.push_back(item.key);
    g.rows.push_back(std::move(row));
  }

  std::unique_ptr<auth::Resolver> dns;
  std::map<std::pair<std::string, std::string>, Result<bool>> authorized;  // (policy, rua domain)
  Output out{{"domain", "date", "messages", "records", "to", "result"}, {}, {}};
  json reports = json::array();
  for (const auto& entry : groups) {
    const std::string& policy_domain = entry.first.first;
    const std::string& day = entry.first.second;
    const Group& g = entry.second;
    auto meta = day_meta(run.org, run.email, policy_domain, day, *day_start(day));
    MAIL_ASSIGN_OR_RETURN(auto report, auth::make_dmarc_report(meta, policy_domain, g.rows));
    MAIL_ASSIGN_OR_RETURN(auto delivery, ReportDelivery::load(s, auth::kDmarcNamespace, policy_domain, day));
    auto note = [&](const std::string& to, const std::string& result) {
      out.rows.push_back({policy_domain, day, std::to_string(g.rows.size()), std::to_string(report.records), to, result});
      reports.push_back({{"domain", policy_domain}, {"date", day}, {"messages", g.rows.size()},
                         {"records", report.records}, {"to", to}, {"result", result}});
    };
    const auto& rua = g.rows.back().rua;  // the newest policy's destinations
    if (rua.empty()) note("", "no rua");
    for (const auto& uri : rua) {
      auto dest = auth::parse_rua(uri);
      if (!dest) {
        note(uri, "invalid rua");
        continue;
      }
      std::string rua_domain = dest->address.substr(dest->address.rfind('@') + 1);
      auto key = std::make_pair(policy_domain, rua_domain);
      auto known = authorized.find(key);
      if (known == authorized.end()) {
        if (!dns) {
          MAIL_ASSIGN_OR_RETURN(dns, env.make_resolver());
        }
        known = authorized.emplace(key, auth::dmarc_rua_authorized(*dns, auth::PublicSuffixList::system(),
                                                                   policy_domain, rua_domain)).first;
      }
      if (!known->second) {
        note(dest->address, "deferred (DNS)");
        delivery.defer();
        continue;
      }
      if (!*known->second) {
        note(dest->address, "not authorized");  // RFC 7489 7.1: no _report._dmarc record
        continue;
      }
      std::string message = auth::dmarc_report_message(meta, report, dest->address, run.now);
      if (dest->max_size && message.size() > dest->max_size) {
        note(dest->address, "too big");
        continue;
      }
      MAIL_ASSIGN_OR_RETURN(std::string result, delivery.submit(s, run.email, dest->address, message));
      note(dest->address, result);
    }
    if (delivery.done()) {
      done_keys.insert(g.keys.begin(), g.keys.end());
      done_records.insert(delivery.record_key());
    }
  }

  // Reported rows go; so do rows older than --keep-days (reported or not).
  // Records last: rows still there after a failed delete are not sent twice.
  MAIL_ASSIGN_OR_RETURN(size_t pruned, delete_data(s, auth::kDmarcNamespace, done_keys));
  MAIL_TRY(delete_data(s, auth::kDmarcNamespace, done_records).status());
  out.json = dump({{"reports", reports}, {"rows_deleted", pruned}});
  return out;
}

}  // namespace mail::admin
