// TLS for the protocol servers (OpenSSL, TLS 1.2 or newer only), and a socket
// stream that starts in plain text and can be upgraded (STARTTLS) or start in
// TLS (implicit TLS ports). OpenSSL types stay out of this header.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "config/config.h"

struct ssl_ctx_st;
struct ssl_st;

namespace mail::service {

class TlsContext {
 public:
  // Server context from tls.cert_file/key_file; when both are unset, uses
  // <data_dir>/tls/cert.pem and key.pem, generating a self-signed pair for
  // `hostname` the first time (the demo).
  static Result<std::shared_ptr<TlsContext>> create_server(const TlsConfig& tls, const std::string& data_dir,
                                                           const std::string& hostname);
  // Client context (outbound SMTP): with `verify`, the peer's chain must verify
  // against the system's CAs and match the name given to start_tls_client().
  static Result<std::shared_ptr<TlsContext>> create_client(bool verify);
  ~TlsContext();
  ssl_ctx_st* native() const { return ctx_; }

 private:
  explicit TlsContext(ssl_ctx_st* ctx) : ctx_(ctx) {}
  ssl_ctx_st* ctx_;
};

// The oldest error on this thread's OpenSSL error queue, as text; clears the queue.
std::string openssl_error();

// Writes a self-signed certificate (EC P-256, 10 years) and its key (mode 0600).
Status generate_self_signed(const std::string& cert_path, const std::string& key_path, const std::string& hostname);

// A connected socket that owns its fd; plain until start_tls().
class Stream {
 public:
  explicit Stream(int fd);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  int fd() const { return fd_; }
  // Server side handshake; on failure the stream is unusable.
  Status start_tls(const TlsContext& context, int timeout_ms = 30000);
  // Client side handshake with SNI `host` (checked when the context verifies).
  Status start_tls_client(const TlsContext& context, const std::string& host, int timeout_ms = 30000);
  bool is_tls() const { return ssl_ != nullptr; }
  // "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384" for Received headers and logs.
  std::string tls_description() const;

  // Reads at least one byte, waiting up to timeout_ms. 0 bytes: the peer closed.
  // Code::temporary: timed out; Code::unavailable: the daemon is stopping.
  Result<size_t> read_some(char* buf, size_t size, int timeout_ms);
  Status write_all(std::string_view data);

  // While false, a stopping daemon does not interrupt reads: a session in the
  // middle of a transaction (SMTP DATA) finishes within the drain time.
  void set_interruptible(bool interruptible) { interruptible_ = interruptible; }

 private:
  int fd_;
  Status handshake(bool client, int timeout_ms);
  bool interruptible_ = true;
  ssl_st* ssl_ = nullptr;
};

}  // namespace mail::service
