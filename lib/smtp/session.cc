// The connection state machine: input framing (command lines, DATA, BDAT
// chunks), greeting/EHLO, limits, and the small commands. MAIL/RCPT are in
// envelope.cc, AUTH in auth.cc, content and delivery in delivery.cc.
#include "smtp/session.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <thread>

#include "base/address.h"
#include "base/log.h"

namespace mail::smtp {

std::string_view mode_name(Mode mode) {
  switch (mode) {
    case Mode::mx: return "mx";
    case Mode::submission: return "submission";
    case Mode::lmtp: return "lmtp";
  }
  return "?";
}

// ---- AuthThrottle -------------------------------------------------------------------

namespace {
constexpr int64_t kThrottleDecaySeconds = 300;
int64_t steady_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

unsigned AuthThrottle::get(std::map<std::string, Entry>& map, const std::string& key, int64_t now) {
  auto it = map.find(key);
  if (it == map.end()) return 0;
  if (now - it->second.last > kThrottleDecaySeconds) {
    map.erase(it);
    return 0;
  }
  return it->second.count;
}

unsigned AuthThrottle::failure(const std::string& ip, const std::string& account) {
  std::lock_guard lock(mu_);
  int64_t now = steady_seconds();
  unsigned n = get(by_ip_, ip, now) + 1;
  by_ip_[ip] = {n, now};
  unsigned m = 0;
  if (!account.empty()) {
    m = get(by_account_, account, now) + 1;
    by_account_[account] = {m, now};
  }
  if (by_ip_.size() > 100000) by_ip_.clear();  // bounded memory under a spray of addresses
  if (by_account_.size() > 100000) by_account_.clear();
  unsigned worst = std::max(n, m);
  // 1 s for the first failure, doubling, at most 16 s.
  return 1000u << std::min(worst - 1, 4u);
}

void AuthThrottle::success(const std::string& ip, const std::string& account) {
  std::lock_guard lock(mu_);
  by_ip_.erase(ip);
  by_account_.erase(account);
}

unsigned AuthThrottle::failures(const std::string& ip, const std::string& account) {
  std::lock_guard lock(mu_);
  int64_t now = steady_seconds();
  return std::max(get(by_ip_, ip, now), account.empty() ? 0u : get(by_account_, account, now));
}

// ---- Session ------------------------------------------------------------------------------

Session::Session(SessionEnv env) : env_(std::move(env)) {
  tls_ = env_.tls;
  tls_info_ = env_.tls_info;
  if (!env_.delay) env_.delay = [](unsigned ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); };
  if (env_.peer_name.empty()) env_.peer_name = env_.peer_ip.empty() ? "localhost" : env_.peer_ip;
}

Session::~Session() = default;

int64_t Session::now() const { return env_.now ? env_.now() : static_cast<int64_t>(::time(nullptr)); }

std::string Session::greeting() const {
  std::string_view kind = env_.mode == Mode::lmtp ? "LMTP" : "ESMTP";
  return Reply{220, "", env_.hostname + " " + std::string(kind) + " ready"}.render();
}

std::string Session::early_talker_reply() const {
  return Reply{554, "5.5.1", "Protocol error: you talked before the greeting"}.render();
}

std::string Session::timeout_reply() const {
  return Reply{421, "4.4.2", env_.hostname + " Error: timeout exceeded"}.render();
}

std::string Session::shutdown_reply() const {
  return Reply{421, "4.3.2", env_.hostname + " Service shutting down, try again later"}.render();
}

bool Session::in_data() const { return phase_ == Phase::data || phase_ == Phase::bdat; }

void Session::reply(std::string& out, int code, std::string_view enhanced, std::string_view text) {
  out += Reply{code, std::string(enhanced), std::string(text)}.render();
  last_code_ = code;
}

void Session::tls_started(std::string tls_info) {
  starttls_pending_ = false;
  tls_ = true;
  tls_info_ = std::move(tls_info);
  // RFC 3207: forget everything learnt before the handshake.
  helo_.clear();
  esmtp_ = false;
  reset_transaction();
  in_.clear();
  in_pos_ = 0;
}

void Session::reset_transaction() {
  have_mail_ = false;
  sender_.clear();
  mail_ = MailParams{};
  rcpts_.clear();
  content_.clear();
  content_.shrink_to_fit();
  content_size_ = 0;
  bad_bare_lf_ = bad_bare_cr_ = bad_nul_ = false;
  at_line_start_ = true;
  bdat_active_ = false;
  bdat_failed_ = false;
  bdat_remaining_ = 0;
  bdat_last_ = false;
  pending_cr_ = false;
}

void Session::feed(std::string_view bytes, std::string& out) {
  if (closed_ || starttls_pending_) return;
  in_.append(bytes);
  process(out);
  if (starttls_pending_) {
    in_.clear();  // RFC 3207: nothing sent in plain text after STARTTLS may be used
    in_pos_ = 0;
  } else if (in_pos_ > 0) {
    in_.erase(0, in_pos_);
    in_pos_ = 0;
  }
}

void Session::process(std::string& out) {
  const size_t max_line = env_.config->max_line_length ? env_.config->max_line_length : 4096;
  while (!closed_ && !starttls_pending_) {
    if (phase_ == Phase::data) {
      if (!data_bytes(out)) break;
      continue;
    }
    if (phase_ == Phase::bdat) {
      if (!bdat_bytes(out)) break;
      continue;
    }
    size_t nl = in_.find('\n', in_pos_);
    if (nl == std::string::npos) {
      if (in_.size() - in_pos_ > max_line) {
        if (!skipping_long_line_) {
          reply(out, 500, "5.5.2", "Line too long");
          count_junk(out);
        }
        skipping_long_line_ = true;
        in_pos_ = in_.size();
      }
      break;
    }
    std::string_view line(in_.data() + in_pos_, nl - in_pos_);
    in_pos_ = nl + 1;
    if (skipping_long_line_) {  // the tail of a line already refused
      skipping_long_line_ = false;
      continue;
    }
    if (line.size() > max_line) {
      reply(out, 500, "5.5.2", "Line too long");
      count_junk(out);
      continue;
    }
    if (line.empty() || line.back() != '\r') {
      reply(out, 500, "5.5.2", "Bare LF received: lines must end with CRLF");
      count_junk(out);
      continue;
    }
    line.remove_suffix(1);
    if (phase_ == Phase::auth) auth_line(line, out);
    else command_line(line, out);
  }
}

bool Session::count_junk(std::string& out) {
  // smtp.max_unauth_commands: what a client may send before it authenticates or sends mail.
  // LMTP clients are the local MTA, trusted not to waste our time.
  if (!auth_user_.empty() || messages_accepted_ > 0 || closed_ || env_.mode == Mode::lmtp) return false;
  uint32_t limit = env_.config->max_unauth_commands;
  if (limit == 0 || ++junk_ <= limit) return false;
  reply(out, 421, "4.7.0", env_.hostname + " Error: too many errors or junk commands");
  closed_ = true;
  return true;
}

void Session::command_line(std::string_view line, std::string& out) {
  auto parsed = parse_command(line);
  if (!parsed.command) {
    out += parsed.error.render();
    last_code_ = parsed.error.code;
    // Pipelined BDAT content after a refused BDAT command would be read as
    // commands; those errors count as junk like any other.
    count_junk(out);
    return;
  }
  const Command& c = *parsed.command;
  if (bdat_active_ && c.verb != Verb::bdat && c.verb != Verb::rset && c.verb != Verb::quit &&
      c.verb != Verb::noop) {
    reply(out, 503, "5.5.1", "Error: BDAT sequence in progress (send BDAT or RSET)");
    count_junk(out);
    return;
  }
  last_code_ = 0;
  bool junk = false;
  switch (c.verb) {
    case Verb::helo:
    case Verb::ehlo:
    case Verb::lhlo:
      cmd_helo(c, out);
      break;
    case Verb::mail:
      cmd_mail(c, out);
      break;
    case Verb::rcpt:
      cmd_rcpt(c, out);
      break;
    case Verb::data:
      cmd_data(c, out);
      break;
    case Verb::bdat:
      cmd_bdat(c, out);
      break;
    case Verb::rset:
      reset_transaction();
      reply(out, 250, "2.0.0", "Ok");
      break;
    case Verb::noop:
      junk = true;
      reply(out, 250, "2.0.0", "Ok");
      break;
    case Verb::quit:
      reply(out, 221, "2.0.0", env_.hostname + " closing connection");
      closed_ = true;
      return;
    case Verb::vrfy:
      junk = true;
      cmd_vrfy(c, out);
      break;
    case Verb::expn:
      junk = true;
      reply(out, 502, "5.5.1", "EXPN is not available");
      break;
    case Verb::help:
      junk = true;
      reply(out, 214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT AUTH STARTTLS (RFC 5321)");
      break;
    case Verb::starttls:
      cmd_starttls(c, out);
      break;
    case Verb::auth:
      cmd_auth(c, out);
      break;
    case Verb::unknown:
      junk = true;
      reply(out, 500, "5.5.1", "Command unrecognized");
      break;
  }
  if (junk || last_code_ >= 400) count_junk(out);
}

std::string Session::ehlo_reply() const {
  const SmtpConfig& cfg = *env_.config;
  std::string text = env_.hostname;
  text += "\nPIPELINING";
  text += "\nSIZE ";
  text += std::to_string(cfg.max_message_size);
  text += "\n8BITMIME\nBINARYMIME\nCHUNKING\nSMTPUTF8\nENHANCEDSTATUSCODES\nDSN";
  if (env_.mode != Mode::lmtp) {
    if (env_.starttls_available && !tls_) text += "\nSTARTTLS";
    if (tls_) text += "\nREQUIRETLS";
    if (auth_allowed() && auth_user_.empty()) text += "\nAUTH PLAIN LOGIN SCRAM-SHA-256";
    if (env_.mode == Mode::submission || !auth_user_.empty()) {
      // RFC 4865: the longest hold, and the latest release date we accept.
      text += "\nFUTURERELEASE ";
      text += std::to_string(kMaxHoldSeconds);
      text += " ";
      int64_t until = now() + kMaxHoldSeconds;
      std::time_t t = static_cast<std::time_t>(until);
      std::tm tm{};
      gmtime_r(&t, &tm);
      char buf[32];
      std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
      text += buf;
      text += "\nDELIVERBY";
    }
  }
  if (cfg.vrfy) text += "\nVRFY";
  return Reply{250, "", text}.render();
}

void Session::cmd_helo(const Command& c, std::string& out) {
  bool lmtp = env_.mode == Mode::lmtp;
  if (lmtp && c.verb != Verb::lhlo) {
    reply(out, 500, "5.5.1", "This is an LMTP server: use LHLO");
    return;
  }
  if (!lmtp && c.verb == Verb::lhlo) {
    reply(out, 500, "5.5.1", "Command unrecognized (LHLO is for LMTP)");
    return;
  }
  reset_transaction();
  helo_ = c.arg;
  esmtp_ = c.verb != Verb::helo;
  if (esmtp_) {
    out += ehlo_reply();
    last_code_ = 250;
  } else {
    reply(out, 250, "", env_.hostname);
  }
}

void Session::cmd_vrfy(const Command& c, std::string& out) {
  if (!env_.config->vrfy) {
    reply(out, 252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery");
    return;
  }
  std::string_view arg = c.arg;
  if (arg.size() >= 2 && arg.front() == '<' && arg.back() == '>') arg = arg.substr(1, arg.size() - 2);
  auto addr = parse_address(arg);
  if (!addr) {
    reply(out, 501, "5.1.3", "Bad address syntax");
    return;
  }
  const std::string address = addr->str();
  const std::string quoted = "<" + address + ">";
  auto r = env_.store->resolve({address});
  if (!r) {
    reply(out, 451, "4.3.0", "Temporary lookup failure");
  } else if (r->kind == store::ResolveKind::local) {
    reply(out, 250, "2.1.5", quoted);
  } else if (r->kind == store::ResolveKind::unknown) {
    reply(out, 550, "5.1.1", quoted + ": Recipient address rejected: User unknown");
  } else {
    reply(out, 551, "5.1.6", quoted + ": not a local address");
  }
}

void Session::cmd_starttls(const Command& c, std::string& out) {
  if (env_.mode == Mode::lmtp || !env_.starttls_available) {
    reply(out, 502, "5.5.1", "STARTTLS not available");
    return;
  }
  if (tls_) {
    reply(out, 503, "5.5.1", "TLS already active");
    return;
  }
  if (!esmtp_) {
    reply(out, 503, "5.5.1", "Send EHLO first");
    return;
  }
  reply(out, 220, "2.0.0", "Ready to start TLS");
  starttls_pending_ = true;
}

}  // namespace mail::smtp
