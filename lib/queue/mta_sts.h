// MTA-STS (RFC 8461): a domain's TXT record `_mta-sts.DOMAIN` announces a
// policy served over HTTPS at https://mta-sts.DOMAIN/.well-known/mta-sts.txt;
// the policy names the MX hosts that may receive its mail and whether TLS with
// a valid certificate is required (enforce), only reported (testing) or off
// (none). Policies are cached in the store (data namespace "mta-sts").
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "admin/tls_report.h"
#include "auth/resolver.h"
#include "base/codec.h"
#include "base/status.h"
#include "config/config.h"
#include "service/tls.h"
#include "store/store.h"

namespace mail::queue {

enum class StsMode : uint8_t { none = 0, testing = 1, enforce = 2 };

struct StsPolicy {
  uint8_t mode = 0;               // StsMode
  std::vector<std::string> mx;    // patterns, lower case: "mx.example.com", "*.example.net"
  uint32_t max_age = 0;           // seconds
  std::string id;                 // the TXT record's id when fetched
  int64_t fetched = 0;            // unix time
  MAIL_FIELDS(mode, mx, max_age, id, fetched)

  StsMode sts_mode() const { return static_cast<StsMode>(mode); }
  bool expired(int64_t now) const { return now - fetched >= static_cast<int64_t>(max_age); }
  // Whether `host` (an MX name) matches a pattern; "*." matches one leftmost label.
  bool allows(std::string_view host) const;
};

// TLS-RPT (RFC 8460) counts per policy domain and day: admin/tls_report.h.
using admin::TlsRptCounts;
using admin::TlsRptFailure;

// The policy file, strictly (RFC 8461 3.2): CRLF or LF lines of "key: value",
// version STSv1 first, mode, max_age (at most 31557600), mx (at least one
// unless mode is none); unknown keys are ignored. Code::invalid otherwise.
Result<StsPolicy> parse_sts_policy(std::string_view text);

// The TXT record's id ("v=STSv1; id=...;"); Code::invalid when it is not an
// STS record.
Result<std::string> parse_sts_record(std::string_view txt);

// The body of a raw HTTP/1.0 answer: status 200, Content-Type text/plain,
// Content-Length honoured, at most 64 KiB. Code::invalid otherwise.
Result<std::string> parse_sts_http_response(std::string_view raw);

// A certificate-verifying client context; with `ca_file`, its CAs are trusted
// besides the system's (tests bring their own CA).
Result<std::shared_ptr<service::TlsContext>> verifying_client_context(const std::string& ca_file);

// Fetches the policy of `domain` over HTTPS (status 200, text/plain, no
// redirects, at most 64 KiB). Code::temporary on network or TLS errors,
// Code::invalid on a bad answer.
Result<std::string> fetch_sts_policy(auth::Resolver& resolver, const service::TlsContext& tls,
                                     const std::string& domain, uint16_t port, int timeout_ms);

// The policy in force for `domain`, or nullopt (no policy: opportunistic TLS).
// Uses the cached policy while the TXT id is unchanged and max_age has not
// passed, and also when a refresh fails.
class StsPolicies {
 public:
  StsPolicies(store::Store& store, auth::Resolver& resolver, std::shared_ptr<service::TlsContext> tls,
              uint16_t port, int timeout_ms)
      : store_(store), resolver_(resolver), tls_(std::move(tls)), port_(port), timeout_ms_(timeout_ms) {}
  std::optional<StsPolicy> get(const std::string& domain, int64_t now);

 private:
  std::optional<StsPolicy> cached(const std::string& domain);
  void save(const std::string& domain, const StsPolicy& policy);

  store::Store& store_;
  auth::Resolver& resolver_;
  std::shared_ptr<service::TlsContext> tls_;
  uint16_t port_;
  int timeout_ms_;
};

}  // namespace mail::queue
