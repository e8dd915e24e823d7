// The IMAP listener: one thread per connection, blocking I/O with poll(2) so a
// store change wakes an IDLE session at once. (To be moved onto lib/service's
// event loop when it lands.)
#pragma once

#include <string>

#include "base/status.h"
#include "config/config.h"
#include "store/store.h"

namespace mail::imap {

struct ServerOptions {
  std::string listen = "127.0.0.1:1430";  // host:port
  ImapConfig config;
};

// Binds and serves until `stop` becomes true (checked once a second). Returns
// only on a bind error or after stop.
Status serve(store::Store& store, const ServerOptions& options, const volatile bool* stop);

}  // namespace mail::imap
