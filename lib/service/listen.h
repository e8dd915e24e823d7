// Listening sockets: parsed from "host:port", "[v6]:port" or "unix:/path",
// opened by the daemon itself (--listen, or the configuration), or inherited
// the systemd way (LISTEN_FDS/LISTEN_FDNAMES) from mail-master or systemd.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace mail::service {

struct ListenAddress {
  bool is_unix = false;
  std::string host;  // numeric address or name; "" binds every address
  uint16_t port = 0;
  std::string path;  // unix socket path
  std::string str() const;
};

Result<ListenAddress> parse_listen_address(std::string_view text);

// Binds and listens (close-on-exec, SO_REUSEADDR). A stale Unix socket file
// that nothing answers on is replaced; one that answers is Code::busy.
Result<int> open_listener(const ListenAddress& address, int backlog = 511);

struct Listener {
  std::string name;     // "mx", "submission", "imap", ...
  int fd = -1;
  std::string address;  // for logs and status
};

// Sockets handed down by a supervisor (LISTEN_PID is us, LISTEN_FDS counts fds
// from 3, LISTEN_FDNAMES names them). Unsets the variables so that children of
// this process do not take them too.
std::vector<Listener> inherited_listeners();

// The peer of a connected socket, "1.2.3.4:port" / "[::1]:port" / "unix".
std::string peer_address(int fd);
// The peer's IP alone ("1.2.3.4"), "" for Unix sockets.
std::string peer_ip(int fd);
bool is_loopback_peer(int fd);

}  // namespace mail::service
