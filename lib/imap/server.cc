#include "imap/server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "imap/session.h"
#include "service/daemon.h"
#include "service/tls.h"

namespace mail::imap {

namespace {

// One client connection: the socket, TLS once started, COMPRESS=DEFLATE once
// started (inside TLS: compressed bytes go through SSL), and the wake eventfd.
struct Conn {
  int fd = -1;
  int wake_fd = -1;
  SSL* ssl = nullptr;
  std::string in;  // bytes read (inflated), not yet consumed
  bool deflating = false;
  z_stream zin{}, zout{};
  // Compressed bytes read but not inflated yet: one fill inflates at most
  // kInflateStep, so a small hostile chunk (deflate expands up to ~1000x) cannot
  // balloon `in` before the line and literal limits see it.
  std::string zpending;
  bool inflate_more = false;  // the last step filled its output: zlib may hold more
  static constexpr size_t kInflateStep = 256 * 1024;

  ~Conn() {
    if (deflating) {
      inflateEnd(&zin);
      deflateEnd(&zout);
    }
    if (ssl) {
      SSL_shutdown(ssl);
      SSL_free(ssl);
    }
    if (wake_fd >= 0) ::close(wake_fd);
  }

  // RFC 4978: raw DEFLATE both ways. Bytes already read are compressed ones
  // (the client starts compressing once it has read our OK).
  bool start_compress() {
    if (inflateInit2(&zin, -15) != Z_OK) return false;
    if (deflateInit2(&zout, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      inflateEnd(&zin);
      return false;
    }
    deflating = true;
    zpending = std::move(in);
    in.clear();
    return inflate_some();
  }

  // Inflates pending compressed bytes into `in`, up to kInflateStep of output.
  bool inflate_some() {
    zin.next_in = reinterpret_cast<Bytef*>(zpending.data());
    zin.avail_in = static_cast<uInt>(zpending.size());
    char buf[65536];
    size_t produced = 0;
    do {  // output space left over means all input was used
      zin.next_out = reinterpret_cast<Bytef*>(buf);
      zin.avail_out = sizeof buf;
      int r = inflate(&zin, Z_SYNC_FLUSH);
      if (r != Z_OK && r != Z_BUF_ERROR) return false;  // corrupt stream, or the client ended it
      in.append(buf, sizeof buf - zin.avail_out);
      produced += sizeof buf - zin.avail_out;
    } while (zin.avail_out == 0 && produced < kInflateStep);
    zpending.erase(0, zpending.size() - zin.avail_in);
    inflate_more = zin.avail_out == 0;
    return true;
  }

  bool write_all(std::string_view s) {
    if (!deflating) return write_raw(s);
    // One sync flush per response batch: the client can decode all of it now.
    zout.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(s.data()));
    zout.avail_in = static_cast<uInt>(s.size());
    char buf[65536];
    do {
      zout.next_out = reinterpret_cast<Bytef*>(buf);
      zout.avail_out = sizeof buf;
      if (deflate(&zout, Z_SYNC_FLUSH) == Z_STREAM_ERROR) return false;
      if (!write_raw(std::string_view(buf, sizeof buf - zout.avail_out))) return false;
    } while (zout.avail_out == 0);
    return true;
  }

  bool write_raw(std::string_view s) {
    size_t off = 0;
    while (off < s.size()) {
      if (ssl) {
        int chunk = static_cast<int>(std::min<size_t>(s.size() - off, 1 << 30));
        int n = SSL_write(ssl, s.data() + off, chunk);
        if (n <= 0) return false;
        off += static_cast<size_t>(n);
        continue;
      }
      ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  // Reads more bytes; waits on the wake fd too when `wakeable`.
  // Returns 1 data, 2 woken, 0 closed/error, -1 timeout, -2 the daemon is stopping.
  int fill(int timeout_ms, bool wakeable) {
    if (deflating && (inflate_more || !zpending.empty())) return inflate_some() ? 1 : 0;
    if (!(ssl && SSL_pending(ssl) > 0)) {
      pollfd p[3] = {{fd, POLLIN, 0}, {service::stop_fd(), POLLIN, 0}, {wake_fd, POLLIN, 0}};
      int r = ::poll(p, wakeable ? 3 : 2, timeout_ms);
      if (r == 0) return -1;
      if (r < 0) return errno == EINTR ? 2 : 0;
      if (p[1].revents & POLLIN) return -2;
      if (wakeable && (p[2].revents & POLLIN)) {
        uint64_t v;
        (void)!::read(wake_fd, &v, sizeof v);
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) return 2;
      }
    }
    char buf[65536];
    ssize_t n;
    if (ssl) {
      n = SSL_read(ssl, buf, sizeof buf);
    } else {
      n = ::recv(fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) return 2;
    }
    if (n <= 0) return 0;
    if (deflating) {
      zpending.append(buf, static_cast<size_t>(n));
      return inflate_some() ? 1 : 0;
    }
    in.append(buf, static_cast<size_t>(n));
    return 1;
  }

  bool start_tls(SSL_CTX* ctx, int timeout_ms) {
    ssl = SSL_new(ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1) return false;
    // Bound the handshake: a silent peer must not hold the thread forever.
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int r = SSL_accept(ssl);
    timeval zero{0, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &zero, sizeof zero);
    if (r != 1) {
      log::debug("TLS handshake failed: {}", service::openssl_error());
      SSL_free(ssl);
      ssl = nullptr;
      return false;
    }
    return true;
  }
};

// Reads one complete command (its lines with their literals inline) into `cmd`.
// Returns false when the connection is over (closed, timeout, limits).
// Continuation lines (IDLE's DONE, AUTHENTICATE data) come back with
// `continuation` set.
enum class ReadResult { command, continuation, closed };

ReadResult read_command(Conn& c, Session& s, const ImapConfig& cfg, std::string& cmd) {
  const int timeout_ms = static_cast<int>(std::min<uint64_t>(cfg.idle_timeout_s, 86400)) * 1000;
  cmd.clear();
  size_t scan = 0;
  while (true) {
    size_t nl = c.in.find('\n', scan);
    if (nl == std::string::npos) {
      if (c.in.size() > cfg.max_line_length) {
        c.write_all("* BYE line too long\r\n");
        return ReadResult::closed;
      }
      scan = c.in.size();
      int r = c.fill(timeout_ms, s.idling());
      if (r == 0) return ReadResult::closed;
      if (r == -2) {
        c.write_all("* BYE server shutting down\r\n");
        return ReadResult::closed;
      }
      if (r == -1) {
        c.write_all("* BYE autologout; idle for too long\r\n");
        return ReadResult::closed;
      }
      if (r == 2) {
        std::string out;
        s.on_wake(out);
        if (!out.empty() && !c.write_all(out)) return ReadResult::closed;
      }
      continue;
    }
    if (nl > cfg.max_line_length) {
      c.write_all("* BYE line too long\r\n");
      return ReadResult::closed;
    }
    std::string line = c.in.substr(0, nl + 1);
    c.in.erase(0, nl + 1);
    scan = 0;
    if (s.wants_continuation() && cmd.empty()) {
      cmd = std::move(line);
      return ReadResult::continuation;
    }
    cmd += line;
    std::string_view body(line);
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.remove_suffix(1);
    auto lit = literal_at_end(body);
    if (!lit) return ReadResult::command;
    if (lit->size > cfg.max_literal) {
      if (lit->non_sync) {  // its bytes are already on the way and cannot be skipped
        c.write_all("* BYE literal too large\r\n");
        return ReadResult::closed;
      }
      // Refuse a synchronizing literal: the client will not send it.
      Parser tp(cmd);
      auto tag = tp.tag();
      std::string t = tag ? *tag : "*";
      if (!c.write_all(t + " NO [TOOBIG] literal too large\r\n")) return ReadResult::closed;
      cmd.clear();
      continue;
    }
    if (cmd.size() + lit->size > cfg.max_literal + cfg.max_line_length * 4ull) {
      c.write_all("* BYE command too large\r\n");
      return ReadResult::closed;
    }
    if (!lit->non_sync && !c.write_all("+ OK\r\n")) return ReadResult::closed;
    while (c.in.size() < lit->size) {
      int r = c.fill(timeout_ms, false);
      if (r == 0 || r < 0) return ReadResult::closed;
    }
    cmd.append(c.in, 0, lit->size);
    c.in.erase(0, lit->size);
  }
}

}  // namespace

Server::Server(store::Store& store, const ImapConfig& config, std::shared_ptr<service::TlsContext> tls)
    : store_(store), config_(config), tls_(std::move(tls)) {}
Server::~Server() = default;

void Server::run(int fd, bool implicit_tls) {
  SSL_CTX* ctx = tls_ ? tls_->native() : nullptr;
  {
    Conn c;
    c.fd = fd;
    c.wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    bool alive = c.wake_fd >= 0;
    if (alive && implicit_tls) alive = ctx && c.start_tls(ctx, 30000);
    if (alive) {
      SessionEnv env;
      env.store = &store_;
      env.config = &config_;
      env.auth_cache = &cache_;
      env.throttle = &throttle_;
      env.recent = &recent_;
      env.peer_ip = service::peer_ip(fd);
      env.loopback = service::is_loopback_peer(fd);
      env.tls = implicit_tls;
      env.starttls_available = ctx != nullptr && !implicit_tls;
      int wfd = c.wake_fd;
      env.wake = [wfd] {
        uint64_t v = 1;
        (void)!::write(wfd, &v, sizeof v);
      };
      env.flush = [&c](std::string_view s) { return c.write_all(s); };
      Session s(std::move(env));
      alive = c.write_all(s.greeting());
      std::string cmd, out;
      while (alive && s.state() != State::logout) {
        ReadResult rr = read_command(c, s, config_, cmd);
        if (rr == ReadResult::closed) break;
        out.clear();
        if (rr == ReadResult::continuation) s.handle_continuation(cmd, out);
        else s.handle(cmd, out);
        alive = c.write_all(out);
        if (alive && s.compress_pending()) {
          alive = c.start_compress();
          s.compress_started();
        }
        if (alive && s.starttls_pending()) {
          // Anything the client pipelined after STARTTLS was sent in the clear:
          // drop it (RFC 9051 11.1, command injection).
          c.in.clear();
          alive = c.start_tls(ctx, 30000);
          if (alive) s.tls_started();
        }
      }
    }
  }
  ::close(fd);
}

}  // namespace mail::imap
