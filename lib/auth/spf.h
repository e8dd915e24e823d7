// SPF (RFC 7208): is this IP address allowed to send mail for this domain?
// The evaluator follows check_host() of section 4, with the DNS limits of
// 4.6.4 (10 lookups by mechanisms and redirect, 2 void lookups, 10 MX and PTR
// names) and the macro language of section 7.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "auth/resolver.h"
#include "base/status.h"

namespace mail::auth {

enum class SpfResult { none, neutral, pass, fail, softfail, temperror, permerror };
std::string_view spf_result_name(SpfResult r);

// ---- the record ---------------------------------------------------------------

enum class SpfMechanism { all, include, a, mx, ptr, ip4, ip6, exists };

struct SpfTerm {
  bool is_modifier = false;
  char qualifier = '+';           // + - ~ ?
  SpfMechanism mechanism = SpfMechanism::all;
  std::string name;               // modifier name (lower case)
  std::string domain_spec;        // macro-string, unexpanded; empty: the current domain
  std::string address;            // ip4/ip6: the network, as written
  int cidr4 = 32;
  int cidr6 = 128;
};

struct SpfRecord {
  std::vector<SpfTerm> terms;  // mechanisms and modifiers, in order
  int redirect = -1;  // index of the redirect= modifier in terms, or -1
  int exp = -1;       // index of exp=, or -1
};

// True when the TXT string is an SPF record ("v=spf1" then a space or the end).
bool is_spf_record(std::string_view txt);
// Code::invalid (a permerror) on any syntax error anywhere in the record.
Result<SpfRecord> parse_spf_record(std::string_view text);

// ---- evaluation ---------------------------------------------------------------

struct SpfRequest {
  std::string ip;         // the client: IPv4 or IPv6 text
  std::string mail_from;  // the MAIL FROM address; empty: check the HELO identity
  std::string helo;       // the HELO/EHLO name
  std::string receiver = "unknown";  // %{r}: our host name
};

struct SpfOptions {
  size_t dns_mechanism_limit = 10;
  size_t void_lookup_limit = 2;
  // The explanation for a "fail" when the domain gives none (exp=).
  std::string default_explanation;
  int64_t now = -1;  // %{t}; -1: the clock
};

struct SpfVerdict {
  SpfResult result = SpfResult::none;
  std::string domain;       // the domain checked
  std::string explanation;  // for fail
  std::string problem;      // why a permerror/temperror/none
  std::string mechanism;    // the term that matched, as written
};

SpfVerdict spf_check(const SpfRequest& request, Resolver& resolver, const SpfOptions& options = {});

}  // namespace mail::auth
