#include "service/tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "service/daemon.h"

namespace mail::service {

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  if (!e) return "unknown TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

namespace {

// Waits until fd is ready (or the daemon stops). 1 ready, 0 timeout, -1 stop/error.
int wait_fd(int fd, short events, int timeout_ms, bool interruptible = true) {
  pollfd p[2] = {{fd, events, 0}, {stop_fd(), POLLIN, 0}};
  int n;
  do {
    n = ::poll(p, interruptible ? 2 : 1, timeout_ms);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return -1;
  if (n == 0) return 0;
  if (p[0].revents) return 1;
  return -1;
}

}  // namespace

Status generate_self_signed(const std::string& cert_path, const std::string& key_path, const std::string& hostname) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (!key) return error(Code::internal, "key generation failed: " + openssl_error());
  X509* cert = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(cert), static_cast<long>(::time(nullptr)));
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 10L * 365 * 24 * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(hostname.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  std::string san = "DNS:" + hostname;
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
  if (X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, san.c_str())) {
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
  Status st;
  if (!X509_sign(cert, key, EVP_sha256())) st = error(Code::internal, "signing failed: " + openssl_error());
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(cert_path).parent_path(), ec);
  if (st.is_ok()) {
    mode_t old = ::umask(077);
    FILE* kf = std::fopen(key_path.c_str(), "w");
    ::umask(old);
    FILE* cf = std::fopen(cert_path.c_str(), "w");
    if (!kf || !cf || !PEM_write_PrivateKey(kf, key, nullptr, nullptr, 0, nullptr, nullptr) ||
        !PEM_write_X509(cf, cert))
      st = error(Code::io, "cannot write " + cert_path + " / " + key_path);
    if (kf) std::fclose(kf);
    if (cf) std::fclose(cf);
  }
  X509_free(cert);
  EVP_PKEY_free(key);
  return st;
}

Result<std::shared_ptr<TlsContext>> TlsContext::create_server(const TlsConfig& tls, const std::string& data_dir,
                                                              const std::string& hostname) {
  std::string cert = tls.cert_file, key = tls.key_file;
  if (cert.empty() && key.empty()) {
    cert = data_dir + "/tls/cert.pem";
    key = data_dir + "/tls/key.pem";
    // Several daemons start at once and each may find no certificate: the first
    // one to take the lock makes the pair, the others wait and load it.
    std::error_code ec;
    std::filesystem::create_directories(data_dir + "/tls", ec);
    int lock = ::open((data_dir + "/tls/.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock >= 0) ::flock(lock, LOCK_EX);
    Status made;
    if (!std::filesystem::exists(cert) || !std::filesystem::exists(key))
      made = generate_self_signed(cert, key, hostname.empty() ? "localhost" : hostname);
    if (lock >= 0) ::close(lock);
    MAIL_TRY(made);
  } else if (cert.empty() || key.empty()) {
    return error(Code::config, "tls.cert_file and tls.key_file must be set together");
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return error(Code::internal, "SSL_CTX_new: " + openssl_error());
  auto ctx_holder = std::shared_ptr<TlsContext>(new TlsContext(ctx));
  SSL_CTX_set_min_proto_version(ctx, tls.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1)
    return error(Code::config, "cannot load TLS certificate " + cert + ": " + openssl_error());
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1)
    return error(Code::config, "cannot load TLS key " + key + ": " + openssl_error());
  if (SSL_CTX_check_private_key(ctx) != 1)
    return error(Code::config, "TLS key " + key + " does not match certificate " + cert);
  return ctx_holder;
}

Result<std::shared_ptr<TlsContext>> TlsContext::create_client(bool verify) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) return error(Code::internal, "SSL_CTX_new: " + openssl_error());
  auto holder = std::shared_ptr<TlsContext>(new TlsContext(ctx));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (verify) {
    if (SSL_CTX_set_default_verify_paths(ctx) != 1)
      return error(Code::config, "cannot load the system's CA certificates: " + openssl_error());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);  // opportunistic TLS (RFC 7435)
  }
  return holder;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

Stream::Stream(int fd) : fd_(fd) {}

Stream::~Stream() {
  if (ssl_) {
    SSL_shutdown(ssl_);
    SSL_free(ssl_);
  }
  if (fd_ >= 0) ::close(fd_);
}

Status Stream::start_tls(const TlsContext& context, int timeout_ms) {
  if (ssl_) return error(Code::invalid, "TLS is already active");
  ssl_ = SSL_new(context.native());
  if (!ssl_) return error(Code::internal, "SSL_new: " + openssl_error());
  SSL_set_fd(ssl_, fd_);
  return handshake(false, timeout_ms);
}

Status Stream::start_tls_client(const TlsContext& context, const std::string& host, int timeout_ms) {
  if (ssl_) return error(Code::invalid, "TLS is already active");
  ssl_ = SSL_new(context.native());
  if (!ssl_) return error(Code::internal, "SSL_new: " + openssl_error());
  SSL_set_fd(ssl_, fd_);
  if (!host.empty()) {
    SSL_set_tlsext_host_name(ssl_, host.c_str());
    SSL_set1_host(ssl_, host.c_str());
  }
  return handshake(true, timeout_ms);
}

Status Stream::handshake(bool client, int timeout_ms) {
  for (;;) {
    int rc = client ? SSL_connect(ssl_) : SSL_accept(ssl_);
    if (rc == 1) return Status::ok();
    int err = SSL_get_error(ssl_, rc);
    short events = err == SSL_ERROR_WANT_READ ? POLLIN : err == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
    if (!events) {
      std::string why = openssl_error();
      SSL_free(ssl_);
      ssl_ = nullptr;
      return error(Code::protocol, "TLS handshake failed: " + why);
    }
    int w = wait_fd(fd_, events, timeout_ms);
    if (w <= 0) {
      SSL_free(ssl_);
      ssl_ = nullptr;
      return error(w == 0 ? Code::temporary : Code::unavailable, "TLS handshake timed out");
    }
  }
}

std::string Stream::tls_description() const {
  if (!ssl_) return "";
  return std::string(SSL_get_version(ssl_)) + " with cipher " + SSL_get_cipher_name(ssl_);
}

Result<size_t> Stream::read_some(char* buf, size_t size, int timeout_ms) {
  for (;;) {
    if (ssl_) {
      size_t got = 0;
      int rc = SSL_read_ex(ssl_, buf, size, &got);
      if (rc == 1) return got;
      int err = SSL_get_error(ssl_, rc);
      if (err == SSL_ERROR_ZERO_RETURN) return size_t{0};
      short events = err == SSL_ERROR_WANT_READ ? POLLIN : err == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
      if (!events) {
        ERR_clear_error();
        return size_t{0};  // a broken TLS session reads as a closed connection
      }
      int w = wait_fd(fd_, events, timeout_ms, interruptible_);
      if (w == 0) return error(Code::temporary, "timed out");
      if (w < 0) return error(Code::unavailable, "stopping");
      continue;
    }
    int w = wait_fd(fd_, POLLIN, timeout_ms, interruptible_);
    if (w == 0) return error(Code::temporary, "timed out");
    if (w < 0) return error(Code::unavailable, "stopping");
    ssize_t n = ::recv(fd_, buf, size, 0);
    if (n > 0) return static_cast<size_t>(n);
    if (n == 0) return size_t{0};
    if (errno == EINTR || errno == EAGAIN) continue;
    return size_t{0};  // connection reset: same as closed
  }
}

Status Stream::write_all(std::string_view data) {
  while (!data.empty()) {
    if (ssl_) {
      size_t put = 0;
      int rc = SSL_write_ex(ssl_, data.data(), data.size(), &put);
      if (rc == 1) {
        data.remove_prefix(put);
        continue;
      }
      int err = SSL_get_error(ssl_, rc);
      short events = err == SSL_ERROR_WANT_READ ? POLLIN : err == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
      if (!events || wait_fd(fd_, events, 60000) <= 0) {
        ERR_clear_error();
        return error(Code::unavailable, "connection lost");
      }
      continue;
    }
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EINTR)) continue;
    if (n < 0 && errno == EAGAIN) {
      if (wait_fd(fd_, POLLOUT, 60000) <= 0) return error(Code::unavailable, "connection lost");
      continue;
    }
    return error(Code::unavailable, std::string("connection lost: ") + std::strerror(errno));
  }
  return Status::ok();
}

}  // namespace mail::service
