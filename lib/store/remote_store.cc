#include "store/remote_store.h"

#include <fmt/format.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "base/log.h"
#include "store/unix_socket.h"
#include "store/wire.h"

namespace mail::store {
namespace {

using wire::Frame;
using wire::FrameType;

constexpr int kHandshakeTimeoutMs = 10000;

// One caller waiting for the answer with its id.
struct Waiter {
  std::condition_variable cv;
  bool done = false;
  FrameType type = FrameType::error;
  std::string body;
  Status failure;  // the connection was lost before the answer came
};

// One socket connection; replaced by a new one after it is lost.
struct ClientConn {
  int fd = -1;
  std::thread reader;
  std::mutex write_mu;  // one frame at a time on the socket
  std::mutex mu;        // guards pending, dead
  std::map<uint64_t, Waiter*> pending;
  bool dead = false;

  ~ClientConn() {
    if (fd >= 0) ::close(fd);
  }
  bool alive() {
    std::lock_guard lock(mu);
    return !dead;
  }
  // Fails every waiting call and wakes the reader; the socket is closed when
  // the last user lets go of this object, so no one writes to a reused fd.
  void fail(const Status& st) {
    std::lock_guard lock(mu);
    if (dead) return;
    dead = true;
    for (auto& [id, w] : pending) {
      w->failure = st;
      w->done = true;
      w->cv.notify_all();
    }
    pending.clear();
    ::shutdown(fd, SHUT_RDWR);
  }
};

// Reads frames until one is complete (the handshake, before the reader runs).
Result<Frame> read_one_frame(int fd, wire::FrameDecoder& decoder) {
  char buf[4096];
  for (;;) {
    auto f = decoder.next();
    if (!f.is_ok()) return f.status();
    if (f->has_value()) return std::move(**f);
    auto n = recv_some(fd, buf, sizeof(buf));
    if (!n.is_ok()) {
      if (n.code() == Code::temporary) return error(Code::unavailable, "mail-stored did not answer hello in time");
      return n.status();
    }
    if (*n == 0) return error(Code::unavailable, "mail-stored closed the connection during hello");
    decoder.feed(std::string_view(buf, *n));
  }
}

Status error_status(std::string_view body) {
  wire::ErrorBody e;
  if (!decode(body, e)) return error(Code::protocol, "undecodable error frame from mail-stored");
  if (e.code == Code::ok) return error(Code::protocol, "error frame with code ok from mail-stored");
  return Status(e.code, std::move(e.message));
}

}  // namespace

struct RemoteStore::Shared : std::enable_shared_from_this<Shared> {
  std::string path;
  std::string client_name;
  uint32_t max_frame_bytes = wire::kDefaultMaxFrameBytes;
  std::atomic<uint64_t> next_id{1};

  std::mutex conn_mu;  // guards conn, backend, closed, connected_once; serialises reconnects
  std::shared_ptr<ClientConn> conn;
  std::string backend;
  bool closed = false;
  bool connected_once = false;

  // Subscriptions and the thread their handlers run on.
  struct Sub {
    AccountId account = 0;
    bool active = false;  // the server acknowledged it; re-subscribed after a reconnect
    std::shared_ptr<ChangeHandler> handler;
  };
  std::mutex ev_mu;  // guards everything below
  std::condition_variable ev_cv;
  std::map<uint64_t, Sub> subs;
  std::deque<std::pair<uint64_t, std::vector<ChangeEvent>>> events;
  std::thread ev_thread;
  std::thread::id ev_thread_id;
  bool ev_stop = false;
  uint64_t running = 0;  // the subscription whose handler runs now

  Result<std::shared_ptr<ClientConn>> connection();
  Result<std::shared_ptr<ClientConn>> open_connection();
  void read_loop(ClientConn* c);
  Result<std::string> call(FrameType type, uint16_t opcode, std::string_view body, uint64_t id);
  void send_oneway(FrameType type, uint64_t id, std::string_view body);
  void start_event_thread();
  void event_loop();
  void close();
};

Result<std::shared_ptr<ClientConn>> RemoteStore::Shared::open_connection() {
  MAIL_ASSIGN_OR_RETURN(int fd, connect_unix(path));
  auto c = std::make_shared<ClientConn>();
  c->fd = fd;
  set_socket_timeouts(fd, kHandshakeTimeoutMs, kHandshakeTimeoutMs);
  wire::Hello hello{std::string(wire::kMagic), wire::kProtocolVersion, client_name};
  Status sent = send_all(fd, wire::frame_bytes(FrameType::hello, 0, 0, encode(hello)));
  // A server that refuses us (too many clients) may have answered and closed
  // before our hello arrived: its error frame says more than our failed send.
  wire::FrameDecoder decoder(max_frame_bytes);
  auto read = read_one_frame(fd, decoder);
  if (!read.is_ok()) return sent.is_ok() ? read.status() : sent;
  Frame f = std::move(read).value();
  if (f.type == FrameType::error) return error_status(f.body);
  wire::HelloOk ok;
  if (f.type != FrameType::hello_ok || !decode(f.body, ok))
    return error(Code::protocol, fmt::format("{} is not mail-stored (no hello_ok)", path));
  if (ok.version < wire::kMinProtocolVersion || ok.version > wire::kProtocolVersion)
    return error(Code::protocol, fmt::format("mail-stored speaks protocol version {}, this client {} to {}",
                                             ok.version, wire::kMinProtocolVersion, wire::kProtocolVersion));
  if (decoder.buffered() != 0) return error(Code::protocol, "mail-stored sent frames before hello_ok was read");
  set_socket_timeouts(fd, 0, 0);
  backend = ok.backend;
  c->reader = std::thread([this, raw = c.get()] { read_loop(raw); });
  return c;
}

Result<std::shared_ptr<ClientConn>> RemoteStore::Shared::connection() {
  std::lock_guard lock(conn_mu);
  if (closed) return error(Code::unavailable, "the store client is closed");
  if (conn && conn->alive()) return conn;
  if (conn) {
    if (conn->reader.joinable()) conn->reader.join();
    conn.reset();
  }
  MAIL_ASSIGN_OR_RETURN(conn, open_connection());
  bool reconnect = connected_once;
  connected_once = true;
  if (reconnect) {
    // Subscriptions continue on the new connection. Events committed while we
    // were away are gone, so each handler gets a "mailbox" event with mailbox 0:
    // something may have changed, look again.
    std::vector<std::pair<uint64_t, AccountId>> again;
    {
      std::lock_guard elock(ev_mu);
      for (auto& [id, sub] : subs) {
        if (!sub.active) continue;
        again.emplace_back(id, sub.account);
        events.emplace_back(id, std::vector<ChangeEvent>{ChangeEvent{sub.account, 0, ChangeKind::mailbox, 0, {}}});
      }
    }
    ev_cv.notify_all();
    std::lock_guard wlock(conn->write_mu);
    for (auto& [id, account] : again) {
      Status st = send_all(conn->fd, wire::frame_bytes(FrameType::subscribe, id, 0,
                                                       encode(wire::SubscribeBody{account})));
      if (!st.is_ok()) break;  // the reader notices the loss
    }
  }
  return conn;
}

void RemoteStore::Shared::read_loop(ClientConn* c) {
  wire::FrameDecoder decoder(max_frame_bytes);
  std::vector<char> buf(64 * 1024);
  Status lost;
  for (;;) {
    auto n = recv_some(c->fd, buf.data(), buf.size());
    if (!n.is_ok()) {
      lost = error(Code::unavailable, fmt::format("connection to mail-stored lost: {}", n.status().message()));
      break;
    }
    if (*n == 0) {
      lost = error(Code::unavailable, "mail-stored closed the connection");
      break;
    }
    decoder.feed(std::string_view(buf.data(), *n));
    for (;;) {
      auto f = decoder.next();
      if (!f.is_ok()) {
        lost = error(Code::unavailable, fmt::format("bad frame from mail-stored: {}", f.status().message()));
        break;
      }
      if (!f->has_value()) break;
      Frame& frame = **f;
      if (frame.type == FrameType::ok || frame.type == FrameType::error) {
        std::lock_guard lock(c->mu);
        auto it = c->pending.find(frame.id);
        if (it == c->pending.end()) {
          // Answers to unsubscribe and re-subscribe are not waited for.
          if (frame.type == FrameType::error)
            log::warn("mail-stored: {} (for request {})", error_status(frame.body).to_string(), frame.id);
          if (frame.id == 0) {
            lost = error_status(frame.body);
            break;
          }
          continue;
        }
        Waiter* w = it->second;
        c->pending.erase(it);
        w->type = frame.type;
        w->body = std::move(frame.body);
        w->done = true;
        w->cv.notify_all();
      } else if (frame.type == FrameType::event) {
        wire::EventBody body;
        if (!decode(frame.body, body)) {
          lost = error(Code::unavailable, "undecodable event frame from mail-stored");
          break;
        }
        {
          std::lock_guard lock(ev_mu);
          if (!subs.count(frame.id)) continue;
          events.emplace_back(frame.id, std::move(body.events));
        }
        ev_cv.notify_all();
      } else {
        lost = error(Code::unavailable, fmt::format("unexpected {} frame from mail-stored",
                                                    wire::frame_type_name(frame.type)));
        break;
      }
    }
    if (!lost.is_ok()) break;
  }
  c->fail(lost);
  ev_cv.notify_all();  // the event thread reconnects for subscriptions
}

Result<std::string> RemoteStore::Shared::call(FrameType type, uint16_t opcode, std::string_view body,
                                              uint64_t id) {
  if (body.size() + wire::kHeaderRest > max_frame_bytes)
    return error(Code::too_big, fmt::format("request of {} bytes is over the protocol's limit of {}",
                                            body.size(), max_frame_bytes));
  if (id == 0) id = next_id++;
  Waiter w;
  std::shared_ptr<ClientConn> c;
  // A connection found dead before anything was sent is replaced; one lost
  // after sending fails the call (the server may have applied it).
  for (int attempt = 0;; ++attempt) {
    MAIL_ASSIGN_OR_RETURN(c, connection());
    std::lock_guard lock(c->mu);
    if (!c->dead) {
      c->pending[id] = &w;
      break;
    }
    if (attempt == 1) return error(Code::unavailable, "connection to mail-stored lost");
  }
  std::string frame = wire::frame_bytes(type, id, opcode, body);
  Status st;
  {
    std::lock_guard lock(c->write_mu);
    st = send_all(c->fd, frame);
  }
  if (!st.is_ok()) c->fail(error(Code::unavailable, fmt::format("connection to mail-stored lost: {}", st.message())));
  std::unique_lock lock(c->mu);
  w.cv.wait(lock, [&] { return w.done; });
  if (!w.failure.is_ok()) return w.failure;
  if (w.type == FrameType::error) return error_status(w.body);
  return std::move(w.body);
}

void RemoteStore::Shared::send_oneway(FrameType type, uint64_t id, std::string_view body) {
  std::shared_ptr<ClientConn> c;
  {
    std::lock_guard lock(conn_mu);
    if (closed || !conn || !conn->alive()) return;
    c = conn;
  }
  std::lock_guard lock(c->write_mu);
  (void)send_all(c->fd, wire::frame_bytes(type, id, 0, body));
}

void RemoteStore::Shared::start_event_thread() {
  std::lock_guard lock(ev_mu);
  if (ev_thread.joinable() || ev_stop) return;
  ev_thread = std::thread([self = shared_from_this()] { self->event_loop(); });
  ev_thread_id = ev_thread.get_id();
}

void RemoteStore::Shared::event_loop() {
  std::unique_lock lock(ev_mu);
  for (;;) {
    ev_cv.wait_for(lock, std::chrono::seconds(1), [&] { return ev_stop || !events.empty(); });
    if (ev_stop) return;
    if (events.empty()) {
      // Nobody else may call for a while: bring the subscriptions back ourselves.
      bool want = !subs.empty();
      lock.unlock();
      bool need = false;
      if (want) {
        std::lock_guard clock(conn_mu);
        need = !closed && (!conn || !conn->alive());
      }
      if (need) (void)connection();
      lock.lock();
      continue;
    }
    auto [id, batch] = std::move(events.front());
    events.pop_front();
    auto it = subs.find(id);
    if (it == subs.end()) continue;
    auto handler = it->second.handler;
    running = id;
    lock.unlock();
    try {
      (*handler)(batch);
    } catch (const std::exception& e) {
      log::error("store subscription handler failed: {}", e.what());
    }
    lock.lock();
    running = 0;
    ev_cv.notify_all();
  }
}

void RemoteStore::Shared::close() {
  std::shared_ptr<ClientConn> c;
  {
    std::lock_guard lock(conn_mu);
    closed = true;
    c = std::move(conn);
  }
  if (c) {
    c->fail(error(Code::unavailable, "the store client is closed"));
    if (c->reader.joinable()) c->reader.join();
  }
  std::thread ev;
  {
    std::lock_guard lock(ev_mu);
    ev_stop = true;
    ev = std::move(ev_thread);
  }
  ev_cv.notify_all();
  if (ev.joinable()) {
    if (ev.get_id() == std::this_thread::get_id()) ev.detach();  // closed from a handler
    else ev.join();
  }
}

namespace {

class RemoteSubscription final : public Subscription {
 public:
  RemoteSubscription(std::weak_ptr<RemoteStore::Shared> shared, uint64_t id)
      : shared_(std::move(shared)), id_(id) {}
  ~RemoteSubscription() override {
    auto s = shared_.lock();
    if (!s) return;
    {
      std::unique_lock lock(s->ev_mu);
      s->subs.erase(id_);
      // After this returns the handler is not running and will not run again,
      // unless we are that handler.
      if (std::this_thread::get_id() != s->ev_thread_id)
        s->ev_cv.wait(lock, [&] { return s->running != id_; });
    }
    s->send_oneway(FrameType::unsubscribe, id_, {});
  }

 private:
  std::weak_ptr<RemoteStore::Shared> shared_;
  uint64_t id_;
};

}  // namespace

RemoteStore::RemoteStore(std::shared_ptr<Shared> shared) : s_(std::move(shared)) {}

RemoteStore::~RemoteStore() { s_->close(); }

Result<std::unique_ptr<RemoteStore>> RemoteStore::connect(const std::string& socket_path,
                                                           std::string client_name) {
  auto s = std::make_shared<Shared>();
  s->path = socket_path;
  s->client_name = std::move(client_name);
  auto c = s->connection();
  if (!c.is_ok()) return c.status();
  return std::unique_ptr<RemoteStore>(new RemoteStore(std::move(s)));
}

std::string RemoteStore::backend_name() const {
  std::lock_guard lock(s_->conn_mu);
  return "remote(" + s_->backend + ")";
}

Result<std::unique_ptr<Subscription>> RemoteStore::subscribe(AccountId account, ChangeHandler handler) {
  s_->start_event_thread();
  uint64_t id = s_->next_id++;
  {
    std::lock_guard lock(s_->ev_mu);
    s_->subs[id] = Shared::Sub{account, false, std::make_shared<ChangeHandler>(std::move(handler))};
  }
  auto r = s_->call(FrameType::subscribe, 0, encode(wire::SubscribeBody{account}), id);
  std::lock_guard lock(s_->ev_mu);
  if (!r.is_ok()) {
    s_->subs.erase(id);
    return r.status();
  }
  s_->subs[id].active = true;
  return std::unique_ptr<Subscription>(new RemoteSubscription(s_, id));
}

#define MAIL_REMOTE_OP(code, name, Req, Resp)                                          \
  Result<Resp> RemoteStore::name(const Req& req) {                                     \
    auto r = s_->call(FrameType::request, code, encode(req), 0);                       \
    if (!r.is_ok()) return r.status();                                                 \
    Resp resp;                                                                         \
    if (!decode(r.value(), resp))                                                      \
      return error(Code::protocol, "undecodable " #name " response from mail-stored"); \
    return resp;                                                                       \
  }
MAIL_STORE_OPS(MAIL_REMOTE_OP)
#undef MAIL_REMOTE_OP

}  // namespace mail::store
