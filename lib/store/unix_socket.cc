#include "store/unix_socket.h"

#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mail::store {

Result<int> connect_unix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path))
    return error(Code::invalid, fmt::format("socket path too long: {}", path));
  std::memcpy(addr.sun_path, path.data(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return error(Code::io, fmt::format("socket: {}", std::strerror(errno)));
  int rc;
  do {
    rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    int e = errno;
    ::close(fd);
    Code code = (e == ENOENT || e == ECONNREFUSED || e == ENOTDIR) ? Code::unavailable : Code::io;
    return error(code, fmt::format("cannot connect to {}: {}", path, std::strerror(e)));
  }
  return fd;
}

Status send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return error(Code::unavailable, fmt::format("send: {}", std::strerror(errno)));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::ok();
}

Result<size_t> recv_some(int fd, char* buf, size_t size) {
  for (;;) {
    ssize_t n = ::recv(fd, buf, size, 0);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    Code code = (errno == EAGAIN || errno == EWOULDBLOCK) ? Code::temporary : Code::unavailable;
    return error(code, fmt::format("recv: {}", std::strerror(errno)));
  }
}

void set_socket_timeouts(int fd, int send_ms, int recv_ms) {
  timeval snd{send_ms / 1000, (send_ms % 1000) * 1000};
  timeval rcv{recv_ms / 1000, (recv_ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd));
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv));
}

}  // namespace mail::store
