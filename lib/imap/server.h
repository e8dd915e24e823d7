// The IMAP listeners: one thread per connection, blocking I/O with poll(2) so a
// store change wakes an IDLE session at once. TLS through OpenSSL: implicit TLS
// on `listen_tls`, STARTTLS on `listen` whenever a certificate is configured.
// (To be moved onto lib/service's event loop when it lands.)
#pragma once

#include <atomic>
#include <string>

#include "base/status.h"
#include "config/config.h"
#include "store/store.h"

namespace mail::imap {

struct ServerOptions {
  std::string listen = "127.0.0.1:1430";  // host:port, "[v6]:port"; empty: no plain listener
  std::string listen_tls;                 // implicit TLS listener; empty: none
  std::string cert_file;                  // PEM chain; empty: no TLS at all (no STARTTLS)
  std::string key_file;                   // PEM key; empty: the key is in cert_file
  std::string tls_min_version = "1.2";    // "1.2" or "1.3"
  ImapConfig config;
};

// Binds every configured listener and serves until `stop` becomes true (checked
// several times a second), then closes the connections and waits for their
// threads. Returns at once on a bind or TLS set-up error.
Status serve(store::Store& store, const ServerOptions& options, const std::atomic<bool>* stop);

// "host:port" / "[v6]:port" split; Code::config when malformed.
struct HostPort {
  std::string host;
  uint16_t port = 0;
};
Result<HostPort> parse_host_port(const std::string& text);

}  // namespace mail::imap
