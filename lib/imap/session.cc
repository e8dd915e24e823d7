// Session core: dispatch by state, the sequence-number map and its updates,
// and the any-state / authentication commands.
#include "imap/session.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <ctime>
#include <thread>

#include "base/base64.h"
#include "base/log.h"
#include "base/password.h"
#include "imap/util.h"
#include "mime/summary.h"

namespace mail::imap {

std::string AuthCache::key(const std::string& user, const std::string& password, const std::string& hash) {
  // Keyed with a per-process secret: the cache in memory does not give away a
  // fast way to test password guesses against the slow argon2id hash.
  static const auto secret = [] {
    std::array<unsigned char, crypto_generichash_KEYBYTES> k{};
    randombytes_buf(k.data(), k.size());
    return k;
  }();
  std::string in = user + '\0' + password + '\0' + hash;
  unsigned char md[32];
  crypto_generichash(md, sizeof md, reinterpret_cast<const unsigned char*>(in.data()), in.size(), secret.data(),
                     secret.size());
  sodium_memzero(in.data(), in.size());
  return std::string(reinterpret_cast<char*>(md), sizeof md);
}

bool AuthCache::check(const std::string& key) {
  std::lock_guard lock(mu_);
  return keys_.count(key) > 0;
}
void AuthCache::remember(const std::string& key) {
  std::lock_guard lock(mu_);
  if (keys_.size() > 10000) keys_.clear();
  keys_.insert(key);
}

unsigned AuthThrottle::failure(const std::string& ip) {
  std::lock_guard lock(mu_);
  unsigned n = ++failures_[ip];
  if (failures_.size() > 100000) failures_.clear();
  return std::min(n, 5u);
}
void AuthThrottle::success(const std::string& ip) {
  std::lock_guard lock(mu_);
  failures_.erase(ip);
}

Session::Session(SessionEnv env) : env_(std::move(env)) {}
Session::~Session() = default;

bool Session::plaintext_allowed() const {
  return env_.tls || (env_.loopback && env_.config->allow_plain_auth_on_loopback);
}

void Session::tls_started() {
  starttls_pending_ = false;
  env_.tls = true;
}

std::string Session::capabilities() const {
  std::string c = "IMAP4rev1 IMAP4rev2";
  if (state_ == State::not_authenticated) {
    if (env_.starttls_available && !env_.tls) c += " STARTTLS";
    c += " AUTH=SCRAM-SHA-256";
    if (plaintext_allowed()) c += " AUTH=PLAIN";
    else c += " LOGINDISABLED";
    c += " SASL-IR";
  }
  c += " LITERAL+ ENABLE UTF8=ACCEPT ID IDLE NAMESPACE UNSELECT UIDPLUS MOVE MULTIAPPEND REPLACE CHILDREN LIST-EXTENDED LIST-STATUS"
       " SPECIAL-USE ESEARCH SEARCHRES SORT ESORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES"
       " CONDSTORE QRESYNC BINARY STATUS=SIZE PREVIEW OBJECTID UNAUTHENTICATE"
       " QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE UIDONLY APPENDLIMIT=" +
       std::to_string(env_.config->max_literal);
  // COMPRESS is a command of the authenticated states, once per connection.
  if (state_ != State::not_authenticated && !compressed_) c += " COMPRESS=DEFLATE";
  return c;
}

std::string Session::greeting() { return "* OK [CAPABILITY " + capabilities() + "] mail-imapd ready\r\n"; }

void Session::handle(std::string_view command, std::string& out) {
  Parser p(command);
  auto tag = p.tag();
  if (!tag) {
    out += "* BAD missing tag\r\n";
    return;
  }
  if (!p.space()) {
    out += *tag + " BAD missing command\r\n";
    return;
  }
  auto name = p.atom();
  if (!name) {
    out += *tag + " BAD missing command\r\n";
    return;
  }
  std::string cmd = upper(*name);
  bool uid = false;
  if (cmd == "UID") {
    if (!p.space() || !(name = p.atom())) {
      out += *tag + " BAD UID needs a command\r\n";
      return;
    }
    cmd = upper(*name);
    uid = true;
    if (cmd != "FETCH" && cmd != "SEARCH" && cmd != "STORE" && cmd != "COPY" && cmd != "MOVE" &&
        cmd != "EXPUNGE" && cmd != "SORT" && cmd != "THREAD" && cmd != "REPLACE") {
      out += *tag + " BAD unknown UID command\r\n";
      return;
    }
  } else if (uidonly_ && (cmd == "FETCH" || cmd == "SEARCH" || cmd == "STORE" || cmd == "COPY" || cmd == "MOVE" ||
                          cmd == "SORT" || cmd == "THREAD" || cmd == "REPLACE")) {
    // RFC 9586 3: these take (or answer with) sequence numbers; UID ones do not.
    out += *tag + " BAD [UIDREQUIRED] use UID " + cmd + ": message sequence numbers are off (UIDONLY)\r\n";
    return;
  }
  dispatch(*tag, cmd, p, out, uid);
}

void Session::dispatch(const std::string& tag, const std::string& c, Parser& p, std::string& out, bool uid) {
  auto need = [&](bool ok, const char* what) {
    if (!ok) out += tag + " BAD " + what + "\r\n";
    return ok;
  };
  // any state
  if (c == "CAPABILITY") return cmd_capability(tag, p, out);
  if (c == "NOOP" || c == "CHECK") {
    if (c == "CHECK" && !need(state_ == State::selected, "no mailbox selected")) return;
    if (sel_) sync(out, true);
    out += tag + " OK " + c + " completed\r\n";
    return;
  }
  if (c == "LOGOUT") {
    out += "* BYE logging out\r\n" + tag + " OK LOGOUT completed\r\n";
    state_ = State::logout;
    return;
  }
  if (c == "ID") return cmd_id(tag, p, out);
  if (state_ == State::not_authenticated) {
    if (c == "LOGIN") return cmd_login(tag, p, out);
    if (c == "AUTHENTICATE") return cmd_authenticate(tag, p, out);
    if (c == "STARTTLS") {
      if (!p.at_end()) {
        out += tag + " BAD STARTTLS takes no arguments\r\n";
      } else if (env_.tls) {
        out += tag + " BAD TLS is already active\r\n";
      } else if (!env_.starttls_available) {
        out += tag + " NO STARTTLS is not available: no certificate configured\r\n";
      } else {
        out += tag + " OK begin TLS negotiation now\r\n";
        starttls_pending_ = true;
      }
      return;
    }
    out += tag + " BAD " + (is_known_command(c) ? "log in first" : "unknown command") + "\r\n";
    return;
  }
  if (c == "LOGIN" || c == "AUTHENTICATE") {
    out += tag + " BAD already authenticated\r\n";
    return;
  }
  if (c == "ENABLE") return cmd_enable(tag, p, out);
  if (c == "UNAUTHENTICATE") return cmd_unauthenticate(tag, p, out);
  if (c == "COMPRESS") return cmd_compress(tag, p, out);
  if (c == "GETQUOTA" || c == "GETQUOTAROOT" || c == "SETQUOTA") return cmd_quota(tag, c, p, out);
  if (c == "NAMESPACE") return cmd_namespace(tag, p, out);
  if (c == "SELECT" || c == "EXAMINE") return cmd_select(tag, p, out, c == "EXAMINE");
  if (c == "CREATE") return cmd_create(tag, p, out);
  if (c == "DELETE") return cmd_delete(tag, p, out);
  if (c == "RENAME") return cmd_rename(tag, p, out);
  if (c == "SUBSCRIBE" || c == "UNSUBSCRIBE") return cmd_subscribe(tag, p, out, c == "SUBSCRIBE");
  if (c == "LIST" || c == "LSUB") return cmd_list(tag, p, out, c == "LSUB");
  if (c == "STATUS") return cmd_status(tag, p, out);
  if (c == "APPEND") return cmd_append(tag, p, out);
  if (c == "IDLE") return cmd_idle(tag, p, out);
  if (state_ != State::selected) {
    out += tag + " BAD " + (is_known_command(c) ? "no mailbox selected" : "unknown command") + "\r\n";
    return;
  }
  if (c == "CLOSE" || c == "UNSELECT") return cmd_close(tag, p, out, c == "CLOSE");
  if (c == "EXPUNGE") return cmd_expunge(tag, p, out, uid);
  if (c == "SEARCH") return cmd_search(tag, p, out, uid);
  if (c == "SORT") return cmd_sort(tag, p, out, uid);
  if (c == "THREAD") return cmd_thread(tag, p, out, uid);
  if (c == "FETCH") return cmd_fetch(tag, p, out, uid);
  if (c == "STORE") return cmd_store(tag, p, out, uid);
  if (c == "COPY" || c == "MOVE") return cmd_copy(tag, p, out, uid, c == "MOVE");
  if (c == "REPLACE") return cmd_replace(tag, p, out, uid);
  out += tag + " BAD unknown command\r\n";
}

// ---- the sequence map ---------------------------------------------------------------

// Appends in place: FETCH 1:* renders 100k of these (no temporaries each).
void Session::append_flags(std::string& out, const store::MessageEntry& m) const {
  out += '(';
  size_t start = out.size();
  auto add = [&](std::string_view s) {
    if (out.size() > start) out += ' ';
    out += s;
  };
  if (!rev2_ && sel_ && sel_->recent.count(m.uid)) add("\\Recent");
  if (m.flags & store::flag::seen) add("\\Seen");
  if (m.flags & store::flag::answered) add("\\Answered");
  if (m.flags & store::flag::flagged) add("\\Flagged");
  if (m.flags & store::flag::deleted) add("\\Deleted");
  if (m.flags & store::flag::draft) add("\\Draft");
  for (const auto& k : m.keywords) add(k);
  out += ')';
}

void Session::append_fetch_head(std::string& out, size_t index) const {
  out += "* ";
  out += std::to_string(uidonly_ ? sel_->msgs[index].uid : index + 1);
  out += uidonly_ ? " UIDFETCH (" : " FETCH (";
}

void Session::fetch_flags_line(std::string& out, size_t index, bool with_uid) const {
  const auto& m = sel_->msgs[index];
  append_fetch_head(out, index);
  if (with_uid && !uidonly_) out += "UID " + std::to_string(m.uid) + " ";
  out += "FLAGS ";
  append_flags(out, m);
  if (condstore_) out += " MODSEQ (" + std::to_string(m.modseq) + ")";
  out += ")\r\n";
}

size_t Session::Selected::index_of(store::Uid uid) const {
  auto it = std::lower_bound(msgs.begin(), msgs.end(), uid,
                             [](const store::MessageEntry& m, store::Uid u) { return m.uid < u; });
  return it != msgs.end() && it->uid == uid ? static_cast<size_t>(it - msgs.begin()) : msgs.size();
}

void Session::Selected::apply_updates(const store::FlagsUpdateResp& r, std::vector<bool>& changed) {
  for (const auto& e : r.updated) {
    size_t i = index_of(e.uid);
    if (i == msgs.size()) continue;
    msgs[i] = e;
    changed[i] = true;
  }
  if (r.previous_modseq && r.previous_modseq == known_modseq) {
    known_modseq = std::max(known_modseq, r.highest_modseq);
    info.highest_modseq = std::max(info.highest_modseq, r.highest_modseq);
  }
}

void Session::sync(std::string& out, bool allow_expunge) {
  if (!sel_) return;
  // Only what changed since the last look: the store keeps a modseq index.
  auto r = env_.store->changes({sel_->info.id, sel_->known_modseq});
  if (!r) {
    if (r.code() == Code::not_found) {
      out += "* BYE the selected mailbox was deleted\r\n";
      state_ = State::logout;
    }
    return;
  }
  auto& msgs = sel_->msgs;
  auto by_uid = [&](store::Uid uid) {
    return std::lower_bound(msgs.begin(), msgs.end(), uid,
                            [](const store::MessageEntry& m, store::Uid u) { return m.uid < u; });
  };
  auto& pending = sel_->pending_expunge;
  for (store::Uid uid : r->vanished) {
    auto it = by_uid(uid);
    if (it != msgs.end() && it->uid == uid && !std::binary_search(pending.begin(), pending.end(), uid))
      pending.insert(std::upper_bound(pending.begin(), pending.end(), uid), uid);
  }
  bool grew = false;
  size_t old_size = msgs.size();
  store::Uid last = msgs.empty() ? 0 : msgs.back().uid;
  std::vector<store::Uid> changed;
  for (auto& e : r->changed) {  // ascending uid
    if (e.uid > last) {
      last = e.uid;
      msgs.push_back(std::move(e));
      grew = true;
      continue;
    }
    auto it = by_uid(e.uid);
    if (it == msgs.end() || it->uid != e.uid) continue;  // expunged meanwhile
    bool differs = it->flags != e.flags || it->keywords != e.keywords || (condstore_ && it->modseq != e.modseq);
    *it = std::move(e);
    if (differs) changed.push_back(it->uid);
  }
  sel_->known_modseq = r->highest_modseq;
  sel_->info.highest_modseq = std::max(sel_->info.highest_modseq, r->highest_modseq);
  // Flag changes first, while their sequence numbers are still the ones the client knows.
  for (store::Uid uid : changed) {
    if (std::binary_search(pending.begin(), pending.end(), uid)) continue;
    fetch_flags_line(out, static_cast<size_t>(by_uid(uid) - msgs.begin()), true);
  }
  if (allow_expunge && !pending.empty()) {
    std::vector<store::MessageEntry> kept;
    kept.reserve(msgs.size());
    size_t removed = 0;
    for (size_t i = 0; i < msgs.size(); ++i) {
      if (std::binary_search(pending.begin(), pending.end(), msgs[i].uid)) {
        if (!qresync_ && !uidonly_) out += "* " + std::to_string(i + 1 - removed) + " EXPUNGE\r\n";
        sel_->recent.erase(msgs[i].uid);
        ++removed;
      } else {
        kept.push_back(std::move(msgs[i]));
      }
    }
    if (qresync_ || uidonly_) out += "* VANISHED " + uid_set_string(pending) + "\r\n";
    pending.clear();
    msgs = std::move(kept);
  }
  // New messages arrived: announce the new count (after any expunges above).
  if (grew) {
    if (!sel_->read_only) claim_recent(old_size);
    out += "* " + std::to_string(msgs.size()) + " EXISTS\r\n";
    if (!rev2_) out += "* " + std::to_string(sel_->recent.size()) + " RECENT\r\n";
  }
}

void Session::enable_condstore(std::string& out) {
  if (condstore_) return;
  condstore_ = true;
  if (sel_)
    out += "* OK [HIGHESTMODSEQ " + std::to_string(std::max<uint64_t>(sel_->info.highest_modseq, 1)) +
           "] CONDSTORE enabled\r\n";
}

void Session::claim_recent(size_t from) {
  auto& msgs = sel_->msgs;
  if (!env_.recent || from >= msgs.size()) return;
  store::Uid first = env_.recent->claim(sel_->info.id, msgs.back().uid + 1);
  for (size_t i = from; i < msgs.size(); ++i)
    if (msgs[i].uid >= first) sel_->recent.insert(msgs[i].uid);
}

store::Uid RecentTracker::claim(store::MailboxId mailbox, store::Uid uidnext) {
  std::lock_guard lock(mu_);
  auto it = first_.try_emplace(mailbox, 1).first;
  store::Uid first = it->second;
  it->second = std::max(it->second, uidnext);
  return first;
}

store::Uid RecentTracker::first(store::MailboxId mailbox) {
  std::lock_guard lock(mu_);
  auto it = first_.find(mailbox);
  return it == first_.end() ? 1 : it->second;
}

void Session::on_wake(std::string& out) {
  if (idling_ && sel_) sync(out, true);
}

// ---- any state -----------------------------------------------------------------------

void Session::cmd_capability(const std::string& tag, Parser& p, std::string& out) {
  if (!p.at_end()) {
    out += tag + " BAD CAPABILITY takes no arguments\r\n";
    return;
  }
  out += "* CAPABILITY " + capabilities() + "\r\n" + tag + " OK CAPABILITY completed\r\n";
}

void Session::cmd_id(const std::string& tag, Parser& p, std::string& out) {
  if (!p.space() || !p.skip_value() || !p.at_end()) {
    out += tag + " BAD ID expects a parameter list or NIL\r\n";
    return;
  }
  out += "* ID (\"name\" \"mail-imapd\" \"version\" \"0.1\")\r\n" + tag + " OK ID completed\r\n";
}

void Session::cmd_namespace(const std::string& tag, Parser& p, std::string& out) {
  out += "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n" + tag + " OK NAMESPACE completed\r\n";
}

void Session::cmd_enable(const std::string& tag, Parser& p, std::string& out) {
  std::string enabled;
  if (!p.space()) {
    out += tag + " BAD ENABLE needs capabilities\r\n";
    return;
  }
  do {
    auto a = p.atom();
    if (!a) {
      out += tag + " BAD " + p.error() + "\r\n";
      return;
    }
    std::string u = upper(*a);
    if (u == "IMAP4REV2" && !rev2_) {
      rev2_ = true;
      enabled += " IMAP4rev2";
    } else if (u == "CONDSTORE" && !condstore_) {
      condstore_ = true;
      enabled += " CONDSTORE";
    } else if (u == "QRESYNC" && !qresync_) {  // implies CONDSTORE (RFC 7162 3.2.3)
      qresync_ = condstore_ = true;
      enabled += " QRESYNC";
    } else if (u == "UTF8=ACCEPT" && !utf8_) {
      utf8_ = true;
      enabled += " UTF8=ACCEPT";
    } else if (u == "UIDONLY" && !uidonly_) {
      uidonly_ = true;
      enabled += " UIDONLY";
    }
  } while (p.space());
  out += "* ENABLED" + enabled + "\r\n" + tag + " OK ENABLE completed\r\n";
}

void Session::cmd_unauthenticate(const std::string& tag, Parser& p, std::string& out) {
  if (!p.at_end()) {
    out += tag + " BAD UNAUTHENTICATE takes no arguments\r\n";
    return;
  }
  // RFC 8437: back to the state right after the greeting, ENABLEd extensions included.
  subscription_.reset();
  sel_.reset();
  account_ = {};
  rev2_ = condstore_ = qresync_ = utf8_ = uidonly_ = false;
  state_ = State::not_authenticated;
  out += tag + " OK UNAUTHENTICATE completed\r\n";
}

void Session::cmd_compress(const std::string& tag, Parser& p, std::string& out) {
  std::optional<std::string> mech;
  if (!p.space() || !(mech = p.atom()) || !p.at_end()) {
    out += tag + " BAD COMPRESS needs a mechanism\r\n";
  } else if (upper(*mech) != "DEFLATE") {
    out += tag + " BAD unknown compression mechanism\r\n";
  } else if (compressed_) {
    out += tag + " NO [COMPRESSIONACTIVE] DEFLATE is already active\r\n";
  } else {
    out += tag + " OK DEFLATE active\r\n";
    compressed_ = compress_pending_ = true;
  }
}

void Session::cmd_idle(const std::string& tag, Parser& p, std::string& out) {
  if (!p.at_end()) {
    out += tag + " BAD IDLE takes no arguments\r\n";
    return;
  }
  idling_ = true;
  idle_tag_ = tag;
  out += "+ idling\r\n";
  if (sel_) sync(out, true);
}

// ---- authentication ---------------------------------------------------------------------

void Session::auth_failed(const std::string& tag, const std::string& user, std::string& out) {
  // Slow down guessing: per client address and per account, whichever failed more.
  unsigned delay = 1;
  if (env_.throttle) {
    delay = env_.throttle->failure(env_.peer_ip);
    if (!user.empty()) delay = std::max(delay, env_.throttle->failure("user:" + user));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200 * delay));
  out += tag + " NO [AUTHENTICATIONFAILED] invalid credentials\r\n";
}

void Session::logged_in(const std::string& tag, const store::AccountInfo& account, std::string& out) {
  if (env_.throttle) {
    env_.throttle->success(env_.peer_ip);
    env_.throttle->success("user:" + account.address);
  }
  account_ = account;
  state_ = State::authenticated;
  if (env_.wake) {
    auto wake = env_.wake;
    auto sub = env_.store->subscribe(account_.id, [wake](const std::vector<store::ChangeEvent>&) { wake(); });
    if (sub) subscription_ = std::move(*sub);
    else log::warn("no change notifications for {}: {}", account_.address, sub.status().to_string());
  }
  log::info("login {} from {}", account_.address, env_.peer_ip);
  out += tag + " OK [CAPABILITY " + capabilities() + "] logged in\r\n";
}

bool Session::finish_auth(const std::string& tag, const std::string& user, const std::string& pass,
                          std::string& out) {
  auto r = env_.store->account_auth({user});
  if (!r) {
    if (r.code() == Code::unavailable || r.code() == Code::temporary || r.code() == Code::busy) {
      out += tag + " NO [UNAVAILABLE] the mail store is not available\r\n";
      return false;
    }
    auth_failed(tag, user, out);
    return false;
  }
  const std::string& hash = r->credentials.password_hash;
  std::string key = AuthCache::key(user, pass, hash);
  bool good = env_.auth_cache && env_.auth_cache->check(key);
  if (!good) {
    good = !hash.empty() && verify_password(hash, pass);
    if (good && env_.auth_cache) env_.auth_cache->remember(key);
  }
  if (!good || r->account.disabled) {
    auth_failed(tag, user, out);
    return false;
  }
  logged_in(tag, r->account, out);
  return true;
}

void Session::cmd_login(const std::string& tag, Parser& p, std::string& out) {
  std::optional<std::string> user, pass;
  if (!p.space() || !(user = p.astring()) || !p.space() || !(pass = p.astring()) || !p.at_end()) {
    out += tag + " BAD LOGIN expects user and password\r\n";
    return;
  }
  if (!plaintext_allowed()) {
    out += tag + " NO [PRIVACYREQUIRED] plaintext login needs TLS\r\n";
    return;
  }
  finish_auth(tag, *user, *pass, out);
}

void Session::cmd_authenticate(const std::string& tag, Parser& p, std::string& out) {
  std::optional<std::string> mech;
  if (!p.space() || !(mech = p.atom())) {
    out += tag + " BAD AUTHENTICATE needs a mechanism\r\n";
    return;
  }
  std::string m = upper(*mech);
  if (m == "PLAIN") {
    if (!plaintext_allowed()) {
      out += tag + " NO [PRIVACYREQUIRED] plaintext authentication needs TLS\r\n";
      return;
    }
  } else if (m == "SCRAM-SHA-256") {
    store::Store* store = env_.store;
    scram_account_.reset();
    auto* found = &scram_account_;
    scram_ = std::make_unique<ScramServer>([store, found](std::string_view user) -> std::optional<ScramKeys> {
      auto r = store->account_auth({std::string(user)});
      if (!r || r->account.disabled || r->credentials.scram.iterations == 0) return std::nullopt;
      *found = r->account;
      const auto& c = r->credentials.scram;
      return ScramKeys{c.salt, c.iterations, c.stored_key, c.server_key};
    });
  } else {
    out += tag + " NO [CANNOT] unsupported authentication mechanism\r\n";
    return;
  }
  auth_mech_ = m;
  auth_pending_ = true;
  auth_tag_ = tag;
  if (p.space()) {  // SASL-IR: the initial response takes the continuation path
    std::string ir(p.rest());
    if (ir == "=") ir.clear();  // an empty initial response
    else if (ir.empty()) ir = "*";  // "AUTHENTICATE PLAIN " with nothing: malformed
    handle_continuation(ir, out);
    return;
  }
  out += "+ \r\n";
}

void Session::handle_auth_response(std::string_view line, std::string& out) {
  std::string tag = auth_tag_;
  auto finish = [&] {
    auth_pending_ = false;
    auth_tag_.clear();
    auth_mech_.clear();
    scram_.reset();
    scram_account_.reset();
  };
  if (line == "*") {
    finish();
    out += tag + " BAD authentication cancelled\r\n";
    return;
  }
  auto data = base64_decode(line);
  if (!data) {
    finish();
    out += tag + " BAD invalid base64 in authentication response\r\n";
    return;
  }
  if (auth_mech_ == "PLAIN") {
    finish();
    // authzid \0 authcid \0 password
    const std::string& d = *data;
    size_t a = d.find('\0');
    size_t b = a == std::string::npos ? a : d.find('\0', a + 1);
    if (b == std::string::npos) {
      out += tag + " BAD malformed PLAIN response\r\n";
      return;
    }
    std::string authz = d.substr(0, a), user = d.substr(a + 1, b - a - 1), pass = d.substr(b + 1);
    if (!authz.empty() && authz != user) {
      out += tag + " NO [AUTHORIZATIONFAILED] cannot act as another user\r\n";
      return;
    }
    finish_auth(tag, user, pass, out);
    return;
  }
  // SCRAM-SHA-256: client-first, client-final, then the empty answer to server-final.
  if (scram_->done()) {
    std::optional<store::AccountInfo> account = scram_account_;
    finish();
    if (!data->empty() || !account) {
      out += tag + " BAD expected an empty response\r\n";
      return;
    }
    logged_in(tag, *account, out);
    return;
  }
  auto r = scram_->step(*data);
  if (!r) {
    std::string user = scram_->username();
    finish();
    if (r.code() == Code::denied) auth_failed(tag, user, out);
    else out += tag + " BAD " + r.status().message() + "\r\n";
    return;
  }
  out += "+ " + base64_encode(*r) + "\r\n";
}

void Session::handle_continuation(std::string_view line, std::string& out) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (idling_) {
    idling_ = false;
    if (upper(line) == "DONE") out += idle_tag_ + " OK IDLE terminated\r\n";
    else out += idle_tag_ + " BAD expected DONE\r\n";
    return;
  }
  if (auth_pending_) handle_auth_response(line, out);
}

// ---- dates ---------------------------------------------------------------------------------

static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

std::string format_internal_date(int64_t t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm;
  gmtime_r(&tt, &tm);
  char buf[64];
  snprintf(buf, sizeof buf, "%02d-%s-%04d %02d:%02d:%02d +0000", tm.tm_mday, kMonths[tm.tm_mon],
           tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

static int month_index(std::string_view m) {
  for (int i = 0; i < 12; ++i)
    if (m.size() == 3 && strncasecmp(m.data(), kMonths[i], 3) == 0) return i;
  return -1;
}

std::optional<int64_t> parse_search_date(std::string_view s) {
  int d = 0, y = 0;
  char mon[4] = {0};
  std::string str(s);
  int n = 0;
  if (sscanf(str.c_str(), "%2d-%3c-%4d%n", &d, mon, &y, &n) != 3 || n != static_cast<int>(str.size()))
    return std::nullopt;
  int m = month_index(mon);
  if (m < 0 || d < 1 || d > 31 || y < 1900) return std::nullopt;
  struct tm tm{};
  tm.tm_mday = d;
  tm.tm_mon = m;
  tm.tm_year = y - 1900;
  return static_cast<int64_t>(timegm(&tm));
}

std::optional<int64_t> parse_internal_date(std::string_view s) {
  std::string str(s);
  int d = 0, y = 0, hh = 0, mm = 0, ss = 0;
  char mon[4] = {0}, sign = 0;
  int zone = 0, n = 0;
  const char* c = str.c_str();
  if (*c == ' ') ++c;
  if (sscanf(c, "%2d-%3c-%4d %2d:%2d:%2d %c%4d%n", &d, mon, &y, &hh, &mm, &ss, &sign, &zone, &n) != 8 ||
      c[n] != '\0')
    return std::nullopt;
  int m = month_index(mon);
  if (m < 0 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60 || (sign != '+' && sign != '-'))
    return std::nullopt;
  struct tm tm{};
  tm.tm_mday = d;
  tm.tm_mon = m;
  tm.tm_year = y - 1900;
  tm.tm_hour = hh;
  tm.tm_min = mm;
  tm.tm_sec = ss;
  int64_t t = timegm(&tm);
  int offset = (zone / 100) * 3600 + (zone % 100) * 60;
  return sign == '+' ? t - offset : t + offset;
}

}  // namespace mail::imap
