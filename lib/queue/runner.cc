#include "queue/runner.h"

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <ctime>
#include <deque>
#include <random>
#include <thread>

#include "base/date.h"
#include "base/log.h"
#include "base/xtext.h"
#include "queue/dsn.h"
#include "queue/route.h"
#include "queue/smtp_client.h"
#include "queue/submit.h"
#include "service/daemon.h"

namespace mail::queue {

using store::QueueEntry;
using store::QueueState;
using store::RecipientState;

struct Runner::Outcome {
  enum Kind { none, delivered, failed, deferred, interrupted } kind = none;
  std::string reply;   // "550 5.1.1 No such user", or our own text in the same shape
  std::string status;  // "5.1.1"
  std::string remote;  // the host that answered
  std::string tls;     // how the session was secured, for the log: "dane", "verified", "unverified", "none"
  bool relayed = false;  // handed to a host without DSN support
};

namespace {

std::string domain_of(const std::string& address) {
  size_t at = address.rfind('@');
  return at == std::string::npos ? std::string() : auth::dns_name_key(address.substr(at + 1));
}

std::string notify_param(uint8_t bits) {
  if (!bits) return "";
  if (bits & store::notify::never) return " NOTIFY=NEVER";
  std::string v;
  if (bits & store::notify::success) v += ",SUCCESS";
  if (bits & store::notify::failure) v += ",FAILURE";
  if (bits & store::notify::delay) v += ",DELAY";
  return v.empty() ? "" : " NOTIFY=" + v.substr(1);
}

bool unfinished(RecipientState s) { return s == RecipientState::pending || s == RecipientState::deferred; }

// Waits up to ms, returning early when the daemon stops.
void pause_ms(uint32_t ms) {
  pollfd p{service::stop_fd(), POLLIN, 0};
  int n;
  do n = ::poll(&p, 1, static_cast<int>(ms));
  while (n < 0 && errno == EINTR);
}

}  // namespace

Result<std::unique_ptr<Runner>> Runner::create(store::Store& store, auth::Resolver& resolver, RunnerSetup setup) {
  std::unique_ptr<Runner> r(new Runner(store, resolver, std::move(setup)));
  MAIL_ASSIGN_OR_RETURN(r->schedule_, parse_retry_schedule(r->setup_.config.retry_schedule));
  MAIL_ASSIGN_OR_RETURN(r->tls_, service::TlsContext::create_client(false));
  const QueueConfig& cfg = r->setup_.config;
  MAIL_ASSIGN_OR_RETURN(r->verify_tls_, verifying_client_context(cfg.tls_ca_file));
  if (cfg.smarthost_tls_verify) {
    r->smarthost_tls_ = r->verify_tls_;
  } else {
    MAIL_ASSIGN_OR_RETURN(r->smarthost_tls_, service::TlsContext::create_client(false));
  }
  if (cfg.mta_sts)
    r->sts_ = std::make_unique<StsPolicies>(store, resolver, r->verify_tls_, static_cast<uint16_t>(cfg.mta_sts_port),
                                            static_cast<int>(cfg.connect_timeout_s * 1000));
  if (cfg.dane) {
    // On by default, but only where the resolver can validate (a trust anchor).
    auto dnssec = make_dnssec_resolver(cfg.resolver, cfg.dnssec_trust_anchor);
    if (dnssec) {
      r->dane_ = std::move(*dnssec);
      MAIL_ASSIGN_OR_RETURN(r->dane_tls_, dane_client_context());
    } else {
      log::warn("queue: DANE is off: {}", dnssec.status().message());
    }
  }
  if (r->setup_.config.helo_name.empty()) r->setup_.config.helo_name = r->setup_.hostname;
  return r;
}

int64_t Runner::retry_delay(uint32_t attempts) const {
  size_t i = std::min<size_t>(attempts ? attempts - 1 : 0, schedule_.size() - 1);
  static thread_local std::mt19937 rng{std::random_device{}()};
  std::uniform_real_distribution<double> jitter(0.9, 1.1);  // spreads retries after an outage
  return std::max<int64_t>(1, static_cast<int64_t>(schedule_[i] * jitter(rng)));
}

namespace {
int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

// Asked at the first delivery, not at start: a DNS that does not answer must
// not hold up the daemon's readiness. A failure (anchor unreadable, DNSKEY not
// validated) is asked again later rather than turning DANE off for good; the
// deliveries between go without DANE, as the log says.
bool Runner::dane_validates() {
  const int64_t recheck_ms = int64_t{setup_.config.dane_recheck_s} * 1000;
  std::lock_guard lock(dane_mu_);
  if (dane_ok_) return true;
  const int64_t now = steady_ms();
  if (dane_next_check_ != 0 && now < dane_next_check_) return false;
  Status st = check_validation(*dane_, setup_.config.dnssec_trust_anchor);
  dane_ok_ = st.is_ok();
  if (!dane_ok_)
    log::warn("queue: DANE is off for {} s: {}", setup_.config.dane_recheck_s, st.message());
  else if (dane_next_check_ != 0)
    log::info("queue: DANE is on again: the resolver validates the trust anchor");
  dane_next_check_ = now + recheck_ms;
  return dane_ok_;
}

std::unique_ptr<SmtpClient> Runner::take_session(const std::string& key) {
  for (;;) {
    std::unique_ptr<SmtpClient> client;
    {
      std::lock_guard lock(idle_mu_);
      for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {
        if (it->key != key) continue;
        client = std::move(it->client);
        idle_.erase(std::next(it).base());
        break;
      }
    }
    if (!client) return nullptr;
    if (client->reset()) return client;  // else the peer closed it meanwhile: try another
  }
}

void Runner::keep_session(const std::string& key, std::unique_ptr<SmtpClient> client) {
  if (setup_.config.session_idle_s == 0) return client->quit();
  std::unique_ptr<SmtpClient> oldest;
  {
    std::lock_guard lock(idle_mu_);
    idle_.push_back({key, std::move(client), steady_ms()});
    if (idle_.size() > 2 * setup_.config.max_connections) {  // a slot for each of the busiest destinations
      oldest = std::move(idle_.front().client);
      idle_.pop_front();
    }
  }
  if (oldest) oldest->quit();
}

void Runner::close_sessions(bool all) {
  std::vector<std::unique_ptr<SmtpClient>> done;
  {
    std::lock_guard lock(idle_mu_);
    const int64_t limit = steady_ms() - static_cast<int64_t>(setup_.config.session_idle_s) * 1000;
    while (!idle_.empty() && (all || idle_.front().since <= limit)) {
      done.push_back(std::move(idle_.front().client));
      idle_.pop_front();
    }
  }
  for (auto& c : done) c->quit();  // outside the lock: QUIT waits for a reply
}

void Runner::acquire(const std::string& domain) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return active_[domain] < setup_.config.max_per_destination; });
  ++active_[domain];
}

void Runner::release(const std::string& domain) {
  std::lock_guard lock(mu_);
  if (--active_[domain] == 0) active_.erase(domain);
  cv_.notify_all();
}

bool Runner::local_domain(const std::string& domain) {
  auto list = store_.domain_list(store::Empty{});
  if (!list) return false;
  return std::any_of(list->domains.begin(), list->domains.end(),
                     [&](const store::DomainInfo& d) { return d.name == domain; });
}

void Runner::record_tls(const std::string& domain, bool ok, const std::string& why, std::string_view policy,
                        std::string_view type) {
  if (!ok) log::warn("queue: TLS policy failure for {}: {}", domain, why);
  store::DataKey key{0, std::string(admin::kTlsRptNamespace), domain + "/" + utc_time(std::time(nullptr), "%Y-%m-%d")};
  std::lock_guard lock(rpt_mu_);
  TlsRptCounts counts;
  if (auto v = store_.data_get(key); v && v->found) (void)decode(v->value, counts);
  ++(ok ? counts.success : counts.failure);
  counts.policy_type = std::string(policy);
  if (!ok) {
    counts.last_failure = why;
    auto f = std::find_if(counts.failures.begin(), counts.failures.end(),
                          [&](const TlsRptFailure& x) { return x.result_type == type; });
    if (f == counts.failures.end()) f = counts.failures.insert(f, TlsRptFailure{std::string(type), 0});
    ++f->count;
  }
  auto st = store_.data_put(store::DataPutReq{key, encode(counts)});
  if (!st) log::warn("queue: cannot record TLS results of {}: {}", domain, st.status().to_string());
}

void Runner::deliver_local(const QueueEntry& e, std::string_view content, const std::vector<size_t>& rcpts,
                           std::vector<Outcome>& out) {
  for (size_t i : rcpts) {
    Submission s;
    s.sender = e.sender;
    s.recipients = {e.recipients[i]};
    s.content = std::string(content);
    s.now = std::time(nullptr);
    auto r = submit(store_, s);
    Outcome& o = out[i];
    o.remote = setup_.hostname;
    if (!r) {
      o = {Outcome::deferred, "451 4.3.0 " + r.status().message(), "4.3.0", setup_.hostname};
    } else if (r->recipients[0] == Code::not_found) {
      o = {Outcome::failed, "550 5.1.1 No such user here", "5.1.1", setup_.hostname};
    } else {
      o = {Outcome::delivered, "250 2.0.0 Delivered locally", "2.0.0", setup_.hostname};
    }
  }
}

void Runner::deliver_domain(const std::string& domain, const QueueEntry& e, std::string_view content,
                            const std::vector<size_t>& rcpts, std::vector<Outcome>& out) {
  auto all = [&](Outcome::Kind kind, const std::string& status, const std::string& text, const std::string& host) {
    for (size_t i : rcpts) out[i] = {kind, text, status, host};
  };
  const QueueConfig& cfg = setup_.config;
  auto route = find_route(resolver_, cfg, domain);
  if (!route) {
    const std::string why = route.status().message();
    if (route.code() == Code::denied) return all(Outcome::failed, "5.1.10", "556 5.1.10 " + why, "");
    if (route.code() == Code::not_found) return all(Outcome::failed, "5.1.2", "550 5.1.2 " + why, "");
    return all(Outcome::deferred, "4.4.3", "451 4.4.3 " + why, "");
  }
  Envelope env;
  env.sender = e.sender;
  for (size_t i : rcpts) {
    const auto& r = e.recipients[i];
    env.recipients.push_back(r.address);
    std::string p = notify_param(r.notify);
    if (!r.orcpt.empty()) p += " ORCPT=" + r.orcpt;
    env.rcpt_params.push_back(std::move(p));
  }
  if (e.ret) env.mail_params += e.ret == 1 ? " RET=FULL" : " RET=HDRS";
  if (!e.envid.empty()) env.mail_params += " ENVID=" + xtext_encode(e.envid);
  env.binary = e.body_type == 2;
  env.eightbit = !env.binary && has_8bit(content);
  env.smtputf8 = e.smtputf8;

  ClientOptions opts;
  opts.helo = cfg.helo_name;
  opts.connect_timeout_ms = static_cast<int>(cfg.connect_timeout_s * 1000);
  opts.command_timeout_ms = static_cast<int>(cfg.command_timeout_s * 1000);
  if (route->smarthost) {
    opts.tls = smarthost_tls_;
    opts.require_tls = cfg.smarthost_require_tls || e.require_tls;
    opts.auth_user = cfg.smarthost_user;
    opts.auth_password = setup_.smarthost_password;
  } else {
    opts.tls = tls_;
    opts.require_tls = e.require_tls;
  }
  // MTA-STS: enforce keeps only the policy's MX hosts and requires TLS with a
  // certificate valid for the MX name; testing tries that first, records the
  // failure and delivers anyway.
  // DANE (RFC 7672): for MX names from a secure answer, each host's secure
  // TLSA records decide; where any host has them, DANE wins over MTA-STS
  // (RFC 8461 2). A bogus MX answer defers: never a downgrade.
  std::map<std::string, DanePolicy> dane;
  if (!route->smarthost && dane_ && dane_validates()) {
    auto secure = dane_domain_secure(*dane_, domain);
    if (!secure) {
      record_tls(domain, false, secure.status().message(), "tlsa", "dnssec-invalid");
      return all(Outcome::deferred, "4.7.5", "451 4.7.5 " + secure.status().message(), "");
    }
    if (*secure) {
      for (const Host& h : route->hosts) {
        DanePolicy p = dane_policy(*dane_, h.name, route->port);
        if (p.kind != DanePolicy::none) dane[h.name] = std::move(p);
      }
    }
  }
  std::optional<StsPolicy> sts;
  if (!route->smarthost && sts_ && dane.empty()) sts = sts_->get(domain, std::time(nullptr));
  const bool enforce = sts && sts->sts_mode() == StsMode::enforce;
  const bool testing = sts && sts->sts_mode() == StsMode::testing;
  if (enforce) {
    std::erase_if(route->hosts, [&](const Host& h) {
      if (sts->allows(h.name)) return false;
      record_tls(domain, false, "MX " + h.name + " is not in the MTA-STS policy");
      return true;
    });
    if (route->hosts.empty())
      return all(Outcome::deferred, "4.7.5", "451 4.7.5 no MX host of " + domain + " matches its MTA-STS policy", "");
    opts.tls = verify_tls_;
    opts.require_tls = true;
  }
  std::string last_error = "no host could be reached";
  for (const Host& host : route->hosts) {
    const bool check = testing && sts->allows(host.name);
    if (testing && !check) record_tls(domain, false, "MX " + host.name + " is not in the MTA-STS policy (testing)");
    auto dp = dane.find(host.name);
    const DanePolicy* dane_host = dp == dane.end() ? nullptr : &dp->second;
    ClientOptions hopts = opts;
    if (dane_host) {
      if (dane_host->kind == DanePolicy::unusable) {
        record_tls(domain, false, dane_host->why, "tlsa", dane_host->result_type);
        last_error = "DANE: " + dane_host->why;
        continue;
      }
      hopts.tls = dane_host->kind == DanePolicy::verify ? dane_tls_ : tls_;
      hopts.require_tls = true;
    }
    for (const std::string& ip : host.addresses) {
      // SNI is the TLSA base domain (RFC 7672 8.1): the CNAME target when the records are there
      hopts.tls_name = hopts.tls == dane_tls_ ? dane_host->base_domain : host.name;
      // A kept session to this host with the same settings saves a connection
      // and the TLS handshake (testing mode always checks anew).
      const std::string key = ip + " " + std::to_string(route->port) + " " + host.name + " " +
                              (hopts.tls == verify_tls_ ? "verify " : hopts.tls == dane_tls_ ? "dane " : "any ") +
                              (hopts.require_tls ? "tls " : "- ") + hopts.auth_user;
      std::unique_ptr<SmtpClient> client = check ? nullptr : take_session(key);
      Status st;
      bool passed_sts_check = false;  // an MTA-STS testing session opened with verification
      if (client) {
        // reused
      } else if (check) {
        client = std::make_unique<SmtpClient>();
        ClientOptions strict = hopts;
        strict.tls = verify_tls_;
        strict.require_tls = true;
        st = client->open(ip, route->port, strict);
        if (st) {
          passed_sts_check = true;
          record_tls(domain, true, "");
        } else if (st.code() != Code::unavailable) {
          record_tls(domain, false, host.name + "[" + ip + "]: " + st.message() + " (testing)");
          client = std::make_unique<SmtpClient>();
          st = client->open(ip, route->port, hopts);
        }
      } else {
        client = std::make_unique<SmtpClient>();
        {
          std::optional<DaneScope> scope;
          if (hopts.tls == dane_tls_) scope.emplace(*dane_host);
          st = client->open(ip, route->port, hopts);
        }
        const std::string why = st ? "" : host.name + "[" + ip + "]: " + st.message();
        // A host that never answered is no TLS session to report.
        if (dane_host && st.code() != Code::unavailable && (st || client->last().code != 0))
          record_tls(domain, bool(st), why, "tlsa",
                     client->extensions().starttls ? "validation-failure" : "starttls-not-supported");
        else if (enforce && st.code() != Code::unavailable)
          record_tls(domain, bool(st), why);
      }
      if (!st) {
        if (st.code() == Code::unavailable) return all(Outcome::interrupted, "", "", "");
        last_error = (dane_host ? "DANE: " : enforce ? "MTA-STS: " : "") + host.name + "[" + ip + "]: " + st.message();
        log::info("queue: {} {}", e.id, last_error);
        continue;
      }
      const Extensions& ext = client->extensions();
      const std::string where = host.name + "[" + ip + "]";
      std::string refuse;
      if (env.binary && !(ext.chunking && ext.binarymime))
        refuse = "554 5.6.3 " + where + " does not accept binary content (BINARYMIME)";
      else if (env.eightbit && !ext.eightbit)
        refuse = "554 5.6.3 " + where + " does not accept 8-bit content (8BITMIME)";
      else if (env.smtputf8 && !ext.smtputf8)
        refuse = "553 5.6.7 " + where + " does not accept internationalized addresses (SMTPUTF8)";
      else if (ext.size && content.size() > ext.size)
        refuse = "552 5.3.4 message too big for " + where;
      if (!refuse.empty()) {
        client->quit();
        return all(Outcome::failed, refuse.substr(4, 5), refuse, host.name);
      }
      auto tr = client->send(env, content);
      if (!tr) {
        if (tr.code() == Code::unavailable) return all(Outcome::interrupted, "", "", "");
        return all(Outcome::deferred, "4.4.2", "451 4.4.2 " + where + ": " + tr.status().message(), host.name);
      }
      for (size_t k = 0; k < rcpts.size(); ++k) {
        const SmtpReply& rr = k < tr->rcpts.size() && !tr->rcpts[k].ok() ? tr->rcpts[k] : tr->data;
        Outcome& o = out[rcpts[k]];
        o.kind = rr.ok() ? Outcome::delivered : rr.permanent() ? Outcome::failed : Outcome::deferred;
        if (!rr.code) o.kind = Outcome::deferred;
        o.reply = rr.code ? rr.str() : "451 4.4.2 no reply";
        o.status = rr.status();
        o.remote = host.name;
        o.tls = !client->tls()                                 ? "none"
                : hopts.tls == dane_tls_                       ? "dane"
                : hopts.tls == verify_tls_ || passed_sts_check ? "verified"
                                                               : "unverified";
        o.relayed = rr.ok() && !ext.dsn;
      }
      if (check) client->quit();
      else keep_session(key, std::move(client));
      return;
    }
  }
  all(Outcome::deferred, "4.4.1", "451 4.4.1 " + last_error, "");
}

void Runner::attempt(QueueEntry e) {
  const store::UnixTime now = std::time(nullptr);
  auto content = store_.content_get(store::ContentReq{e.content});
  if (!content) {
    log::error("queue: {} content unreadable: {}", e.id, content.status().to_string());
    return;
  }
  const std::string_view out = outbound_content(content->bytes);
  std::vector<Outcome> res(e.recipients.size());
  const bool returned = e.state == QueueState::bounced;  // `mailctl queue bounce`
  std::map<std::string, std::vector<size_t>> by_domain;
  std::vector<size_t> local;
  std::map<std::string, bool> is_local;
  for (size_t i = 0; i < e.recipients.size(); ++i) {
    if (!unfinished(e.recipients[i].state)) continue;
    if (returned) {
      res[i] = {Outcome::failed, "550 5.0.0 Returned to the sender by the postmaster", "5.0.0", ""};
      continue;
    }
    std::string d = domain_of(e.recipients[i].address);
    auto it = is_local.find(d);
    if (it == is_local.end()) it = is_local.emplace(d, local_domain(d)).first;
    if (it->second) local.push_back(i);  // local domains never leave
    else by_domain[d].push_back(i);
  }
  if (!local.empty()) deliver_local(e, out, local, res);
  for (const auto& group : by_domain) {
    if (service::stopping()) {
      for (size_t i : group.second) res[i].kind = Outcome::interrupted;
      continue;
    }
    acquire(group.first);
    if (service::stopping()) {  // stopped while waiting for a slot
      for (size_t i : group.second) res[i].kind = Outcome::interrupted;
    } else {
      deliver_domain(group.first, e, out, group.second, res);
    }
    release(group.first);
  }

  const bool expired = now - e.created >= static_cast<int64_t>(setup_.config.max_age_s) ||
                       (e.deliver_by && now > e.deliver_by);
  bool interrupted = false;
  Dsn dsn;
  dsn.reporting_mta = setup_.hostname;
  dsn.to = e.sender;
  dsn.envid = e.envid;
  dsn.ret = e.ret;
  dsn.arrival = e.created;
  dsn.now = now;
  dsn.original = out;
  std::vector<size_t> failing;  // recipients this attempt fails (state change waits for the DSN)
  std::vector<size_t> delaying;  // recipients whose delay report this DSN carries
  const uint32_t warn_after = setup_.config.delay_warning_s;
  for (size_t i = 0; i < res.size(); ++i) {
    Outcome& o = res[i];
    const auto& r = e.recipients[i];
    if (o.kind == Outcome::interrupted) interrupted = true;
    if (o.kind == Outcome::deferred && expired) {
      o.kind = Outcome::failed;
      o.status = "4.4.7";
      o.reply += " (gave up: message expired)";
    }
    if (o.kind == Outcome::failed) failing.push_back(i);
    bool tell = false;
    std::string action;
    if (o.kind == Outcome::failed && !(r.notify & store::notify::never)) {
      tell = true;
      action = "failed";
    } else if (o.kind == Outcome::delivered && (r.notify & store::notify::success) &&
               (o.relayed || local_domain(domain_of(r.address)))) {
      tell = true;  // a remote host with DSN support reports success itself (RFC 3461 5.2.2)
      action = o.relayed && !local_domain(domain_of(r.address)) ? "relayed" : "delivered";
    }
    if (!tell && o.kind == Outcome::deferred && (r.notify & store::notify::delay) && !r.delay_reported &&
        warn_after && now - e.created >= static_cast<int64_t>(warn_after)) {
      tell = true;  // one "delayed" report per recipient (RFC 3461 4.1)
      action = "delayed";
      delaying.push_back(i);
    }
    if (tell) dsn.recipients.push_back({r.address, r.orcpt, action, o.status, o.remote, o.reply});
  }
  bool dsn_stored = true;
  if (!e.sender.empty() && !dsn.recipients.empty()) {  // never a DSN to the null sender
    Submission s;
    store::QueueRecipient to;
    to.address = e.sender;
    to.notify = store::notify::never;
    s.recipients = {to};
    s.content = build_dsn(dsn);
    s.now = now;
    auto r = submit(store_, s);
    if (!r) {
      dsn_stored = false;
      log::error("queue: {} DSN to <{}> not stored: {}", e.id, e.sender, r.status().to_string());
    } else if (r->recipients[0] != Code::ok) {
      log::warn("queue: {} DSN to <{}> dropped: no such local user", e.id, e.sender);
    }
  }
  if (!dsn_stored) {  // fail them next time, with their DSN
    for (size_t i : failing) res[i].kind = Outcome::deferred;
  } else {
    for (size_t i : delaying) e.recipients[i].delay_reported = true;
  }

  size_t delivered = 0, failed = 0, deferred = 0;
  std::string last_error;
  for (size_t i = 0; i < res.size(); ++i) {
    auto& r = e.recipients[i];
    const Outcome& o = res[i];
    if (o.kind == Outcome::none || o.kind == Outcome::interrupted) continue;
    r.last_reply = o.reply;
    if (o.kind == Outcome::delivered) {
      r.state = RecipientState::delivered;
      ++delivered;
    } else if (o.kind == Outcome::failed) {
      r.state = RecipientState::failed;
      ++failed;
    } else {
      r.state = RecipientState::deferred;
      last_error = o.reply;
      ++deferred;
    }
    log::info("queue: {} to=<{}> {} {}{}", e.id, r.address,
              o.kind == Outcome::delivered ? "delivered" : o.kind == Outcome::failed ? "bounced" : "deferred", o.reply,
              o.tls.empty() ? "" : " tls=" + o.tls);
  }
  if (!interrupted || delivered + failed + deferred) {
    if (!interrupted) {
      ++e.attempts;
      e.next_attempt = now + retry_delay(e.attempts);
    }
    if (!last_error.empty()) e.last_error = last_error;
    // An entry held while this attempt ran stays held.
    auto current = store_.queue_get(store::QueueRef{e.id});
    if (current && current->state == QueueState::held) e.state = QueueState::held;
    else e.state = QueueState::deferred;
    auto st = store_.queue_update(store::QueueUpdateReq{e});
    if (!st) log::error("queue: {} cannot record the attempt: {}", e.id, st.status().to_string());
  }
}

size_t Runner::run_once() {
  auto due = store_.queue_list(store::QueueListReq{static_cast<store::UnixTime>(std::time(nullptr)), 0});
  if (!due) {
    log::error("queue: cannot list the queue: {}", due.status().to_string());
    return 0;
  }
  for (auto& e : due->entries) attempt(std::move(e));
  close_sessions(true);
  return due->entries.size();
}

void Runner::run() {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<QueueEntry> work;
  std::set<store::QueueId> busy;
  bool done = false;
  std::vector<std::thread> workers;
  for (uint32_t n = 0; n < setup_.config.max_connections; ++n) {
    workers.emplace_back([&] {
      for (;;) {
        QueueEntry e;
        {
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return done || !work.empty(); });
          if (work.empty()) return;
          e = std::move(work.front());
          work.pop_front();
        }
        store::QueueId id = e.id;
        // The listing may predate an attempt that just finished: go by the entry as it is now.
        auto fresh = store_.queue_get(store::QueueRef{id});
        bool due = fresh && fresh->state != QueueState::held &&
                   fresh->next_attempt <= static_cast<store::UnixTime>(std::time(nullptr));
        if (due) attempt(std::move(*fresh));
        std::lock_guard lock(mu);
        busy.erase(id);
      }
    });
  }
  while (!service::stopping()) {
    auto due = store_.queue_list(store::QueueListReq{static_cast<store::UnixTime>(std::time(nullptr)), 0});
    if (!due) {
      log::warn("queue: cannot list the queue: {}", due.status().to_string());
    } else {
      std::lock_guard lock(mu);
      for (auto& e : due->entries) {
        if (!busy.insert(e.id).second) continue;
        work.push_back(std::move(e));
      }
      cv.notify_all();
    }
    close_sessions(false);
    pause_ms(setup_.config.poll_interval_ms);
  }
  {
    std::lock_guard lock(mu);
    done = true;
    work.clear();  // not started: they stay due in the store
  }
  cv.notify_all();
  for (auto& t : workers) t.join();
  close_sessions(true);
}

}  // namespace mail::queue
