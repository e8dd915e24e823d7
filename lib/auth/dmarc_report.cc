#include "auth/dmarc_report.h"
#include "base/date.h"

#include <zlib.h>

#include <atomic>
#include <ctime>
#include <map>
#include <random>
#include <tuple>

namespace mail::auth {

std::string utc_day(int64_t time) { return utc_time(time, "%Y-%m-%d"); }

std::string dmarc_key_prefix(std::string_view policy_domain, std::string_view day) {
  std::string key(policy_domain);
  key.push_back('\0');
  if (!day.empty()) {
    key += day;
    key.push_back('\0');
  }
  return key;
}

std::string dmarc_row_key(const DmarcReportRow& row) {
  // Time, then a per-process random start and counter: unique across processes and restarts.
  static std::atomic<uint64_t> counter{std::random_device{}() * 0x100000001ull};
  char unique[40];
  std::snprintf(unique, sizeof unique, "%016llx%016llx", static_cast<unsigned long long>(row.time),
                static_cast<unsigned long long>(counter.fetch_add(1)));
  return dmarc_key_prefix(row.policy_domain, utc_day(row.time)) + unique;
}

namespace {

std::string xml_escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default:
        if (c < 0x20 && c != '\t') continue;  // not allowed in XML 1.0
        out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

void element(std::string& out, int depth, std::string_view name, std::string_view value) {
  out.append(depth * 2, ' ');
  out += "<" + std::string(name) + ">" + xml_escape(value) + "</" + std::string(name) + ">\n";
}

// What makes two rows one <record>: everything but the time.
auto record_key(const DmarcReportRow& r) {
  std::string dkim;
  for (const auto& d : r.dkim) dkim += d.domain + '\0' + d.selector + '\0' + d.result + '\n';
  return std::make_tuple(r.source_ip, r.header_from, r.envelope_from, r.disposition, r.dkim_aligned, r.spf_aligned,
                         dkim, r.spf_domain, r.spf_scope, r.spf_result);
}

}  // namespace

std::string dmarc_aggregate_xml(const DmarcReportMeta& meta, const std::vector<DmarcReportRow>& rows) {
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n";
  element(out, 1, "version", "1.0");
  out += "  <report_metadata>\n";
  element(out, 2, "org_name", meta.org_name);
  element(out, 2, "email", meta.email);
  element(out, 2, "report_id", meta.report_id);
  out += "    <date_range>\n";
  element(out, 3, "begin", std::to_string(meta.begin));
  element(out, 3, "end", std::to_string(meta.end));
  out += "    </date_range>\n  </report_metadata>\n";
  // The policy as published: the newest row's view of it.
  DmarcReportRow policy = rows.empty() ? DmarcReportRow{} : rows.back();
  out += "  <policy_published>\n";
  element(out, 2, "domain", policy.policy_domain);
  element(out, 2, "adkim", policy.adkim_strict ? "s" : "r");
  element(out, 2, "aspf", policy.aspf_strict ? "s" : "r");
  element(out, 2, "p", policy.p);
  element(out, 2, "sp", policy.sp);
  element(out, 2, "pct", std::to_string(policy.pct));
  element(out, 2, "fo", policy.fo);
  out += "  </policy_published>\n";

  std::map<decltype(record_key(policy)), std::pair<const DmarcReportRow*, uint64_t>> records;
  for (const auto& r : rows) {
    auto& slot = records[record_key(r)];
    if (!slot.first) slot.first = &r;
    slot.second++;
  }
  for (const auto& entry : records) {
    const DmarcReportRow& r = *entry.second.first;
    out += "  <record>\n    <row>\n";
    element(out, 3, "source_ip", r.source_ip);
    element(out, 3, "count", std::to_string(entry.second.second));
    out += "      <policy_evaluated>\n";
    element(out, 4, "disposition", r.disposition);
    element(out, 4, "dkim", r.dkim_aligned ? "pass" : "fail");
    element(out, 4, "spf", r.spf_aligned ? "pass" : "fail");
    out += "      </policy_evaluated>\n    </row>\n    <identifiers>\n";
    element(out, 3, "envelope_from", r.envelope_from);
    element(out, 3, "header_from", r.header_from);
    out += "    </identifiers>\n    <auth_results>\n";
    for (const auto& d : r.dkim) {
      out += "      <dkim>\n";
      element(out, 4, "domain", d.domain);
      if (!d.selector.empty()) element(out, 4, "selector", d.selector);
      element(out, 4, "result", d.result);
      out += "      </dkim>\n";
    }
    out += "      <spf>\n";
    element(out, 4, "domain", r.spf_domain);
    element(out, 4, "scope", r.spf_scope);
    element(out, 4, "result", r.spf_result);
    out += "      </spf>\n    </auth_results>\n  </record>\n";
  }
  out += "</feedback>\n";
  return out;
}

Result<std::string> gzip(std::string_view data) {
  z_stream z{};
  // 15 + 16: a gzip wrapper rather than zlib's.
  if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return error(Code::internal, "gzip: cannot initialise zlib");
  std::string out(deflateBound(&z, data.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) return error(Code::internal, "gzip: compression failed");
  return out;
}

}  // namespace mail::auth
