#include "service/listen.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>

namespace mail::service {

std::string ListenAddress::str() const {
  if (is_unix) return "unix:" + path;
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Result<ListenAddress> parse_listen_address(std::string_view text) {
  ListenAddress a;
  if (text.rfind("unix:", 0) == 0) {
    a.is_unix = true;
    a.path = std::string(text.substr(5));
    if (a.path.empty() || a.path.size() >= sizeof(sockaddr_un::sun_path))
      return error(Code::invalid, "bad unix socket path in '" + std::string(text) + "'");
    return a;
  }
  std::string_view host, port;
  if (!text.empty() && text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return error(Code::invalid, "expected [address]:port, got '" + std::string(text) + "'");
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return error(Code::invalid, "expected host:port, got '" + std::string(text) + "'");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
    return error(Code::invalid, "bad port in '" + std::string(text) + "'");
  a.host = std::string(host == "*" ? "" : host);
  a.port = static_cast<uint16_t>(value);
  return a;
}

namespace {

bool unix_socket_answers(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  return ok;
}

Result<int> open_unix(const ListenAddress& a, int backlog) {
  if (unix_socket_answers(a.path)) return error(Code::busy, "something already listens on " + a.str());
  ::unlink(a.path.c_str());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return error(Code::io, std::string("socket: ") + std::strerror(errno));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, a.path.c_str(), sizeof sa.sun_path - 1);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, backlog) != 0) {
    int err = errno;
    ::close(fd);
    return error(Code::io, "cannot listen on " + a.str() + ": " + std::strerror(err));
  }
  ::chmod(a.path.c_str(), 0660);
  return fd;
}

}  // namespace

Result<int> open_listener(const ListenAddress& a, int backlog) {
  if (a.is_unix) return open_unix(a, backlog);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port = std::to_string(a.port);
  int rc = ::getaddrinfo(a.host.empty() ? nullptr : a.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) return error(Code::config, "cannot resolve " + a.str() + ": " + gai_strerror(rc));
  int fd = -1;
  std::string last_error = "no address";
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, backlog) == 0) break;
    last_error = std::strerror(errno);
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  if (fd < 0) return error(errno == EACCES ? Code::denied : Code::io, "cannot listen on " + a.str() + ": " + last_error);
  return fd;
}

std::vector<Listener> inherited_listeners() {
  std::vector<Listener> out;
  const char* pid = std::getenv("LISTEN_PID");
  const char* fds = std::getenv("LISTEN_FDS");
  if (!pid || !fds || std::atol(pid) != static_cast<long>(::getpid())) return out;
  int count = std::atoi(fds);
  std::vector<std::string> names;
  if (const char* n = std::getenv("LISTEN_FDNAMES")) {
    std::string all = n;
    size_t start = 0;
    for (;;) {
      size_t colon = all.find(':', start);
      names.push_back(all.substr(start, colon - start));
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
  }
  for (int i = 0; i < count; ++i) {
    Listener l;
    l.fd = 3 + i;
    ::fcntl(l.fd, F_SETFD, FD_CLOEXEC);
    l.name = i < static_cast<int>(names.size()) ? names[i] : "";
    l.address = "inherited:" + std::to_string(l.fd);
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(l.fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      char host[INET6_ADDRSTRLEN] = {};
      if (ss.ss_family == AF_INET) {
        auto* s = reinterpret_cast<sockaddr_in*>(&ss);
        inet_ntop(AF_INET, &s->sin_addr, host, sizeof host);
        l.address = std::string(host) + ":" + std::to_string(ntohs(s->sin_port));
      } else if (ss.ss_family == AF_INET6) {
        auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
        inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof host);
        l.address = "[" + std::string(host) + "]:" + std::to_string(ntohs(s->sin6_port));
      } else if (ss.ss_family == AF_UNIX) {
        l.address = std::string("unix:") + reinterpret_cast<sockaddr_un*>(&ss)->sun_path;
      }
    }
    out.push_back(l);
  }
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  return out;
}

namespace {
bool peer(int fd, std::string& ip, uint16_t& port, bool& loopback) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return false;
  char host[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    auto* s = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &s->sin_addr, host, sizeof host);
    port = ntohs(s->sin_port);
    loopback = (ntohl(s->sin_addr.s_addr) >> 24) == 127;
  } else if (ss.ss_family == AF_INET6) {
    auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof host);
    port = ntohs(s->sin6_port);
    loopback = IN6_IS_ADDR_LOOPBACK(&s->sin6_addr);
    if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr)) loopback = s->sin6_addr.s6_addr[12] == 127;
  } else {
    ip.clear();
    port = 0;
    loopback = true;  // a Unix socket is local by construction
    return true;
  }
  ip = host;
  return true;
}
}  // namespace

std::string peer_address(int fd) {
  std::string ip;
  uint16_t port = 0;
  bool loopback = false;
  if (!peer(fd, ip, port, loopback)) return "unknown";
  if (ip.empty()) return "unix";
  if (ip.find(':') != std::string::npos) return "[" + ip + "]:" + std::to_string(port);
  return ip + ":" + std::to_string(port);
}

std::string peer_ip(int fd) {
  std::string ip;
  uint16_t port = 0;
  bool loopback = false;
  peer(fd, ip, port, loopback);
  return ip;
}

bool is_loopback_peer(int fd) {
  std::string ip;
  uint16_t port = 0;
  bool loopback = false;
  return peer(fd, ip, port, loopback) && loopback;
}

}  // namespace mail::service
