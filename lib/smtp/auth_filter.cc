#include "smtp/auth_filter.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <random>

#include "auth/arc.h"
#include "auth/auth_results.h"
#include "auth/dkim.h"
#include "auth/dmarc.h"
#include "auth/dmarc_report.h"
#include "auth/spf.h"
#include "base/log.h"

namespace mail::smtp {
namespace {

// Text for a comment in a result: no parentheses, backslashes or controls.
std::string comment(std::string_view s) {
  std::string out = " (";
  for (unsigned char c : s.substr(0, 200)) out.push_back(c < 0x20 || c == 0x7f || c == '(' || c == ')' || c == '\\' ? ' ' : c);
  return out + ")";
}

// A property value (RFC 8601 pvalue): as is when it is a plain token or
// address, else a quoted-string.
std::string pvalue(std::string_view s) {
  bool plain = !s.empty();
  for (unsigned char c : s)
    plain = plain && (std::isalnum(c) || c >= 0x80 || std::string_view(".-_+@=/!#$%&'*?^`{|}~").find(c) != std::string_view::npos);
  if (plain) return std::string(s);
  std::string out = "\"";
  for (unsigned char c : s.substr(0, 320)) {
    if (c < 0x20 || c == 0x7f) continue;
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(static_cast<char>(c));
  }
  return out + "\"";
}

bool loopback(std::string_view ip) { return ip.rfind("127.", 0) == 0 || ip == "::1" || ip.rfind("::ffff:127.", 0) == 0; }

std::string domain_of(std::string_view address) {
  size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string() : auth::dns_name_key(address.substr(at + 1));
}

int random_sample() {
  thread_local std::mt19937 rng{std::random_device{}()};
  return static_cast<int>(rng() % 100);
}

}  // namespace

AuthFilter::AuthFilter(auth::Resolver& resolver, store::Store* store, AuthFilterOptions options)
    : resolver_(resolver), store_(store), options_(std::move(options)) {
  if (store_) keys_ = std::make_unique<DkimKeyCache>(*store_);
}

std::string AuthFilter::arc_seal_forwarded(const FilterContext& ctx, std::string_view message, const FilterResult& out) {
  if (!keys_ || !ctx.recipients) return "";
  std::string domain, selector;
  std::shared_ptr<const auth::DkimKey> key;
  for (const auto& r : *ctx.recipients) {
    bool forwarded = std::any_of(r.remote.begin(), r.remote.end(), [&](const std::string& a) { return a != r.address; });
    if (!forwarded) continue;
    domain = domain_of(r.address);
    key = keys_->key_for(domain, selector);
    // ARC-Seal takes DKIM's a= (RFC 8617 4.1.3), but ARC in the field is rsa-sha256
    // (dkimpy's arc_sign makes nothing else): an Ed25519 seal risks reading as broken.
    if (key && key->algorithm() == auth::DkimAlgorithm::rsa_sha256) break;
    key = nullptr;
  }
  if (!key) return "";
  // Seal the message as it will be stored: forgeries gone, our results on top.
  std::string sealed(message);
  for (auto it = out.remove.rbegin(); it != out.remove.rend(); ++it)
    if (it->first <= it->second && it->second <= sealed.size()) sealed.erase(it->first, it->second - it->first);
  sealed.insert(0, out.prepend);
  auth::ArcSealOptions options;
  options.domain = domain;
  options.selector = selector;
  options.authserv_id = options_.authserv_id;
  if (options_.now) options.timestamp = options_.now();
  auto set = auth::arc_seal(auth::MailMessage(sealed), *key, options);
  if (!set) {
    log::warn("auth: cannot ARC-seal mail forwarded for {}: {}", domain, set.status().message());
    return "";
  }
  return std::move(*set);
}

FilterResult AuthFilter::run(const FilterContext& ctx, std::string_view message) {
  FilterResult out;
  if (ctx.mode != Mode::mx || ctx.peer_ip.empty()) return out;
  if (loopback(ctx.peer_ip) && !options_.check_loopback) return out;
  const std::string& id = options_.authserv_id;
  auth::BudgetResolver dns(resolver_, options_.dns_budget);
  auth::MailMessage msg(message);

  // Forgeries of our results: whatever a sender put there must not be trusted.
  if (msg.text().data() == message.data()) {
    for (const auto& h : msg.headers()) {
      if (!auth::is_our_auth_results(h, id)) continue;
      size_t at = static_cast<size_t>(h.raw.data() - message.data());
      out.remove.emplace_back(at, at + h.raw.size());
    }
  }

  std::vector<std::string> results;
  // SPF: the HELO identity, and MAIL FROM unless it is the null sender (then
  // HELO stands for it, RFC 7208 2.4).
  auth::SpfVerdict helo_spf, mfrom_spf;
  bool helo_checked = !ctx.helo.empty() && ctx.helo.front() != '[';
  if (helo_checked) {
    helo_spf = auth::spf_check(auth::SpfRequest{ctx.peer_ip, "", ctx.helo, id}, dns);
  }
  const bool null_sender = ctx.sender.empty();
  if (!null_sender) {
    mfrom_spf = auth::spf_check(auth::SpfRequest{ctx.peer_ip, ctx.sender, ctx.helo, id}, dns);
    std::string r = "spf=" + std::string(auth::spf_result_name(mfrom_spf.result));
    if (mfrom_spf.result != auth::SpfResult::pass && !mfrom_spf.problem.empty()) r += comment(mfrom_spf.problem);
    r += " smtp.mailfrom=" + pvalue(ctx.sender);
    results.push_back(std::move(r));
  }
  if (helo_checked) {
    std::string r = "spf=" + std::string(auth::spf_result_name(helo_spf.result));
    if (helo_spf.result != auth::SpfResult::pass && !helo_spf.problem.empty()) r += comment(helo_spf.problem);
    r += " smtp.helo=" + pvalue(ctx.helo);
    results.push_back(std::move(r));
  }
  const auth::SpfVerdict& spf = null_sender ? helo_spf : mfrom_spf;

  // DKIM: every signature.
  auto dkim = auth::dkim_verify(msg, dns);
  if (dkim.empty()) results.push_back("dkim=none");
  auth::DmarcAuth dmarc_auth;
  for (const auto& d : dkim) {
    std::string r = "dkim=" + std::string(auth::dkim_status_name(d.status));
    if (d.status != auth::DkimStatus::pass && !d.reason.empty()) r += comment(d.reason);
    if (!d.domain.empty()) r += " header.d=" + pvalue(d.domain);
    if (!d.identity.empty()) r += " header.i=" + pvalue(d.identity);
    if (!d.selector.empty()) r += " header.s=" + pvalue(d.selector);
    if (!d.algorithm.empty()) r += " header.a=" + pvalue(d.algorithm);
    results.push_back(std::move(r));
    if (d.status == auth::DkimStatus::pass && !d.testing) dmarc_auth.dkim_pass_domains.push_back(auth::dns_name_key(d.domain));
  }

  // ARC: the chain as it arrived.
  auto arc = auth::arc_validate(msg, dns);
  {
    std::string r = "arc=" + std::string(auth::arc_status_name(arc.status));
    if (arc.status == auth::ArcStatus::fail && !arc.reason.empty()) r += comment(arc.reason);
    if (arc.status != auth::ArcStatus::none) r += " smtp.remote-ip=" + pvalue(ctx.peer_ip);
    results.push_back(std::move(r));
  }

  // DMARC.
  dmarc_auth.spf_domain = null_sender ? auth::dns_name_key(ctx.helo) : domain_of(ctx.sender);
  dmarc_auth.spf_pass = spf.result == auth::SpfResult::pass;
  auto from_domain = auth::dmarc_from_domain(msg);
  auth::DmarcResult dmarc;
  if (from_domain) {
    auth::DmarcOptions dopt;
    dopt.sample = options_.sample ? options_.sample() : random_sample();
    dmarc = auth::dmarc_check(*from_domain, dmarc_auth, dns, dopt);
  }

  // What we do about a failure: the domain's disposition, as far as our policy goes.
  using Policy = AuthFilterOptions::Policy;
  std::string disposition = "none";
  if (dmarc.status == auth::DmarcStatus::fail && dmarc.disposition != auth::DmarcPolicy::none &&
      options_.policy != Policy::tag) {
    if (dmarc.disposition == auth::DmarcPolicy::reject && options_.policy == Policy::reject) {
      disposition = "reject";
      out.action = FilterResult::Action::reject;
      out.reply = Reply{550, "5.7.1", "Message rejected: DMARC policy of " + dmarc.from_domain + " (reject)"};
    } else {
      disposition = "quarantine";
      for (const auto& rcpt : *ctx.recipients)
        for (auto account : rcpt.accounts) out.placement[account] = Placement{"Junk", 0, {"$Junk"}, false};
    }
  }

  if (!from_domain) {
    results.push_back("dmarc=permerror" + comment(from_domain.status().message()));
  } else {
    std::string r = "dmarc=" + std::string(auth::dmarc_status_name(dmarc.status));
    if (dmarc.record) {
      r += " (p=" + std::string(auth::dmarc_policy_name(dmarc.policy)) + " dis=" + disposition + ")";
    } else if (!dmarc.reason.empty() && dmarc.status != auth::DmarcStatus::none) {
      r += comment(dmarc.reason);
    }
    r += " header.from=" + pvalue(*from_domain);
    results.push_back(std::move(r));
  }
  out.prepend = auth::auth_results_field(id, results);
  if (out.action != FilterResult::Action::reject) out.prepend.insert(0, arc_seal_forwarded(ctx, message, out));

  // One record per message for the policy domain's aggregate report.
  if (options_.record_reports && store_ && dmarc.record && from_domain) {
    auth::DmarcReportRow row;
    row.time = options_.now ? options_.now() : static_cast<int64_t>(std::time(nullptr));
    row.source_ip = ctx.peer_ip;
    row.header_from = *from_domain;
    row.envelope_from = null_sender ? std::string() : domain_of(ctx.sender);
    row.policy_domain = dmarc.policy_domain;
    const auth::DmarcRecord& rec = *dmarc.record;
    row.p = auth::dmarc_policy_name(rec.p);
    row.sp = auth::dmarc_policy_name(rec.sp.value_or(rec.p));
    row.adkim_strict = rec.strict_dkim;
    row.aspf_strict = rec.strict_spf;
    row.pct = static_cast<uint32_t>(rec.pct);
    row.rua = rec.rua;
    row.disposition = disposition;
    row.dkim_aligned = dmarc.dkim_aligned;
    row.spf_aligned = dmarc.spf_aligned;
    for (const auto& d : dkim)
      row.dkim.push_back({d.domain, d.selector, std::string(auth::dkim_status_name(d.status))});
    row.spf_domain = dmarc_auth.spf_domain;
    row.spf_scope = null_sender ? "helo" : "mfrom";
    row.spf_result = auth::spf_result_name(spf.result);
    store::DataPutReq put;
    put.key = store::DataKey{0, std::string(auth::kDmarcNamespace), auth::dmarc_row_key(row)};
    put.value = encode(row);
    if (auto st = store_->data_put(put); !st) log::warn("auth: DMARC report record not stored: {}", st.status().message());
  }
  return out;
}

Result<InboundAuth> make_inbound_auth(const Config& config, const std::string& hostname, store::Store& store) {
  InboundAuth out;
  const AuthConfig& ac = config.auth;
  if (!ac.verify_inbound) return out;
  auto resolver = ac.resolver.empty() ? auth::make_system_resolver() : auth::make_forwarding_resolver(ac.resolver);
  if (!resolver) return resolver.status();
  out.resolver = std::move(*resolver);
  AuthFilterOptions o;
  o.authserv_id = ac.authserv_id.empty() ? hostname : ac.authserv_id;
  o.policy = ac.dmarc_policy == "tag"          ? AuthFilterOptions::Policy::tag
             : ac.dmarc_policy == "quarantine" ? AuthFilterOptions::Policy::quarantine
                                               : AuthFilterOptions::Policy::reject;
  o.dns_budget = std::chrono::milliseconds(ac.dns_budget_ms);
  o.record_reports = ac.dmarc_reports;
  o.check_loopback = ac.check_loopback;
  out.filter = std::make_unique<AuthFilter>(*out.resolver, &store, std::move(o));
  return out;
}

}  // namespace mail::smtp
