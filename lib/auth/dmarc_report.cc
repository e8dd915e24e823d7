#include "auth/dmarc_report.h"

#include "auth/psl.h"
#include "auth/resolver.h"
#include "base/address.h"
#include "base/base64.h"
#include "base/date.h"

#include <zlib.h>

#include <algorithm>
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

Result<DmarcReport> make_dmarc_report(const DmarcReportMeta& meta, std::string_view policy_domain,
                                      const std::vector<DmarcReportRow>& rows) {
  DmarcReport r;
  r.policy_domain = std::string(policy_domain);
  r.xml = dmarc_aggregate_xml(meta, rows);
  MAIL_ASSIGN_OR_RETURN(r.gz, gzip(r.xml));
  r.filename = meta.org_name + "!" + r.policy_domain + "!" + std::to_string(meta.begin) + "!" +
               std::to_string(meta.end) + ".xml.gz";
  for (size_t pos = 0; (pos = r.xml.find("<record>", pos)) != std::string::npos; ++pos) ++r.records;
  return r;
}

std::string report_mail(const ReportMail& r, int64_t now) {
  // The boundary cannot occur in base64 or in our text ('=' then '_' never appears in base64).
  const std::string b = "=_" + r.kind + "_" + std::to_string(now) + "_" + std::to_string(r.gz.size());
  std::string m;
  m += "From: <" + r.from + ">\r\n";
  m += "To: <" + r.to + ">\r\n";
  // RFC 7489 7.2.1.1, RFC 8460 5.3: the Subject names the report domain, the submitter and the report id.
  m += "Subject: Report Domain: " + r.policy_domain + " Submitter: " + r.org_name + "\r\n Report-ID: <" +
       r.report_id + ">\r\n";
  m += r.extra_headers;
  m += "Date: " + rfc5322_date(now) + "\r\n";
  m += "Message-ID: <" + r.kind + "." + std::to_string(now) + "." + r.report_id + ">\r\n";
  m += "Auto-Submitted: auto-generated\r\n";
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: " + r.content_type + "boundary=\"" + b + "\"\r\n\r\n";
  m += "--" + b + "\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n";
  m += r.intro + ",\r\ncovering " + utc_time(r.begin, "%Y-%m-%d %H:%M:%S") + " to " +
       utc_time(r.end, "%Y-%m-%d %H:%M:%S") + " UTC.\r\n\r\n";
  m += "--" + b + "\r\nContent-Type: " + r.attachment_type + ";\r\n name=\"" + r.filename + "\"\r\n";
  m += "Content-Transfer-Encoding: base64\r\n";
  m += "Content-Disposition: attachment;\r\n filename=\"" + r.filename + "\"\r\n\r\n";
  std::string encoded = base64_encode(r.gz);
  for (size_t i = 0; i < encoded.size(); i += 76) m += encoded.substr(i, 76) + "\r\n";
  m += "\r\n--" + b + "--\r\n";
  return m;
}

std::string dmarc_report_message(const DmarcReportMeta& meta, const DmarcReport& report, std::string_view to,
                                 int64_t now) {
  ReportMail r;
  r.kind = "dmarc";
  r.from = meta.email;
  r.to = std::string(to);
  r.policy_domain = report.policy_domain;
  r.org_name = meta.org_name;
  r.report_id = meta.report_id;
  r.content_type = "multipart/mixed; ";
  r.intro = "This is a DMARC aggregate report (RFC 7489)\r\nfor " + report.policy_domain + " from " + meta.org_name;
  r.begin = meta.begin;
  r.end = meta.end;
  r.attachment_type = "application/gzip";
  r.filename = report.filename;
  r.gz = report.gz;
  return report_mail(r, now);
}

Result<DmarcRua> parse_rua(std::string_view uri) {
  std::string_view scheme = uri.substr(0, 7);
  if (uri.size() <= 7 || !std::equal(scheme.begin(), scheme.end(), "mailto:",
                                     [](char a, char b) { return (a | 0x20) == b || a == b; }))
    return error(Code::invalid, "not a mailto: URI: " + std::string(uri));
  std::string_view rest = uri.substr(7);
  DmarcRua rua;
  if (size_t bang = rest.rfind('!'); bang != std::string_view::npos) {
    std::string_view size = rest.substr(bang + 1);
    rest = rest.substr(0, bang);
    uint64_t n = 0, unit = 1;
    if (!size.empty() && (size.back() | 0x20) >= 'a' && (size.back() | 0x20) <= 'z') {
      switch (size.back() | 0x20) {
        case 'k': unit = 1ull << 10; break;
        case 'm': unit = 1ull << 20; break;
        case 'g': unit = 1ull << 30; break;
        case 't': unit = 1ull << 40; break;
        default: return error(Code::invalid, "bad size unit in " + std::string(uri));
      }
      size.remove_suffix(1);
    }
    if (size.empty() || size.size() > 12) return error(Code::invalid, "bad size limit in " + std::string(uri));
    for (char c : size) {
      if (c < '0' || c > '9') return error(Code::invalid, "bad size limit in " + std::string(uri));
      n = n * 10 + static_cast<uint64_t>(c - '0');
    }
    rua.max_size = n * unit;
  }
  if (rest.find_first_of("?%") != std::string_view::npos)  // hfields and escapes: not an address we send to
    return error(Code::invalid, "unsupported mailto: URI: " + std::string(uri));
  MAIL_ASSIGN_OR_RETURN(auto address, parse_address(rest));
  rua.address = address.str();
  return rua;
}

Result<bool> dmarc_rua_authorized(Resolver& dns, const PublicSuffixList& psl, std::string_view policy_domain,
                                  std::string_view rua_domain) {
  if (psl.organizational_domain(policy_domain) == psl.organizational_domain(rua_domain)) return true;
  std::string name = std::string(policy_domain) + "._report._dmarc." + std::string(rua_domain);
  auto txt = dns.lookup(name, DnsType::txt);
  if (!txt) {
    if (txt.code() == Code::not_found) return false;
    return error(Code::temporary, "DNS lookup of " + name + " failed: " + txt.status().message());
  }
  for (const auto& record : *txt) {
    std::string_view r = record;
    while (!r.empty() && (r.front() == ' ' || r.front() == '\t')) r.remove_prefix(1);
    if (r.size() >= 8 && (r.substr(0, 8) == "v=DMARC1" || r.substr(0, 8) == "V=DMARC1") &&
        (r.size() == 8 || r[8] == ';' || r[8] == ' ' || r[8] == '\t'))
      return true;
  }
  return false;
}

}  // namespace mail::auth
