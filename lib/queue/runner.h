// The queue runner: scans the store for due entries, delivers each one's
// recipients grouped by destination domain, and records the outcome of every
// attempt in one store transaction (queue_update); failures become DSNs.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "auth/resolver.h"
#include "config/config.h"
#include "queue/dane.h"
#include "queue/mta_sts.h"
#include "queue/smtp_client.h"
#include "service/tls.h"
#include "store/store.h"

namespace mail::queue {

struct RunnerSetup {
  QueueConfig config;
  std::string hostname;  // Reporting-MTA, EHLO unless queue.helo_name
  std::string smarthost_password;
};

class Runner {
 public:
  // Fails on a bad configuration (retry schedule, TLS).
  static Result<std::unique_ptr<Runner>> create(store::Store& store, auth::Resolver& resolver, RunnerSetup setup);

  // Delivers due mail until service::stopping(): scans every poll interval,
  // up to max_connections entries at once. Returns when in-flight attempts end.
  void run();

  // Attempts every entry due now, one after the other (`mail-queued --once`).
  // Returns how many entries were attempted.
  size_t run_once();

  // One attempt at one entry (exposed for tests and `run`).
  void attempt(store::QueueEntry entry);

  // The delay before attempt number `attempts` + 1, with +-10% jitter.
  int64_t retry_delay(uint32_t attempts) const;

 private:
  Runner(store::Store& store, auth::Resolver& resolver, RunnerSetup setup) :
      store_(store), resolver_(resolver), setup_(std::move(setup)) {}

  struct Outcome;
  void deliver_domain(const std::string& domain, const store::QueueEntry& entry, std::string_view content,
                      const std::vector<size_t>& rcpts, std::vector<Outcome>& out);
  void deliver_local(const store::QueueEntry& entry, std::string_view content, const std::vector<size_t>& rcpts,
                     std::vector<Outcome>& out);
  bool local_domain(const std::string& domain);
  // Counts a policy domain's TLS session as a success or failure (RFC 8460 data).
  // `policy` is "sts" or "tlsa", `type` the RFC 8460 result type of a failure.
  void record_tls(const std::string& domain, bool ok, const std::string& why, std::string_view policy = "sts",
                  std::string_view type = "validation-failure");
  // Sessions kept open after a transaction, by host, port and TLS/AUTH
  // settings, for the next message to the same host (RSET between).
  std::unique_ptr<SmtpClient> take_session(const std::string& key);
  void keep_session(const std::string& key, std::unique_ptr<SmtpClient> client);
  void close_sessions(bool all);  // those idle longer than queue.session_idle_s, or all
  void acquire(const std::string& domain);
  void release(const std::string& domain);

  store::Store& store_;
  auth::Resolver& resolver_;
  RunnerSetup setup_;
  std::vector<uint32_t> schedule_;
  std::shared_ptr<service::TlsContext> tls_;            // opportunistic, unverified
  std::shared_ptr<service::TlsContext> smarthost_tls_;  // verified unless configured not to
  std::shared_ptr<service::TlsContext> verify_tls_;     // MTA-STS: system CAs and queue.tls_ca_file
  std::unique_ptr<StsPolicies> sts_;                    // null when queue.mta_sts is off
  std::unique_ptr<DnssecResolver> dane_;                // null when DANE is off
  std::shared_ptr<service::TlsContext> dane_tls_;       // checks peers against TLSA records
  bool dane_validates();  // check_validation, at the first delivery and again while it fails
  std::mutex dane_mu_;
  bool dane_ok_ = false;
  int64_t dane_next_check_ = 0;  // steady clock, s; 0: not asked yet
  struct Idle {
    std::string key;
    std::unique_ptr<SmtpClient> client;
    int64_t since;  // steady clock, ms
  };
  std::mutex idle_mu_;
  std::deque<Idle> idle_;  // oldest first
  std::mutex rpt_mu_;                                   // serialises the TLS-RPT counters' updates

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, uint32_t> active_;  // deliveries per destination domain
};

}  // namespace mail::queue
