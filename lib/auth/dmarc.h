// DMARC (RFC 7489): policy discovery at the From domain or its organizational
// domain (Public Suffix List), identifier alignment of DKIM and SPF results,
// and the disposition the domain asks for (p, sp, np of RFC 9091, pct).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/canon.h"
#include "auth/psl.h"
#include "auth/resolver.h"
#include "base/status.h"

namespace mail::auth {

enum class DmarcPolicy { none, quarantine, reject };
std::string_view dmarc_policy_name(DmarcPolicy p);

struct DmarcRecord {
  DmarcPolicy p = DmarcPolicy::none;
  std::optional<DmarcPolicy> sp;  // subdomains; default p
  std::optional<DmarcPolicy> np;  // non-existent subdomains (RFC 9091); default sp
  bool strict_dkim = false;       // adkim=s
  bool strict_spf = false;        // aspf=s
  int pct = 100;
  std::vector<std::string> rua, ruf;
  std::string fo = "0";
  uint32_t ri = 86400;
};

// Code::invalid when the record is not DMARC1 or a tag is malformed. A record
// without p= but with rua= counts as p=none (RFC 7489 6.6.3).
Result<DmarcRecord> parse_dmarc_record(std::string_view text);

// One authenticated identifier that passed: a DKIM d= or an SPF MAIL FROM domain.
struct DmarcAuth {
  std::vector<std::string> dkim_pass_domains;  // d= of DKIM results that passed
  std::string spf_domain;                      // the MAIL FROM (or HELO) domain SPF checked
  bool spf_pass = false;
};

enum class DmarcStatus { none, pass, fail, temperror, permerror };
std::string_view dmarc_status_name(DmarcStatus s);

struct DmarcResult {
  DmarcStatus status = DmarcStatus::none;
  std::string from_domain;
  std::string policy_domain;  // where the record was found
  std::optional<DmarcRecord> record;
  bool dkim_aligned = false;
  bool spf_aligned = false;
  DmarcPolicy policy = DmarcPolicy::none;       // the policy that applies (p, sp or np)
  DmarcPolicy disposition = DmarcPolicy::none;  // after pct sampling; none on pass
  std::string reason;
};

struct DmarcOptions {
  const PublicSuffixList* psl = nullptr;  // nullptr: PublicSuffixList::system()
  // A number in [0, 100) for pct sampling: the policy applies when it is below
  // pct. Callers pass a random draw; tests a fixed one.
  int sample = 0;
};

DmarcResult dmarc_check(std::string_view from_domain, const DmarcAuth& auth, Resolver& resolver,
                        const DmarcOptions& options = {});

// The RFC5322.From domain: Code::invalid when there is no From field, more than
// one, or it names no or several addresses.
Result<std::string> dmarc_from_domain(const MailMessage& message);

}  // namespace mail::auth
