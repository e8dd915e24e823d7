#include "smtp/server.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>

#include "base/log.h"
#include "service/listen.h"

namespace mail::smtp {

Server::Server(store::Store& store, const SmtpConfig& config, std::string hostname,
               std::shared_ptr<service::TlsContext> tls)
    : store_(store), config_(config), hostname_(std::move(hostname)), tls_(std::move(tls)) {}

bool Server::enter(const std::string& ip) {
  if (ip.empty() || config_.max_sessions_per_ip == 0) return true;
  std::lock_guard lock(mu_);
  uint32_t& n = sessions_per_ip_[ip];
  if (n >= config_.max_sessions_per_ip) return false;
  ++n;
  return true;
}

void Server::leave(const std::string& ip) {
  if (ip.empty() || config_.max_sessions_per_ip == 0) return;
  std::lock_guard lock(mu_);
  auto it = sessions_per_ip_.find(ip);
  if (it != sessions_per_ip_.end() && --it->second == 0) sessions_per_ip_.erase(it);
}

void Server::run(int fd, Mode mode, bool implicit_tls) {
  service::Stream stream(fd);
  std::string ip = service::peer_ip(fd);
  std::string peer = service::peer_address(fd);
  if (!enter(ip)) {
    log::warn("smtp: {} refused: more than {} sessions from this address", peer, config_.max_sessions_per_ip);
    (void)stream.write_all(Reply{421, "4.7.0", hostname_ + " Error: too many connections from your address"}.render());
    return;
  }
  struct Leave {
    Server* s;
    std::string ip;
    ~Leave() { s->leave(ip); }
  } leave_guard{this, ip};

  // A handshake gets at most 30 s, so half-open TLS clients cannot hold threads for long.
  const int handshake_ms = static_cast<int>(std::min<uint32_t>(config_.command_timeout_s, 30)) * 1000;
  if (implicit_tls) {
    if (!tls_) return;
    Status st = stream.start_tls(*tls_, handshake_ms);
    if (!st) {
      log::info("smtp: {} TLS handshake failed: {}", peer, st.message());
      return;
    }
  }

  SessionEnv env;
  env.store = &store_;
  env.config = &config_;
  env.mode = mode;
  env.hostname = hostname_;
  env.peer_ip = ip;
  env.loopback = ip.empty() || service::is_loopback_peer(fd);
  env.tls = stream.is_tls();
  env.tls_info = stream.tls_description();
  env.starttls_available = tls_ != nullptr && mode != Mode::lmtp;
  env.throttle = &throttle_;
  env.filters = filters_;
  Session session(std::move(env));

  // Early talkers: a client that sends before it was greeted is not speaking SMTP.
  if (mode == Mode::mx && !implicit_tls && pregreet_ms_ > 0) {
    pollfd p{fd, POLLIN, 0};
    char probe;
    if (::poll(&p, 1, pregreet_ms_) > 0 && (p.revents & POLLIN) && ::recv(fd, &probe, 1, MSG_PEEK) > 0) {
      log::info("smtp: {} talked before the greeting", peer);
      (void)stream.write_all(session.early_talker_reply());
      char drain[4096];  // read what it sent, so closing does not reset the connection
      (void)stream.read_some(drain, sizeof drain, 100);
      return;
    }
  }
  if (!stream.write_all(session.greeting())) return;

  std::string out;
  std::vector<char> buf(64 * 1024);
  while (true) {
    int timeout_ms = static_cast<int>(session.in_data() ? config_.data_timeout_s : config_.command_timeout_s) * 1000;
    // A stopping daemon closes idle sessions, but lets a message being sent finish.
    stream.set_interruptible(!session.in_data());
    auto n = stream.read_some(buf.data(), buf.size(), timeout_ms);
    if (!n) {
      if (n.code() == Code::temporary) {
        log::info("smtp: {} timed out", peer);
        (void)stream.write_all(session.timeout_reply());
      } else {
        (void)stream.write_all(session.shutdown_reply());
      }
      break;
    }
    if (*n == 0) {
      if (session.in_data()) log::info("smtp: {} disconnected during message data", peer);
      break;
    }
    out.clear();
    session.feed(std::string_view(buf.data(), *n), out);
    if (!out.empty() && !stream.write_all(out)) break;
    if (session.closed()) break;
    if (session.starttls_pending()) {
      Status st = stream.start_tls(*tls_, handshake_ms);
      if (!st) {
        log::info("smtp: {} STARTTLS handshake failed: {}", peer, st.message());
        break;
      }
      session.tls_started(stream.tls_description());
    }
  }
  log::debug("smtp: {} closed after {} message(s)", peer, session.messages_accepted());
}

}  // namespace mail::smtp
