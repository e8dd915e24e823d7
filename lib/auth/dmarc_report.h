// DMARC aggregate reports (RFC 7489 7.2, appendix C): what the inbound filter
// records of each message, and the XML report made from those records.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/codec.h"
#include "base/status.h"

namespace mail::auth {
class Resolver;
class PublicSuffixList;
}  // namespace mail::auth

namespace mail::auth {

// Records live in the store's global data (account 0) under this namespace,
// keyed by dmarc_row_key(): all of a domain's day is one prefix scan.
constexpr std::string_view kDmarcNamespace = "dmarc";

struct DmarcDkimRow {
  std::string domain;
  std::string selector;
  std::string result;  // RFC 7489 dkimresulttype: none pass fail policy neutral temperror permerror
  MAIL_FIELDS(domain, selector, result)
};

// One message's evaluation (a <record> with count 1; the report adds up equal ones).
struct DmarcReportRow {
  int64_t time = 0;
  std::string source_ip;
  std::string header_from;
  std::string envelope_from;  // the MAIL FROM domain ("" for the null sender)
  std::string policy_domain;  // where the record was found: the report is for it
  // The published policy.
  std::string p = "none", sp = "none";
  bool adkim_strict = false, aspf_strict = false;
  uint32_t pct = 100;
  std::string fo = "0";
  std::vector<std::string> rua;
  // The evaluation.
  std::string disposition = "none";  // none quarantine reject: what we did
  bool dkim_aligned = false;
  bool spf_aligned = false;
  std::vector<DmarcDkimRow> dkim;
  std::string spf_domain;
  std::string spf_scope = "mfrom";  // or helo
  std::string spf_result;           // none neutral pass fail softfail temperror permerror
  MAIL_FIELDS(time, source_ip, header_from, envelope_from, policy_domain, p, sp, adkim_strict, aspf_strict, pct,
              rua, disposition, dkim_aligned, spf_aligned, dkim, spf_domain, spf_scope, spf_result, fo)
};

// "UTC date" as YYYY-MM-DD.
std::string utc_day(int64_t time);
// POLICY_DOMAIN 0x00 YYYY-MM-DD 0x00 a unique suffix: rows never overwrite each other.
std::string dmarc_row_key(const DmarcReportRow& row);
// The prefix of one domain's rows of one day ("" day: every day).
std::string dmarc_key_prefix(std::string_view policy_domain, std::string_view day);

struct DmarcReportMeta {
  std::string org_name;  // us
  std::string email;     // where to write back
  std::string report_id;
  int64_t begin = 0, end = 0;
};

// The aggregate report XML (appendix C schema) of `rows`, all of one policy
// domain: equal rows are counted once with their count.
std::string dmarc_aggregate_xml(const DmarcReportMeta& meta, const std::vector<DmarcReportRow>& rows);

// gzip (RFC 1952) of `data`, as reports are mailed and written.
Result<std::string> gzip(std::string_view data);

// One policy domain's report: the XML, its gzip and the file name of RFC 7489
// 7.2.1.1 (receiver!policy-domain!begin!end.xml.gz).
struct DmarcReport {
  std::string policy_domain;
  std::string xml;
  std::string gz;
  std::string filename;
  size_t records = 0;  // <record> elements (rows that differ)
};
Result<DmarcReport> make_dmarc_report(const DmarcReportMeta& meta, std::string_view policy_domain,
                                      const std::vector<DmarcReportRow>& rows);

// A report mailed to a rua address (DMARC aggregate, TLS-RPT): headers naming
// the report, a text part, the gzip as a base64 attachment.
struct ReportMail {
  std::string kind;  // "dmarc", "tlsrpt": in the boundary and the Message-ID
  std::string from, to;
  std::string policy_domain, org_name, report_id;
  std::string extra_headers;  // whole header lines after Subject
  std::string content_type;   // the top-level type and parameters before boundary=
  std::string intro;          // the text part's opening, before ",\r\ncovering <begin> to <end> UTC."
  int64_t begin = 0, end = 0;
  std::string attachment_type, filename;
  std::string_view gz;
};
std::string report_mail(const ReportMail& r, int64_t now);

// The report as mail (RFC 7489 7.2.1.1): the report's Subject, a short text
// part and the gzip as an application/gzip attachment; CRLF lines.
std::string dmarc_report_message(const DmarcReportMeta& meta, const DmarcReport& report, std::string_view to,
                                 int64_t now);

// A rua URI: "mailto:ADDRESS[!SIZE[k|m|g|t]]" (RFC 7489 6.2, 6.4). Code::invalid
// for other schemes and bad addresses.
struct DmarcRua {
  std::string address;
  uint64_t max_size = 0;  // 0: no limit
};
Result<DmarcRua> parse_rua(std::string_view uri);

// RFC 7489 7.1: may `policy_domain`'s reports go to an address at `rua_domain`?
// Yes when both have the same organizational domain, or when
// POLICY._report._dmarc.RUA has a TXT record starting "v=DMARC1".
// Code::temporary when DNS fails (ask again later).
Result<bool> dmarc_rua_authorized(Resolver& dns, const PublicSuffixList& psl, std::string_view policy_domain,
                                  std::string_view rua_domain);

}  // namespace mail::auth
