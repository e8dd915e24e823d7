#include "store/store_server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "base/log.h"
#include "store/unix_socket.h"

namespace mail::store {
namespace {

using wire::Frame;
using wire::FrameType;

// Events queued for a client that does not read them beyond this close it: a
// stuck IDLE client must not make the server hoard memory.
constexpr size_t kMaxQueuedEventBytes = 64u << 20;

// The answer to one request: an encoded response, the store's error, or "the
// body did not decode" (which ends the connection).
struct Outcome {
  bool bad_body = false;
  Status status;
  std::string body;
};

Outcome dispatch(Store& store, uint16_t opcode, std::string_view body) {
  switch (opcode) {
#define MAIL_DISPATCH_OP(code, name, Req, Resp) \
  case code: {                                  \
    Req req;                                    \
    if (!decode(body, req)) return {true, {}, {}}; \
    auto r = store.name(req);                   \
    if (!r.is_ok()) return {false, r.status(), {}}; \
    return {false, Status::ok(), encode(r.value())}; \
  }
    MAIL_STORE_OPS(MAIL_DISPATCH_OP)
#undef MAIL_DISPATCH_OP
  }
  return {false, error(Code::protocol, fmt::format("unknown opcode {}", opcode)), {}};
}

class WorkerPool {
 public:
  void start(size_t n) {
    for (size_t i = 0; i < n; ++i) threads_.emplace_back([this] { run(); });
  }
  void post(std::function<void()> task) {
    {
      std::lock_guard lock(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
  }
  // Runs what is queued, then joins.
  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
};

std::string error_frame(uint64_t id, Code code, std::string_view message) {
  return wire::frame_bytes(FrameType::error, id, 0, encode(wire::ErrorBody{code, std::string(message)}));
}

}  // namespace

struct ServerConnection : std::enable_shared_from_this<ServerConnection> {
  StoreServer::Impl* server = nullptr;
  int fd = -1;
  uint64_t serial = 0;
  std::string client = "?";  // the name from its hello
  std::thread reader;
  std::thread writer;
  std::atomic<bool> done{false};

  std::mutex mu;  // guards everything below
  std::condition_variable cv;
  std::deque<std::string> out;
  size_t out_bytes = 0;
  bool writer_stop = false;
  bool broken = false;      // the socket failed; nothing more is sent
  bool closing = false;     // a reason to close was logged; stop reading
  uint32_t in_flight = 0;
  std::map<uint64_t, std::unique_ptr<Subscription>> subs;

  void send(std::string frame) {
    {
      std::lock_guard lock(mu);
      if (broken) return;
      out_bytes += frame.size();
      out.push_back(std::move(frame));
    }
    cv.notify_all();
  }
  // Queues an event frame unless the client is too far behind, which closes it.
  void send_event(std::string frame);
  // Logs why the connection ends and makes the reader stop; requests in flight
  // still finish and their answers are flushed.
  void close_for(std::string_view reason);
  void read_loop();
  void write_loop();
  bool handshake(wire::FrameDecoder& decoder);
  void handle(Frame frame);
  void execute(const Frame& frame);
  void end_subscriptions();
};

struct StoreServer::Impl {
  Store& store;
  Options options;
  WorkerPool pool;
  int listen_fd = -1;
  std::string bound_path;  // removed at stop when we created it
  int wake[2] = {-1, -1};
  std::thread acceptor;
  std::atomic<bool> stopping{false};
  bool started = false;
  bool stopped = false;
  std::mutex stop_mu;

  mutable std::mutex mu;  // guards conns, next_serial
  std::list<std::shared_ptr<ServerConnection>> conns;
  uint64_t next_serial = 1;

  Impl(Store& s, Options o) : store(s), options(o) {}

  Status start(int fd);
  void accept_loop();
  void reap(bool all);
};

void ServerConnection::send_event(std::string frame) {
  bool too_slow = false;
  {
    std::lock_guard lock(mu);
    if (broken) return;
    if (out_bytes > kMaxQueuedEventBytes) {
      too_slow = true;
    } else {
      out_bytes += frame.size();
      out.push_back(std::move(frame));
    }
  }
  cv.notify_all();
  if (too_slow) close_for("it does not read its change events");
}

void ServerConnection::close_for(std::string_view reason) {
  {
    std::lock_guard lock(mu);
    if (closing) return;
    closing = true;
  }
  log::warn("store client #{} ({}): closing the connection: {}", serial, client, reason);
  std::lock_guard lock(mu);
  if (fd >= 0) ::shutdown(fd, SHUT_RD);  // wakes the reader
}

bool ServerConnection::handshake(wire::FrameDecoder& decoder) {
  char buf[4096];
  for (;;) {
    auto f = decoder.next();
    if (!f.is_ok()) {
      close_for(f.status().message());
      return false;
    }
    if (f->has_value()) {
      Frame& frame = **f;
      wire::Hello hello;
      std::string problem;
      if (frame.type != FrameType::hello) {
        problem = fmt::format("expected hello, got a {} frame", wire::frame_type_name(frame.type));
      } else if (!decode(frame.body, hello)) {
        problem = "undecodable hello";
      } else if (hello.magic != wire::kMagic) {
        problem = "wrong magic in hello (not a store client)";
      } else if (hello.version < wire::kMinProtocolVersion) {
        problem = fmt::format("unsupported protocol version {} (this server speaks {} to {})",
                              hello.version, wire::kMinProtocolVersion, wire::kProtocolVersion);
      }
      if (!hello.client_name.empty() && problem.empty()) client = hello.client_name;
      if (!problem.empty()) {
        send(error_frame(0, Code::protocol, problem));
        close_for(problem);
        return false;
      }
      wire::HelloOk ok{std::min(hello.version, wire::kProtocolVersion), server->store.backend_name(),
                       kFormatVersion};
      send(wire::frame_bytes(FrameType::hello_ok, 0, 0, encode(ok)));
      set_socket_timeouts(fd, static_cast<int>(server->options.send_timeout_ms), 0);
      log::debug("store client #{} ({}) connected", serial, client);
      return true;
    }
    auto n = recv_some(fd, buf, sizeof(buf));
    if (!n.is_ok()) {
      close_for(n.code() == Code::temporary ? std::string("no hello in time") : n.status().message());
      return false;
    }
    if (*n == 0) {
      Status st = decoder.finish();
      if (!st.is_ok()) close_for(st.message());
      return false;
    }
    decoder.feed(std::string_view(buf, *n));
  }
}

void ServerConnection::read_loop() {
  writer = std::thread([this] { write_loop(); });
  wire::FrameDecoder decoder(server->options.max_frame_bytes);
  if (handshake(decoder)) {
    std::vector<char> buf(64 * 1024);
    bool eof = false;
    while (!eof) {
      // Frames already buffered first, then more bytes.
      for (;;) {
        {
          std::lock_guard lock(mu);
          if (closing) break;
        }
        auto f = decoder.next();
        if (!f.is_ok()) {
          close_for(f.status().message());
          break;
        }
        if (!f->has_value()) break;
        handle(std::move(**f));
      }
      {
        std::lock_guard lock(mu);
        if (closing) break;
      }
      auto n = recv_some(fd, buf.data(), buf.size());
      if (!n.is_ok()) {
        close_for(n.status().message());
        break;
      }
      if (*n == 0) {
        eof = true;
        bool quiet;
        {
          std::lock_guard lock(mu);
          quiet = closing || server->stopping;
        }
        Status st = decoder.finish();
        if (!st.is_ok() && !quiet) close_for(st.message());
        break;
      }
      decoder.feed(std::string_view(buf.data(), *n));
    }
  }
  // Let requests in flight finish; their answers are still sent.
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return in_flight == 0; });
  }
  end_subscriptions();
  {
    std::lock_guard lock(mu);
    writer_stop = true;
  }
  cv.notify_all();
  writer.join();
  {
    std::lock_guard lock(mu);
    ::close(fd);
    fd = -1;
  }
  log::debug("store client #{} ({}) disconnected", serial, client);
  done = true;
}

void ServerConnection::write_loop() {
  for (;;) {
    std::string frame;
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return writer_stop || !out.empty(); });
      if (out.empty()) return;
      frame = std::move(out.front());
      out.pop_front();
      out_bytes -= frame.size();
    }
    // Coalesce what else is queued into one write.
    {
      std::lock_guard lock(mu);
      while (!out.empty() && frame.size() < (256u << 10)) {
        out_bytes -= out.front().size();
        frame += out.front();
        out.pop_front();
      }
    }
    Status st = send_all(fd, frame);
    if (!st.is_ok()) {
      {
        std::lock_guard lock(mu);
        broken = true;
        out.clear();
        out_bytes = 0;
      }
      close_for(st.message());
      std::unique_lock lock(mu);
      ::shutdown(fd, SHUT_RDWR);
      cv.wait(lock, [&] { return writer_stop; });
      return;
    }
  }
}

void ServerConnection::handle(Frame frame) {
  switch (frame.type) {
    case FrameType::request: {
      if (!wire::known_opcode(frame.opcode)) {
        std::string reason = fmt::format("unknown opcode {}", frame.opcode);
        send(error_frame(frame.id, Code::protocol, reason));
        close_for(reason);
        return;
      }
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return in_flight < server->options.max_in_flight || closing; });
        if (closing) return;
        ++in_flight;
      }
      server->pool.post([self = shared_from_this(), f = std::move(frame)] { self->execute(f); });
      return;
    }
    case FrameType::subscribe: {
      wire::SubscribeBody body;
      if (!decode(frame.body, body)) {
        send(error_frame(frame.id, Code::protocol, "undecodable subscribe"));
        close_for("undecodable subscribe");
        return;
      }
      bool taken;
      {
        std::lock_guard lock(mu);
        taken = subs.count(frame.id) > 0;
      }
      if (taken) {
        std::string reason = fmt::format("subscription id {} is already in use", frame.id);
        send(error_frame(frame.id, Code::protocol, reason));
        close_for(reason);
        return;
      }
      // The handler runs on the store's thread: it only queues the frame.
      std::weak_ptr<ServerConnection> weak = weak_from_this();
      uint64_t id = frame.id;
      auto sub = server->store.subscribe(body.account, [weak, id](const std::vector<ChangeEvent>& events) {
        auto self = weak.lock();
        if (!self) return;
        self->send_event(wire::frame_bytes(FrameType::event, id, 0, encode(wire::EventBody{events})));
      });
      if (!sub.is_ok()) {
        send(error_frame(id, sub.code(), sub.status().message()));
        return;
      }
      {
        std::lock_guard lock(mu);
        subs[id] = std::move(sub).value();
      }
      send(wire::frame_bytes(FrameType::ok, id, 0, {}));
      return;
    }
    case FrameType::unsubscribe: {
      std::unique_ptr<Subscription> sub;
      {
        std::lock_guard lock(mu);
        auto it = subs.find(frame.id);
        if (it != subs.end()) {
          sub = std::move(it->second);
          subs.erase(it);
        }
      }
      sub.reset();  // outside the lock: it may wait for a handler that queues a frame
      send(wire::frame_bytes(FrameType::ok, frame.id, 0, {}));
      return;
    }
    default: {
      std::string reason = fmt::format("unexpected {} frame from a client", wire::frame_type_name(frame.type));
      send(error_frame(frame.id, Code::protocol, reason));
      close_for(reason);
      return;
    }
  }
}

void ServerConnection::execute(const Frame& frame) {
  Outcome o;
  try {
    o = dispatch(server->store, frame.opcode, frame.body);
  } catch (const std::exception& e) {
    o = {false, error(Code::internal, fmt::format("{} failed: {}", wire::op_name(frame.opcode), e.what())), {}};
  }
  if (o.bad_body) {
    std::string reason = fmt::format("undecodable {} request", wire::op_name(frame.opcode));
    send(error_frame(frame.id, Code::protocol, reason));
    close_for(reason);
  } else if (o.status.is_ok()) {
    send(wire::frame_bytes(FrameType::ok, frame.id, frame.opcode, o.body));
  } else {
    send(error_frame(frame.id, o.status.code(), o.status.message()));
  }
  {
    std::lock_guard lock(mu);
    --in_flight;
  }
  cv.notify_all();
}

void ServerConnection::end_subscriptions() {
  std::map<uint64_t, std::unique_ptr<Subscription>> ending;
  {
    std::lock_guard lock(mu);
    ending.swap(subs);
  }
  ending.clear();
}

// ---- the server ------------------------------------------------------------------

namespace {

Result<int> bind_socket(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path))
    return error(Code::invalid, fmt::format("bad socket path: '{}'", path));
  std::memcpy(addr.sun_path, path.data(), path.size());

  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return error(Code::exists, fmt::format("{} exists and is not a socket", path));
    auto probe = connect_unix(path);
    if (probe.is_ok()) {
      ::close(*probe);
      return error(Code::busy, fmt::format("another server answers on {}", path));
    }
    if (probe.code() != Code::unavailable) return probe.status();
    log::info("removing stale socket {}", path);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      return error(Code::io, fmt::format("cannot remove stale socket {}: {}", path, std::strerror(errno)));
  }

  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return error(Code::io, fmt::format("socket: {}", std::strerror(errno)));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int e = errno;
    ::close(fd);
    return error(e == EADDRINUSE ? Code::busy : Code::io,
                 fmt::format("cannot bind {}: {}", path, std::strerror(e)));
  }
  if (::chmod(path.c_str(), 0660) != 0 || ::listen(fd, 128) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return error(Code::io, fmt::format("cannot listen on {}: {}", path, std::strerror(e)));
  }
  return fd;
}

}  // namespace

Status StoreServer::Impl::start(int fd) {
  if (started) {
    ::close(fd);
    return error(Code::invalid, "the store server is already serving");
  }
  if (::pipe2(wake, O_CLOEXEC) != 0) {
    ::close(fd);
    return error(Code::io, fmt::format("pipe: {}", std::strerror(errno)));
  }
  started = true;
  listen_fd = fd;
  size_t n = options.workers;
  if (n == 0) n = 2 * std::max(1u, std::thread::hardware_concurrency());
  pool.start(n);
  acceptor = std::thread([this] { accept_loop(); });
  return Status::ok();
}

void StoreServer::Impl::accept_loop() {
  while (!stopping) {
    pollfd fds[2] = {{listen_fd, POLLIN, 0}, {wake[0], POLLIN, 0}};
    int rc = ::poll(fds, 2, 1000);
    reap(false);
    if (rc < 0) {
      if (errno == EINTR) continue;
      log::error("store server: poll: {}", std::strerror(errno));
      return;
    }
    if (stopping) return;
    if (!(fds[0].revents & POLLIN)) continue;
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
        log::warn("store server: accept: {}", std::strerror(errno));
        // Out of descriptors: do not spin.
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      continue;
    }
    std::lock_guard lock(mu);
    if (conns.size() >= options.max_clients) {
      std::string msg = fmt::format("too many store clients (max_clients {})", options.max_clients);
      log::warn("store server: refusing a client: {}", msg);
      set_socket_timeouts(fd, 1000, 0);
      (void)send_all(fd, error_frame(0, Code::busy, msg));
      ::close(fd);
      continue;
    }
    auto c = std::make_shared<ServerConnection>();
    c->server = this;
    c->fd = fd;
    c->serial = next_serial++;
    set_socket_timeouts(fd, static_cast<int>(options.send_timeout_ms),
                        static_cast<int>(options.handshake_timeout_ms));
    c->reader = std::thread([c] { c->read_loop(); });
    conns.push_back(std::move(c));
  }
}

void StoreServer::Impl::reap(bool all) {
  std::list<std::shared_ptr<ServerConnection>> finished;
  {
    std::lock_guard lock(mu);
    for (auto it = conns.begin(); it != conns.end();) {
      if (all || (*it)->done) {
        finished.push_back(std::move(*it));
        it = conns.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : finished) c->reader.join();
}

StoreServer::StoreServer(Store& store) : StoreServer(store, Options()) {}
StoreServer::StoreServer(Store& store, Options options)
    : impl_(std::make_unique<Impl>(store, options)) {}
StoreServer::~StoreServer() { stop(); }

Status StoreServer::listen(const std::string& socket_path) {
  MAIL_ASSIGN_OR_RETURN(int fd, bind_socket(socket_path));
  Status st = impl_->start(fd);
  if (st.is_ok()) impl_->bound_path = socket_path;
  else ::unlink(socket_path.c_str());
  return st;
}

Status StoreServer::adopt(int listen_fd) {
  int accepting = 0;
  socklen_t len = sizeof(accepting);
  if (::getsockopt(listen_fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0 || !accepting)
    return error(Code::invalid, fmt::format("fd {} is not a listening socket", listen_fd));
  ::fcntl(listen_fd, F_SETFD, FD_CLOEXEC);
  return impl_->start(listen_fd);
}

void StoreServer::stop() {
  Impl& s = *impl_;
  std::lock_guard stop_lock(s.stop_mu);
  if (!s.started || s.stopped) return;
  s.stopped = true;
  s.stopping = true;
  char c = 1;
  ssize_t ignored = ::write(s.wake[1], &c, 1);
  (void)ignored;
  s.acceptor.join();
  ::close(s.listen_fd);
  if (!s.bound_path.empty()) ::unlink(s.bound_path.c_str());
  {
    std::lock_guard lock(s.mu);
    for (auto& conn : s.conns) {
      std::lock_guard clock(conn->mu);
      if (conn->fd >= 0) ::shutdown(conn->fd, SHUT_RD);
    }
  }
  s.reap(true);
  s.pool.stop();
  ::close(s.wake[0]);
  ::close(s.wake[1]);
}

size_t StoreServer::client_count() const {
  std::lock_guard lock(impl_->mu);
  return impl_->conns.size();
}

}  // namespace mail::store
