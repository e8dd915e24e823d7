#include "imap/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "base/log.h"
#include "imap/session.h"

namespace mail::imap {
namespace {

struct Conn {
  int fd;
  int wake_fd;
  std::string in;  // bytes read, not yet consumed
  bool write_all(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  // Reads more bytes; waits on the wake fd too when `wakeable`. Returns 1 data,
  // 2 woken, 0 closed/error, -1 timeout.
  int fill(int timeout_ms, bool wakeable) {
    pollfd p[2] = {{fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    int r = ::poll(p, wakeable ? 2 : 1, timeout_ms);
    if (r == 0) return -1;
    if (r < 0) return errno == EINTR ? 2 : 0;
    if (wakeable && (p[1].revents & POLLIN)) {
      uint64_t v;
      (void)!::read(wake_fd, &v, sizeof v);
      if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) return 2;
    }
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return 0;
    in.append(buf, static_cast<size_t>(n));
    return 1;
  }
};

void run_connection(int fd, std::string peer, bool loopback, store::Store* store, const ImapConfig* cfg,
                    AuthCache* cache, AuthThrottle* throttle) {
  Conn c{fd, ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), {}};
  SessionEnv env;
  env.store = store;
  env.config = cfg;
  env.auth_cache = cache;
  env.throttle = throttle;
  env.peer_ip = peer;
  env.loopback = loopback;
  int wfd = c.wake_fd;
  env.wake = [wfd] {
    uint64_t one = 1;
    (void)!::write(wfd, &one, sizeof one);
  };
  {
    Session s(env);
    std::string out = s.greeting();
    bool alive = c.write_all(out);
    const int timeout_ms = static_cast<int>(cfg->idle_timeout_s) * 1000;
    while (alive && s.state() != State::logout) {
      // Assemble one command: lines, each possibly ending in a literal marker.
      std::string cmd;
      bool complete = false;
      size_t scan = 0;
      while (alive && !complete) {
        size_t nl = c.in.find('\n', scan);
        if (nl == std::string::npos) {
          if (c.in.size() > cfg->max_line_length) {
            c.write_all("* BYE line too long\r\n");
            alive = false;
            break;
          }
          scan = c.in.size();
          int r = c.fill(timeout_ms, s.idling());
          if (r == 0) alive = false;
          else if (r == -1) {
            c.write_all("* BYE idle timeout\r\n");
            alive = false;
          } else if (r == 2) {
            out.clear();
            s.on_wake(out);
            if (!out.empty()) alive = c.write_all(out);
          }
          continue;
        }
        std::string line = c.in.substr(0, nl + 1);
        c.in.erase(0, nl + 1);
        scan = 0;
        if (s.wants_continuation() && cmd.empty()) {
          out.clear();
          s.handle_continuation(line, out);
          alive = c.write_all(out);
          break;
        }
        cmd += line;
        std::string_view body(line);
        while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.remove_suffix(1);
        auto lit = literal_at_end(body);
        if (!lit) {
          complete = true;
          break;
        }
        if (lit->size > cfg->max_literal) {
          // Refuse a synchronizing literal cleanly; a non-sync one cannot be skipped.
          c.write_all(std::string("* BAD literal too large\r\n"));
          if (lit->non_sync) {
            c.write_all("* BYE literal too large\r\n");
            alive = false;
          }
          cmd.clear();
          break;
        }
        if (!lit->non_sync) alive = c.write_all("+ OK\r\n");
        while (alive && c.in.size() < lit->size) {
          int r = c.fill(timeout_ms, false);
          if (r <= 0 && r != 2) alive = false;
        }
        if (!alive) break;
        cmd.append(c.in, 0, lit->size);
        c.in.erase(0, lit->size);
        if (cmd.size() > cfg->max_literal + cfg->max_line_length * 4ull) {
          c.write_all("* BYE command too large\r\n");
          alive = false;
        }
      }
      if (!alive || !complete) continue;
      out.clear();
      s.handle(cmd, out);
      alive = c.write_all(out);
    }
  }
  ::close(c.wake_fd);
  ::close(fd);
}

}  // namespace

Status serve(store::Store& store, const ServerOptions& options, const volatile bool* stop) {
  static AuthCache cache;
  static AuthThrottle throttle;
  auto colon = options.listen.rfind(':');
  if (colon == std::string::npos) return error(Code::config, "listen address needs host:port: " + options.listen);
  std::string host = options.listen.substr(0, colon);
  int port = atoi(options.listen.c_str() + colon + 1);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    ::close(fd);
    return error(Code::config, "bad listen address " + options.listen);
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 128) != 0) {
    std::string e = strerror(errno);
    ::close(fd);
    return error(Code::io, "cannot listen on " + options.listen + ": " + e);
  }
  log::info("listening on {}", options.listen);
  const ImapConfig* cfg = &options.config;
  while (!*stop) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 1000) <= 0) continue;
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    int c = ::accept4(fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
    if (c < 0) continue;
    char ip[INET_ADDRSTRLEN] = {0};
    inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
    bool loopback = (ntohl(peer.sin_addr.s_addr) >> 24) == 127;
    std::thread(run_connection, c, std::string(ip), loopback, &store, cfg, &cache, &throttle).detach();
  }
  ::close(fd);
  return Status::ok();
}

}  // namespace mail::imap
