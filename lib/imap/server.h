// Serving IMAP connections: a Server runs each accepted connection on the
// caller's thread (lib/service's accept loop gives every connection one), with
// blocking I/O and poll(2) on the socket, the daemon's stop fd and a wake fd
// that store change notifications write to, so IDLE sessions see changes at
// once. TLS: implicit on the imaps listener, STARTTLS on the plain one.
#pragma once

#include <memory>

#include "config/config.h"
#include "imap/session.h"
#include "store/store.h"

namespace mail::service {
class TlsContext;
}

namespace mail::imap {

class Server {
 public:
  // `tls` null: no implicit TLS and no STARTTLS.
  Server(store::Store& store, const ImapConfig& config, std::shared_ptr<service::TlsContext> tls);
  ~Server();

  // Serves one accepted connection until it ends; takes ownership of `fd`.
  // Thread-safe: called concurrently for every connection.
  void run(int fd, bool implicit_tls);

 private:
  store::Store& store_;
  ImapConfig config_;
  std::shared_ptr<service::TlsContext> tls_;
  AuthCache cache_;        // shared by all connections
  AuthThrottle throttle_;
  RecentTracker recent_;
};

}  // namespace mail::imap
