// Where mail for a domain goes: the smarthost (for all or some domains), else
// the domain's MX hosts by preference (RFC 5321 5.1), else its address (implicit
// MX); a Null MX (RFC 7505) means the domain accepts no mail.
#pragma once

#include <string>
#include <vector>

#include "auth/resolver.h"
#include "base/status.h"
#include "config/config.h"

namespace mail::queue {

struct Host {
  std::string name;
  std::vector<std::string> addresses;  // IPv6 and IPv4, as resolved
};

struct Route {
  std::vector<Host> hosts;  // in the order to try
  uint16_t port = 25;
  bool smarthost = false;
};

// The addresses of `name` (or `name` itself when it is an IP address), IPv6
// first as RFC 6724 prefers; Code::temporary passes up, no records is empty.
Result<std::vector<std::string>> host_addresses(auth::Resolver& resolver, const std::string& name);

// Whether `domain` goes to queue.smarthost.
bool uses_smarthost(const QueueConfig& config, std::string_view domain);

// Errors: Code::temporary (DNS failure: retry later), Code::not_found (no such
// domain or no address: "5.1.2"), Code::denied (Null MX: "5.1.10").
Result<Route> find_route(auth::Resolver& resolver, const QueueConfig& config, std::string_view domain);

}  // namespace mail::queue
