// AUTH (RFC 4954): PLAIN, LOGIN and SCRAM-SHA-256, only over TLS (or on
// loopback when configured), with failure delays per client and account.
#include <openssl/sha.h>

#include <mutex>
#include <semaphore>
#include <unordered_set>

#include "base/address.h"
#include "base/base64.h"
#include "base/log.h"
#include "smtp/session.h"

namespace mail::smtp {

namespace {

// Verified logins, so that a client logging in for every message does not pay
// the argon2id cost (and its 64 MiB) each time. Keyed by a hash of the user, the
// password and the stored hash: a changed password never matches an old entry.
class VerifiedLogins {
 public:
  bool check(const std::string& key) {
    std::lock_guard lock(mu_);
    return keys_.count(key) > 0;
  }
  void remember(const std::string& key) {
    std::lock_guard lock(mu_);
    if (keys_.size() >= 10000) keys_.clear();  // bounded; refilled by the next logins
    keys_.insert(key);
  }
  static std::string key(std::string_view user, std::string_view password, std::string_view hash) {
    std::string input;
    for (std::string_view part : {user, password, hash}) {
      input += std::to_string(part.size());
      input += ':';
      input += part;
    }
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
    return std::string(reinterpret_cast<char*>(digest), sizeof digest);
  }

 private:
  std::mutex mu_;
  std::unordered_set<std::string> keys_;
};

VerifiedLogins& verified_logins() {
  static VerifiedLogins logins;
  return logins;
}

// At most this many argon2id verifications at once (each takes 64 MiB).
std::counting_semaphore<64>& kdf_slots() {
  static std::counting_semaphore<64> slots(4);
  return slots;
}

bool verify_cached(const std::string& user, const std::string& password, const std::string& hash) {
  if (hash.empty()) return false;
  std::string key = VerifiedLogins::key(user, password, hash);
  if (verified_logins().check(key)) return true;
  kdf_slots().acquire();
  bool good = verify_password(hash, password);
  kdf_slots().release();
  if (good) verified_logins().remember(key);
  return good;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

}  // namespace

bool Session::auth_allowed() const {
  if (env_.mode == Mode::lmtp) return false;
  return tls_ || (env_.loopback && env_.config->allow_plain_auth_on_loopback);
}

void Session::cmd_auth(const Command& c, std::string& out) {
  if (env_.mode == Mode::lmtp) {
    reply(out, 502, "5.5.1", "AUTH not available");
    return;
  }
  if (!esmtp_) {
    reply(out, 503, "5.5.1", "Send EHLO first");
    return;
  }
  if (!auth_user_.empty()) {
    reply(out, 503, "5.5.1", "Already authenticated");
    return;
  }
  if (have_mail_) {
    reply(out, 503, "5.5.1", "AUTH not permitted during a mail transaction");
    return;
  }
  if (!auth_allowed()) {
    reply(out, 538, "5.7.11", "Encryption required for requested authentication mechanism");
    return;
  }
  std::string_view arg = c.arg;
  size_t sp = arg.find(' ');
  std::string mech = upper(arg.substr(0, sp));
  std::string_view initial = sp == std::string_view::npos ? std::string_view() : arg.substr(sp + 1);
  bool has_initial = sp != std::string_view::npos;
  auth_login_user_.clear();
  scram_.reset();
  scram_final_sent_ = false;
  if (mech == "PLAIN" || mech == "LOGIN") {
    auth_mech_ = mech;
  } else if (mech == "SCRAM-SHA-256") {
    auth_mech_ = mech;
    store::Store* store = env_.store;
    scram_ = std::make_unique<ScramServer>([store](std::string_view user) -> std::optional<ScramKeys> {
      auto addr = parse_address(user);
      if (!addr) return std::nullopt;
      auto r = store->account_auth({addr->str()});
      if (!r || r->account.disabled || r->credentials.scram.iterations == 0) return std::nullopt;
      const auto& k = r->credentials.scram;
      return ScramKeys{k.salt, k.iterations, k.stored_key, k.server_key};
    });
  } else {
    reply(out, 504, "5.5.4", "Unrecognized authentication type");
    return;
  }
  phase_ = Phase::auth;
  if (has_initial) {
    auth_step(initial == "=" ? std::string_view() : initial, out);
  } else if (mech == "LOGIN") {
    reply(out, 334, "", base64_encode("Username:"));
  } else {
    reply(out, 334, "", "");
  }
}

void Session::auth_line(std::string_view line, std::string& out) {
  if (line == "*") {
    phase_ = Phase::command;
    scram_.reset();
    reply(out, 501, "5.0.0", "Authentication cancelled");
    count_junk(out);
    return;
  }
  auth_step(line, out);
}

void Session::auth_step(std::string_view response, std::string& out) {
  auto decoded = base64_decode(response);
  if (!decoded) {
    phase_ = Phase::command;
    scram_.reset();
    reply(out, 501, "5.5.2", "Invalid base64 data");
    count_junk(out);
    return;
  }
  const std::string& data = *decoded;
  auto check_password = [&](const std::string& authcid, const std::string& password) {
    auto addr = parse_address(authcid);
    if (!addr) return auth_done(false, authcid, out);
    auto r = env_.store->account_auth({addr->str()});
    if (!r && r.code() != Code::not_found) {
      phase_ = Phase::command;
      log::warn("smtp: account_auth {}: {}", addr->str(), r.status().to_string());
      reply(out, 454, "4.7.0", "Temporary authentication failure");
      return;
    }
    bool good = r && !r->account.disabled && verify_cached(r->account.address, password, r->credentials.password_hash);
    if (good) auth_account_ = r->account.id;
    auth_done(good, good ? r->account.address : addr->str(), out);
  };

  if (auth_mech_ == "PLAIN") {
    // authzid NUL authcid NUL password
    size_t a = data.find('\0');
    size_t b = a == std::string::npos ? a : data.find('\0', a + 1);
    if (b == std::string::npos) return auth_done(false, "", out);
    std::string authzid = data.substr(0, a), authcid = data.substr(a + 1, b - a - 1), password = data.substr(b + 1);
    if (!authzid.empty() && authzid != authcid) return auth_done(false, authcid, out);
    return check_password(authcid, password);
  }
  if (auth_mech_ == "LOGIN") {
    if (auth_login_user_.empty()) {
      if (data.empty()) return auth_done(false, "", out);
      auth_login_user_ = data;
      reply(out, 334, "", base64_encode("Password:"));
      return;
    }
    return check_password(auth_login_user_, data);
  }
  // SCRAM-SHA-256
  if (!scram_) return auth_done(false, "", out);
  if (scram_final_sent_) {
    // The client's empty answer to the server-final message.
    std::string user = scram_->username();
    bool good = scram_->done() && data.empty();
    if (good) {
      auto addr = parse_address(user);
      auto r = addr ? env_.store->account_auth({addr->str()}) : Result<store::AccountAuthResp>(addr.status());
      good = r && !r->account.disabled;
      if (good) {
        auth_account_ = r->account.id;
        user = r->account.address;
      }
    }
    return auth_done(good, user, out);
  }
  auto r = scram_->step(data);
  if (!r) return auth_done(false, scram_->username(), out);
  if (scram_->done()) scram_final_sent_ = true;
  reply(out, 334, "", base64_encode(*r));
}

void Session::auth_done(bool ok, std::string user, std::string& out) {
  phase_ = Phase::command;
  scram_.reset();
  scram_final_sent_ = false;
  auth_login_user_.clear();
  if (ok) {
    auth_user_ = user;
    if (env_.throttle) env_.throttle->success(env_.peer_ip, user);
    log::info("smtp: {} authenticated as {} ({})", env_.peer_ip, user, auth_mech_);
    reply(out, 235, "2.7.0", "Authentication successful");
    return;
  }
  auth_account_ = 0;
  ++auth_failures_;
  log::warn("smtp: {} failed {} authentication for '{}'", env_.peer_ip, auth_mech_, user);
  if (env_.throttle) env_.delay(env_.throttle->failure(env_.peer_ip, user));
  uint32_t limit = env_.config->max_auth_failures;
  if (limit && auth_failures_ >= limit) {
    reply(out, 421, "4.7.0", env_.hostname + " Error: too many failed authentications");
    closed_ = true;
    return;
  }
  reply(out, 535, "5.7.8", "Authentication credentials invalid");
}

}  // namespace mail::smtp
