// MAIL, RCPT, DATA and BDAT: building the envelope, checked against the store
// (recipient resolution, quota, sender ownership) as each command arrives.
#include <algorithm>

#include "base/address.h"
#include "base/ascii.h"
#include "base/log.h"
#include "smtp/session.h"

namespace mail::smtp {

namespace {

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

}  // namespace

// "postmaster" without a domain: postmaster@ our host name when that is a local
// domain, else of the first local domain that has one.
std::string Session::postmaster_address() {
  std::string candidate = "postmaster@" + env_.hostname;
  auto r = env_.store->resolve({candidate});
  if (r && r->kind == store::ResolveKind::local) return candidate;
  if (auto domains = env_.store->domain_list({})) {
    for (const auto& d : domains->domains) {
      std::string address = "postmaster@" + d.name;
      auto found = env_.store->resolve({address});
      if (found && found->kind == store::ResolveKind::local) return address;
    }
  }
  return candidate;
}

void Session::cmd_mail(const Command& c, std::string& out) {
  if (helo_.empty()) {
    reply(out, 503, "5.5.1", env_.mode == Mode::lmtp ? "Send LHLO first" : "Send HELO/EHLO first");
    return;
  }
  if (have_mail_) {
    reply(out, 503, "5.5.1", "Nested MAIL command");
    return;
  }
  if (env_.mode == Mode::submission && auth_user_.empty()) {
    reply(out, 530, "5.7.0", "Authentication required");
    return;
  }
  const MailParams& p = c.mail;
  const SmtpConfig& cfg = *env_.config;
  if (!esmtp_ && (p.size || p.body || p.smtputf8 || p.ret || !p.envid.empty() || p.requiretls || p.auth ||
                  p.hold_for || p.hold_until || p.by)) {
    reply(out, 555, "5.5.4", "MAIL parameters need EHLO");
    return;
  }
  if (p.size && *p.size > cfg.max_message_size) {
    reply(out, 552, "5.3.4", "Message size exceeds fixed limit");
    return;
  }
  if (p.requiretls && !tls_) {
    reply(out, 530, "5.7.10", "REQUIRETLS needs a TLS connection");
    return;
  }
  bool release = p.hold_for || p.hold_until || p.by;
  if (release && (auth_user_.empty() || env_.mode == Mode::lmtp)) {
    reply(out, 555, "5.5.4", "HOLDFOR, HOLDUNTIL and BY are for authenticated submission only");
    return;
  }
  int64_t t = now();
  if (p.hold_for && p.hold_until) {
    reply(out, 501, "5.5.4", "HOLDFOR and HOLDUNTIL are exclusive");
    return;
  }
  if ((p.hold_for && *p.hold_for > kMaxHoldSeconds) || (p.hold_until && *p.hold_until > t + kMaxHoldSeconds)) {
    reply(out, 501, "5.5.4", "Release time too far in the future");
    return;
  }
  if (p.hold_until && *p.hold_until < t) {
    reply(out, 501, "5.5.4", "Release time is in the past");
    return;
  }

  std::string sender;
  if (!c.path.empty()) {
    if (!p.smtputf8 && !is_ascii(c.path)) {
      reply(out, 553, "5.6.7", "Non-ASCII sender address needs SMTPUTF8");
      return;
    }
    auto addr = parse_address(c.path);
    if (!addr) {
      reply(out, 501, "5.1.7", "Bad sender address syntax: " + addr.status().message());
      return;
    }
    sender = addr->str();
  }
  if (!auth_user_.empty()) {
    // Submission: the envelope sender must be the user's own address or an
    // alias that delivers to the user.
    bool owned = false;
    if (!sender.empty()) {
      if (sender == auth_user_) {
        owned = true;
      } else {
        auto r = env_.store->resolve({sender});
        if (!r) {
          reply(out, 451, "4.3.0", "Temporary lookup failure");
          return;
        }
        owned = r->kind == store::ResolveKind::local &&
                std::find(r->accounts.begin(), r->accounts.end(), auth_account_) != r->accounts.end();
      }
    }
    if (!owned) {
      reply(out, 553, "5.7.1", "Sender address <" + sender + "> not owned by user " + auth_user_);
      return;
    }
  }
  have_mail_ = true;
  sender_ = std::move(sender);
  mail_ = p;
  mail_time_ = t;
  reply(out, 250, "2.1.0", "Ok");
}

void Session::cmd_rcpt(const Command& c, std::string& out) {
  if (!have_mail_) {
    reply(out, 503, "5.5.1", "Need MAIL command");
    return;
  }
  if (bdat_active_) {
    reply(out, 503, "5.5.1", "RCPT during BDAT");
    return;
  }
  const SmtpConfig& cfg = *env_.config;
  if (cfg.max_recipients && rcpts_.size() >= cfg.max_recipients) {
    reply(out, 452, "4.5.3", "Too many recipients");
    return;
  }
  if ((c.rcpt.notify || !c.rcpt.orcpt.empty()) && !esmtp_) {
    reply(out, 555, "5.5.4", "RCPT parameters need EHLO");
    return;
  }
  std::string path = c.path;
  if (ascii_iequals(path, "postmaster")) path = postmaster_address();  // RFC 5321 4.5.1: no domain needed
  if (!mail_.smtputf8 && !is_ascii(path)) {
    reply(out, 553, "5.6.7", "Non-ASCII recipient address needs SMTPUTF8");
    return;
  }
  auto addr = parse_address(path);
  if (!addr) {
    reply(out, 501, "5.1.3", "Bad recipient address syntax: " + addr.status().message());
    return;
  }
  std::string address = addr->str();
  auto r = env_.store->resolve({address});
  if (!r) {
    log::warn("smtp: resolve {}: {}", address, r.status().to_string());
    reply(out, 451, "4.3.0", "<" + address + ">: Temporary lookup failure");
    return;
  }
  Recipient rcpt;
  rcpt.address = address;
  rcpt.params = c.rcpt;
  rcpt.detail = r->detail;
  switch (r->kind) {
    case store::ResolveKind::unknown:
      reply(out, 550, "5.1.1", "<" + address + ">: Recipient address rejected: User unknown");
      return;
    case store::ResolveKind::remote_domain:
      if (auth_user_.empty() || env_.mode == Mode::lmtp) {
        reply(out, 550, "5.7.1", "<" + address + ">: Relay access denied");
        return;
      }
      rcpt.remote.push_back(address);
      break;
    case store::ResolveKind::local:
      rcpt.accounts = r->accounts;
      rcpt.remote = r->forwards;
      if (env_.mode == Mode::lmtp && rcpt.accounts.empty()) {
        reply(out, 550, "5.1.1", "<" + address + ">: not a local mailbox");
        return;
      }
      break;
  }

  // Quota, as far as it can be known now: a recipient that is itself an
  // account (possibly with +detail). Alias members are checked at delivery.
  // Accounts seen without any quota are not looked up again for a while: one
  // store round trip less per message on busy sessions; deliver still
  // enforces a quota set in the meantime.
  auto unlimited = unlimited_until_.find(rcpt.accounts.empty() ? 0 : rcpt.accounts[0]);
  bool known_unlimited = unlimited != unlimited_until_.end() && unlimited->second > now();
  if (rcpt.accounts.size() == 1 && rcpt.remote.empty() && !known_unlimited) {
    std::string account_address = address;
    if (!rcpt.detail.empty()) {
      LocalPart lp = split_detail(addr->local);
      account_address = Address{lp.user, addr->domain}.str();
    }
    auto info = env_.store->account_get({account_address});
    if (info && info->id == rcpt.accounts[0]) {
      const store::Quota& q = info->quota;
      rcpt.quota_bytes = q.max_bytes;
      if (!q.max_bytes && !q.max_messages) {
        if (unlimited_until_.size() > 1000) unlimited_until_.clear();
        unlimited_until_[info->id] = now() + 30;
      }
      uint64_t size = mail_.size.value_or(0);
      if (q.max_bytes && size > q.max_bytes) {
        reply(out, 552, "5.2.2", "<" + address + ">: Message is larger than the mailbox quota");
        return;
      }
      if ((q.max_bytes && info->used_bytes + std::max<uint64_t>(size, 1) > q.max_bytes) ||
          (q.max_messages && info->used_messages + 1 > q.max_messages)) {
        reply(out, 452, "4.2.2", "<" + address + ">: Mailbox full");
        return;
      }
    }
  }
  rcpts_.push_back(std::move(rcpt));
  reply(out, 250, "2.1.5", "Ok");
}

void Session::cmd_data(const Command& c, std::string& out) {
  if (!have_mail_) {
    reply(out, 503, "5.5.1", "Need MAIL command");
    return;
  }
  if (rcpts_.empty()) {
    reply(out, 554, "5.5.1", "No valid recipients");
    return;
  }
  if (mail_.body == BodyType::binary_mime) {
    reply(out, 503, "5.5.1", "BODY=BINARYMIME needs BDAT");
    return;
  }
  reply(out, 354, "", "End data with <CR><LF>.<CR><LF>");
  phase_ = Phase::data;
  at_line_start_ = true;
  content_.clear();
  content_size_ = 0;
}

void Session::cmd_bdat(const Command& c, std::string& out) {
  // The chunk follows the command whatever the answer, so it is always read.
  phase_ = Phase::bdat;
  bdat_remaining_ = c.chunk_size;
  bdat_last_ = c.last;
  if (!bdat_active_ && !bdat_failed_) {
    if (!have_mail_) {
      bdat_failed_ = true;
      bdat_error_ = Reply{503, "5.5.1", "Need MAIL command"};
    } else if (rcpts_.empty()) {
      bdat_failed_ = true;
      bdat_error_ = Reply{554, "5.5.1", "No valid recipients"};
    }
    bdat_active_ = true;
    content_.clear();
    content_size_ = 0;
  }
  if (!bdat_failed_ && content_size_ + c.chunk_size > env_.config->max_message_size) {
    bdat_failed_ = true;
    bdat_error_ = Reply{552, "5.3.4", "Message size exceeds fixed limit"};
  }
  if (!bdat_failed_) content_.reserve(content_size_ + std::min<uint64_t>(c.chunk_size, 1u << 20));
}

}  // namespace mail::smtp
