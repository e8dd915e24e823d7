// Small Unix-socket helpers shared by the store protocol's client and server.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/status.h"

namespace mail::store {

// Connects to a listening Unix stream socket (close-on-exec). Nothing listening
// (no file, refused) is Code::unavailable; other failures Code::io.
Result<int> connect_unix(const std::string& path);

// Writes all of `data` (no SIGPIPE); a closed peer or timeout is Code::unavailable.
Status send_all(int fd, std::string_view data);

// One recv(2), retried on EINTR: bytes read, 0 at end of stream.
Result<size_t> recv_some(int fd, char* buf, size_t size);

// Send/receive timeouts (SO_SNDTIMEO/SO_RCVTIMEO); 0 clears.
void set_socket_timeouts(int fd, int send_ms, int recv_ms);

}  // namespace mail::store
