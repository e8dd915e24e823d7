// The inbound authentication filter: on MX mail it checks SPF (MAIL FROM and
// HELO), every DKIM signature, the ARC chain and DMARC, removes forged
// Authentication-Results carrying our authserv-id, adds ours (RFC 8601), acts
// on DMARC failures as configured ([auth] dmarc_policy) and records each
// result for DMARC aggregate reports. Mail an alias forwards to a remote
// address gets our ARC set (RFC 8617), signed with the alias domain's DKIM key.
//
// DNS: one libunbound resolver per process (its cache is shared by every
// session); a message's lookups share a time budget ([auth] dns_budget_ms), so
// a dead DNS server makes temperror results, never a stalled client.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "auth/resolver.h"
#include "config/config.h"
#include "smtp/dkim_sign_filter.h"
#include "smtp/session.h"
#include "store/store.h"

namespace mail::smtp {

struct AuthFilterOptions {
  std::string authserv_id;
  enum class Policy { reject, quarantine, tag } policy = Policy::reject;
  std::chrono::milliseconds dns_budget{10000};
  bool record_reports = true;
  bool check_loopback = false;
  // A number in [0, 100) for DMARC pct sampling; tests fix it. Default: random.
  std::function<int()> sample;
  std::function<int64_t()> now;
};

class AuthFilter : public MessageFilter {
 public:
  // `store` receives the DMARC report records and holds the ARC signing keys
  // (nullptr: nothing recorded, nothing sealed).
  AuthFilter(auth::Resolver& resolver, store::Store* store, AuthFilterOptions options);

  std::string_view name() const override { return "auth"; }
  FilterResult run(const FilterContext& context, std::string_view message) override;

 private:
  // The ARC set to put on top of `message` once `out` is applied, when it goes
  // to a remote address through an alias whose domain has a DKIM key; "" otherwise.
  std::string arc_seal_forwarded(const FilterContext& context, std::string_view message, const FilterResult& out);

  auth::Resolver& resolver_;
  store::Store* store_;
  AuthFilterOptions options_;
  std::unique_ptr<DkimKeyCache> keys_;  // with a store only
};

// The filter as [auth] configures it, with the process's resolver, or null
// when auth.verify_inbound is off.
struct InboundAuth {
  std::unique_ptr<auth::Resolver> resolver;
  std::unique_ptr<AuthFilter> filter;
};
Result<InboundAuth> make_inbound_auth(const Config& config, const std::string& hostname, store::Store& store);

}  // namespace mail::smtp
