// SMTP TLS reporting (RFC 8460): the counts mail-queued records per policy
// domain and UTC day (store data namespace "tls-rpt", key "DOMAIN/YYYY-MM-DD";
// the queue layer writes them, so the record is defined here, below it), the
// JSON aggregate report made from them and the mail that carries it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/codec.h"
#include "base/status.h"

namespace mail::admin {

inline constexpr std::string_view kTlsRptNamespace = "tls-rpt";

// Failed sessions of one RFC 8460 result type ("validation-failure", ...).
struct TlsRptFailure {
  std::string result_type;
  uint64_t count = 0;
  MAIL_FIELDS(result_type, count)
};

struct TlsRptCounts {
  uint64_t success = 0;
  uint64_t failure = 0;
  std::string last_failure;             // the reason of the latest failure
  std::string policy_type;              // "sts" or "tlsa" (the latest policy applied)
  std::vector<TlsRptFailure> failures;  // by result type
  MAIL_FIELDS(success, failure, last_failure, policy_type, failures)
};

struct TlsReportMeta {
  std::string org_name;  // us
  std::string contact;   // contact-info: where to write back
  std::string report_id;
  int64_t begin = 0, end = 0;  // the day, unix time
};

// The report of RFC 8460 4 (every required field) for one policy domain.
std::string tls_report_json(const TlsReportMeta& meta, std::string_view policy_domain, const TlsRptCounts& counts);

// RFC 8460 5.3: "sender!policy-domain!begin!end!unique-id.json.gz".
std::string tls_report_filename(const TlsReportMeta& meta, std::string_view policy_domain);

// The mail (RFC 8460 5.3): multipart/report; report-type="tlsrpt" with a text
// part and the gzip as application/tlsrpt+gzip; TLS-Report-Domain and
// TLS-Report-Submitter fields; CRLF lines.
std::string tls_report_message(const TlsReportMeta& meta, std::string_view policy_domain, std::string_view gz,
                               std::string_view to, int64_t now);

// The rua URIs of a "_smtp._tls" TXT record ("v=TLSRPTv1; rua=mailto:a@b,https://..."),
// Code::invalid when it is not a TLSRPTv1 record.
Result<std::vector<std::string>> parse_tlsrpt_record(std::string_view txt);

}  // namespace mail::admin
