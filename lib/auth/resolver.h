// DNS lookups for mail authentication (DKIM keys, SPF, DMARC) behind one
// interface, so tests and tools run against a zone in memory and never touch
// the network.
//
//   SystemResolver  libunbound, with /etc/resolv.conf and /etc/hosts
//   StubResolver    a map of records, filled in code or from a zone file
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace mail::auth {

enum class DnsType { a, aaaa, mx, txt, ptr };

std::string_view dns_type_name(DnsType type);

class Resolver {
 public:
  virtual ~Resolver() = default;

  // The records of `type` at `name` (no trailing dot needed), as text:
  //   TXT   the record's character-strings joined with nothing
  //   A     dotted quad; AAAA: RFC 5952 text
  //   MX    "PREFERENCE EXCHANGE"
  //   PTR   the target name
  // Names are returned without a trailing dot. An empty vector: the name exists
  // but has no records of this type. Code::not_found: NXDOMAIN. Code::temporary:
  // timeout or server failure.
  virtual Result<std::vector<std::string>> lookup(std::string_view name, DnsType type) = 0;
  // The same, giving up with Code::temporary at `deadline`. The default checks
  // the deadline only before asking (stubs answer at once).
  virtual Result<std::vector<std::string>> lookup_until(std::string_view name, DnsType type,
                                                        std::chrono::steady_clock::time_point deadline);
};

// Lookups sharing one time budget (one message's checks): the SMTP client
// waits for them, so a slow DNS costs at most the budget, then the remaining
// lookups answer Code::temporary (temperror results) at once.
class BudgetResolver : public Resolver {
 public:
  BudgetResolver(Resolver& inner, std::chrono::milliseconds budget)
      : inner_(inner), deadline_(std::chrono::steady_clock::now() + budget) {}
  Result<std::vector<std::string>> lookup(std::string_view name, DnsType type) override;

 private:
  Resolver& inner_;
  std::chrono::steady_clock::time_point deadline_;
};

// The resolver of the host (libunbound, one cache per resolver: make one per
// process and share it). Thread-safe; lookups run concurrently.
Result<std::unique_ptr<Resolver>> make_system_resolver();
// libunbound asking only `server` ("IP" or "IP@PORT"), as tests point it at a local DNS server.
Result<std::unique_ptr<Resolver>> make_forwarding_resolver(const std::string& server);

// Records held in memory. Names match case-insensitively, a trailing dot ignored.
class StubResolver : public Resolver {
 public:
  void add(std::string_view name, DnsType type, std::string value);
  // Makes every lookup of `name` a temporary failure, or only those of `type`.
  // A name ending in ".*" fails every name that starts with what precedes the '*'.
  void fail(std::string_view name);
  void fail(std::string_view name, DnsType type);
  // Declares that `name` exists (lookups of other types answer "no records"
  // instead of NXDOMAIN).
  void touch(std::string_view name);

  // Reads a zone file: one record a line, "NAME TYPE VALUE" with TYPE one of
  // TXT A AAAA MX PTR; the VALUE is the rest of the line (for TXT, as is: no
  // quoting). "NAME TIMEOUT [TYPE]" makes lookups of NAME (of TYPE) fail
  // temporarily, "NAME EXISTS" declares it. In NAME and VALUE, \xHH stands
  // for any byte and \\ for a backslash. Blank lines and lines starting with
  // '#' are skipped.
  Status load_zone(std::string_view text);

  Result<std::vector<std::string>> lookup(std::string_view name, DnsType type) override;

  // How many lookups were answered (for tests of lookup limits).
  size_t lookups() const { return lookups_; }

 private:
  std::map<std::pair<std::string, DnsType>, std::vector<std::string>> records_;
  std::set<std::string> names_;
  std::set<std::string> failing_;
  std::set<std::pair<std::string, DnsType>> failing_types_;
  std::vector<std::string> failing_prefixes_;
  size_t lookups_ = 0;  // counted atomically: lookups may come from several threads
};

// Lower case, without a trailing dot: how names are compared.
std::string dns_name_key(std::string_view name);

}  // namespace mail::auth
