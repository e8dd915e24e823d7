#include "imap/server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "base/log.h"
#include "imap/session.h"

namespace mail::imap {

Result<HostPort> parse_host_port(const std::string& text) {
  HostPort hp;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return error(Code::config, "bad listen address (want [v6]:port): " + text);
    hp.host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) return error(Code::config, "listen address needs host:port: " + text);
    hp.host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) > 65535)
    return error(Code::config, "bad port in listen address: " + text);
  hp.port = static_cast<uint16_t>(std::stoul(port));
  if (hp.host.empty()) hp.host = "0.0.0.0";
  return hp;
}

namespace {

std::string ssl_error_text() {
  unsigned long e = ERR_get_error();
  if (!e) return "unknown TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

// One client connection: the socket, TLS once started, and the wake eventfd.
struct Conn {
  int fd = -1;
  int wake_fd = -1;
  SSL* ssl = nullptr;
  std::string in;  // bytes read, not yet consumed

  ~Conn() {
    if (ssl) {
      SSL_shutdown(ssl);
      SSL_free(ssl);
    }
    if (wake_fd >= 0) ::close(wake_fd);
  }

  bool write_all(std::string_view s) {
    size_t off = 0;
    while (off < s.size()) {
      if (ssl) {
        int chunk = static_cast<int>(std::min<size_t>(s.size() - off, 1 << 30));
        int n = SSL_write(ssl, s.data() + off, chunk);
        if (n <= 0) return false;
        off += static_cast<size_t>(n);
        continue;
      }
      ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  // Reads more bytes; waits on the wake fd too when `wakeable`.
  // Returns 1 data, 2 woken, 0 closed/error, -1 timeout.
  int fill(int timeout_ms, bool wakeable) {
    if (!(ssl && SSL_pending(ssl) > 0)) {
      pollfd p[2] = {{fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
      int r = ::poll(p, wakeable ? 2 : 1, timeout_ms);
      if (r == 0) return -1;
      if (r < 0) return errno == EINTR ? 2 : 0;
      if (wakeable && (p[1].revents & POLLIN)) {
        uint64_t v;
        (void)!::read(wake_fd, &v, sizeof v);
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) return 2;
      }
    }
    char buf[65536];
    if (ssl) {
      int n = SSL_read(ssl, buf, sizeof buf);
      if (n <= 0) return 0;
      in.append(buf, static_cast<size_t>(n));
      return 1;
    }
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) return 2;
    if (n <= 0) return 0;
    in.append(buf, static_cast<size_t>(n));
    return 1;
  }

  bool start_tls(SSL_CTX* ctx, int timeout_ms) {
    ssl = SSL_new(ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1) return false;
    // Bound the handshake: a silent peer must not hold the thread forever.
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int r = SSL_accept(ssl);
    timeval zero{0, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &zero, sizeof zero);
    if (r != 1) {
      log::debug("TLS handshake failed: {}", ssl_error_text());
      SSL_free(ssl);
      ssl = nullptr;
      return false;
    }
    return true;
  }
};

// Shared by every connection of one serve() call.
struct Shared {
  store::Store* store = nullptr;
  const ImapConfig* config = nullptr;
  SSL_CTX* tls = nullptr;
  AuthCache cache;
  AuthThrottle throttle;

  std::mutex mu;
  std::condition_variable idle;
  std::set<int> fds;  // open client sockets, shut down at stop
};

// Reads one complete command (its lines with their literals inline) into `cmd`.
// Returns false when the connection is over (closed, timeout, limits).
// Continuation lines (IDLE's DONE, AUTHENTICATE data) come back with
// `continuation` set.
enum class ReadResult { command, continuation, closed };

ReadResult read_command(Conn& c, Session& s, const ImapConfig& cfg, std::string& cmd) {
  const int timeout_ms = static_cast<int>(std::min<uint64_t>(cfg.idle_timeout_s, 86400)) * 1000;
  cmd.clear();
  size_t scan = 0;
  while (true) {
    size_t nl = c.in.find('\n', scan);
    if (nl == std::string::npos) {
      if (c.in.size() > cfg.max_line_length) {
        c.write_all("* BYE line too long\r\n");
        return ReadResult::closed;
      }
      scan = c.in.size();
      int r = c.fill(timeout_ms, s.idling());
      if (r == 0) return ReadResult::closed;
      if (r == -1) {
        c.write_all("* BYE autologout; idle for too long\r\n");
        return ReadResult::closed;
      }
      if (r == 2) {
        std::string out;
        s.on_wake(out);
        if (!out.empty() && !c.write_all(out)) return ReadResult::closed;
      }
      continue;
    }
    if (nl > cfg.max_line_length) {
      c.write_all("* BYE line too long\r\n");
      return ReadResult::closed;
    }
    std::string line = c.in.substr(0, nl + 1);
    c.in.erase(0, nl + 1);
    scan = 0;
    if (s.wants_continuation() && cmd.empty()) {
      cmd = std::move(line);
      return ReadResult::continuation;
    }
    cmd += line;
    std::string_view body(line);
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.remove_suffix(1);
    auto lit = literal_at_end(body);
    if (!lit) return ReadResult::command;
    if (lit->size > cfg.max_literal) {
      if (lit->non_sync) {  // its bytes are already on the way and cannot be skipped
        c.write_all("* BYE literal too large\r\n");
        return ReadResult::closed;
      }
      // Refuse a synchronizing literal: the client will not send it.
      Parser tp(cmd);
      auto tag = tp.tag();
      std::string t = tag ? *tag : "*";
      if (!c.write_all(t + " NO [TOOBIG] literal too large\r\n")) return ReadResult::closed;
      cmd.clear();
      continue;
    }
    if (cmd.size() + lit->size > cfg.max_literal + cfg.max_line_length * 4ull) {
      c.write_all("* BYE command too large\r\n");
      return ReadResult::closed;
    }
    if (!lit->non_sync && !c.write_all("+ OK\r\n")) return ReadResult::closed;
    while (c.in.size() < lit->size) {
      int r = c.fill(timeout_ms, false);
      if (r == 0 || r == -1) return ReadResult::closed;
    }
    cmd.append(c.in, 0, lit->size);
    c.in.erase(0, lit->size);
  }
}

bool is_loopback(const sockaddr_storage& peer) {
  if (peer.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&peer);
    return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
  }
  if (peer.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&peer);
    if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) return a->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

std::string peer_ip(const sockaddr_storage& peer) {
  char ip[INET6_ADDRSTRLEN] = {0};
  if (peer.ss_family == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&peer)->sin_addr, ip, sizeof ip);
  else if (peer.ss_family == AF_INET6)
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&peer)->sin6_addr, ip, sizeof ip);
  return ip;
}

void run_connection(int fd, sockaddr_storage peer, bool implicit_tls, Shared* sh) {
  const ImapConfig& cfg = *sh->config;
  {
    Conn c;
    c.fd = fd;
    c.wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    bool alive = c.wake_fd >= 0;
    if (alive && implicit_tls) alive = c.start_tls(sh->tls, 30000);
    if (alive) {
      SessionEnv env;
      env.store = sh->store;
      env.config = &cfg;
      env.auth_cache = &sh->cache;
      env.throttle = &sh->throttle;
      env.peer_ip = peer_ip(peer);
      env.loopback = is_loopback(peer);
      env.tls = implicit_tls;
      env.starttls_available = sh->tls != nullptr && !implicit_tls;
      int wfd = c.wake_fd;
      env.wake = [wfd] {
        uint64_t v = 1;
        (void)!::write(wfd, &v, sizeof v);
      };
      Session s(std::move(env));
      alive = c.write_all(s.greeting());
      std::string cmd, out;
      while (alive && s.state() != State::logout) {
        ReadResult rr = read_command(c, s, cfg, cmd);
        if (rr == ReadResult::closed) break;
        out.clear();
        if (rr == ReadResult::continuation) s.handle_continuation(cmd, out);
        else s.handle(cmd, out);
        alive = c.write_all(out);
        if (alive && s.starttls_pending()) {
          // Anything the client pipelined after STARTTLS was sent in the clear:
          // drop it (RFC 9051 11.1, command injection).
          c.in.clear();
          alive = c.start_tls(sh->tls, 30000);
          if (alive) s.tls_started();
        }
      }
    }
  }
  {
    std::lock_guard lock(sh->mu);
    sh->fds.erase(fd);
    ::close(fd);
  }
  sh->idle.notify_all();
}

Result<int> bind_listener(const std::string& address) {
  MAIL_ASSIGN_OR_RETURN(HostPort hp, parse_host_port(address));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port = std::to_string(hp.port);
  if (int e = getaddrinfo(hp.host.c_str(), port.c_str(), &hints, &res); e != 0)
    return error(Code::config, "cannot resolve listen address " + address + ": " + gai_strerror(e));
  std::string why = "no address";
  int fd = -1;
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, 256) == 0) break;
    why = strerror(errno);
    ::close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) return error(Code::io, "cannot listen on " + address + ": " + why);
  return fd;
}

Result<SSL_CTX*> make_tls_context(const ServerOptions& o) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return error(Code::internal, "cannot create a TLS context: " + ssl_error_text());
  int min = o.tls_min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
  if (o.tls_min_version != "1.2" && o.tls_min_version != "1.3") {
    SSL_CTX_free(ctx);
    return error(Code::config, "tls.min_version must be 1.2 or 1.3, not " + o.tls_min_version);
  }
  SSL_CTX_set_min_proto_version(ctx, min);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  const std::string& key = o.key_file.empty() ? o.cert_file : o.key_file;
  if (SSL_CTX_use_certificate_chain_file(ctx, o.cert_file.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    std::string e = ssl_error_text();
    SSL_CTX_free(ctx);
    return error(Code::config, "cannot load TLS certificate " + o.cert_file + " / key " + key + ": " + e);
  }
  return ctx;
}

}  // namespace

Status serve(store::Store& store, const ServerOptions& options, const std::atomic<bool>* stop) {
  Shared sh;
  sh.store = &store;
  sh.config = &options.config;
  if (!options.cert_file.empty()) {
    MAIL_ASSIGN_OR_RETURN(sh.tls, make_tls_context(options));
  } else if (!options.listen_tls.empty()) {
    return error(Code::config, "an implicit-TLS listener needs a certificate (tls.cert_file)");
  }
  struct Listener {
    int fd;
    bool tls;
    std::string address;
  };
  std::vector<Listener> listeners;
  auto close_all = [&] {
    for (auto& l : listeners) ::close(l.fd);
    if (sh.tls) SSL_CTX_free(sh.tls);
  };
  for (auto [addr, tls] : {std::pair{options.listen, false}, std::pair{options.listen_tls, true}}) {
    if (addr.empty()) continue;
    auto fd = bind_listener(addr);
    if (!fd) {
      close_all();
      return fd.status();
    }
    listeners.push_back({*fd, tls, addr});
    log::info("listening on {} ({})", addr, tls ? "implicit TLS" : sh.tls ? "STARTTLS" : "no TLS");
  }
  if (listeners.empty()) {
    close_all();
    return error(Code::config, "no IMAP listener configured");
  }
  while (!stop->load()) {
    std::vector<pollfd> p;
    for (auto& l : listeners) p.push_back({l.fd, POLLIN, 0});
    if (::poll(p.data(), p.size(), 200) <= 0) continue;
    for (size_t i = 0; i < p.size(); ++i) {
      if (!(p[i].revents & POLLIN)) continue;
      sockaddr_storage peer{};
      socklen_t len = sizeof peer;
      int c = ::accept4(listeners[i].fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
      if (c < 0) continue;
      {
        std::lock_guard lock(sh.mu);
        sh.fds.insert(c);
      }
      std::thread(run_connection, c, peer, listeners[i].tls, &sh).detach();
    }
  }
  // Stop: wake every connection thread out of its read and wait for it to end.
  {
    std::unique_lock lock(sh.mu);
    for (int fd : sh.fds) ::shutdown(fd, SHUT_RDWR);
    if (!sh.idle.wait_for(lock, std::chrono::seconds(10), [&] { return sh.fds.empty(); })) {
      // The threads use `sh`: returning before they end is not an option.
      log::warn("waiting for {} connections to close", sh.fds.size());
      sh.idle.wait(lock, [&] { return sh.fds.empty(); });
    }
  }
  close_all();
  return Status::ok();
}

}  // namespace mail::imap
