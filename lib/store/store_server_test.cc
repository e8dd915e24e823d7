#include "store/store_server.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "store/remote_store.h"
#include "store/unix_socket.h"
#include "store/wire.h"

namespace mail::store {
namespace {

using namespace std::chrono_literals;

// Every op fails with Code::internal unless FakeStore implements it.
class UnimplementedStore : public Store {
 public:
#define MAIL_UNIMPLEMENTED_OP(code, name, Req, Resp) \
  Result<Resp> name(const Req&) override { return error(Code::internal, "not implemented: " #name); }
  MAIL_STORE_OPS(MAIL_UNIMPLEMENTED_OP)
#undef MAIL_UNIMPLEMENTED_OP
};

// A few ops in memory; data_put publishes a change event.
class FakeStore final : public UnimplementedStore {
 public:
  Result<DomainInfo> domain_add(const DomainAddReq& req) override {
    std::lock_guard lock(mu_);
    if (req.name.empty()) return error(Code::invalid, "empty domain name");
    if (domains_.count(req.name)) return error(Code::exists, "domain exists: " + req.name);
    DomainInfo d{req.name, 1700000000, 0, 0};
    domains_[req.name] = d;
    return d;
  }
  Result<DomainListResp> domain_list(const Empty&) override {
    std::lock_guard lock(mu_);
    DomainListResp r;
    for (auto& [name, d] : domains_) r.domains.push_back(d);
    return r;
  }
  // "slow@..." takes a while: lets tests hold a request in flight.
  Result<AccountInfo> account_get(const AccountRef& req) override {
    if (req.address.rfind("slow@", 0) == 0) std::this_thread::sleep_for(300ms);
    AccountInfo a;
    a.id = 7;
    a.address = req.address;
    return a;
  }
  Result<Empty> data_put(const DataPutReq& req) override {
    {
      std::lock_guard lock(mu_);
      data_[req.key.ns + "/" + req.key.key] = req.value;
    }
    publish(ChangeEvent{req.key.account, 1, ChangeKind::appended, ++modseq_, {static_cast<Uid>(req.value.size())}});
    return Empty{};
  }
  Result<DataValue> data_get(const DataKey& req) override {
    std::lock_guard lock(mu_);
    auto it = data_.find(req.ns + "/" + req.key);
    if (it == data_.end()) return DataValue{};
    return DataValue{true, it->second};
  }
  Result<StatsResp> stats(const Empty&) override {
    StatsResp s;
    s.format_version = kFormatVersion;
    s.backend = "fake";
    return s;
  }

  Result<std::unique_ptr<Subscription>> subscribe(AccountId account, ChangeHandler handler) override {
    std::lock_guard lock(sub_mu_);
    uint64_t id = next_sub_++;
    subs_[id] = {account, std::move(handler)};
    return std::unique_ptr<Subscription>(new FakeSubscription(this, id));
  }
  std::string backend_name() const override { return "fake"; }

  size_t subscriptions() {
    std::lock_guard lock(sub_mu_);
    return subs_.size();
  }

 private:
  struct FakeSubscription : Subscription {
    FakeSubscription(FakeStore* s, uint64_t id) : store(s), id(id) {}
    ~FakeSubscription() override {
      std::lock_guard lock(store->sub_mu_);
      store->subs_.erase(id);
    }
    FakeStore* store;
    uint64_t id;
  };
  void publish(const ChangeEvent& e) {
    std::lock_guard lock(sub_mu_);
    for (auto& [id, sub] : subs_)
      if (sub.first == 0 || sub.first == e.account) sub.second({e});
  }

  std::mutex mu_;
  std::map<std::string, DomainInfo> domains_;
  std::map<std::string, std::string> data_;
  std::atomic<ModSeq> modseq_{0};
  std::mutex sub_mu_;
  std::map<uint64_t, std::pair<AccountId, ChangeHandler>> subs_;
  uint64_t next_sub_ = 1;
};

class StoreServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/storesrvXXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/stored.sock";
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  void serve(StoreServer::Options options = StoreServer::Options()) {
    server_ = std::make_unique<StoreServer>(fake_, options);
    ASSERT_TRUE(server_->listen(path_).is_ok());
  }
  std::unique_ptr<RemoteStore> client(const std::string& name = "test") {
    auto r = RemoteStore::connect(path_, name);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? std::move(r).value() : nullptr;
  }
  // A raw connection for speaking bad protocol.
  int raw() {
    auto fd = connect_unix(path_);
    EXPECT_TRUE(fd.is_ok());
    set_socket_timeouts(*fd, 5000, 5000);
    return *fd;
  }
  static std::string hello(uint32_t version = wire::kProtocolVersion, std::string magic = std::string(wire::kMagic)) {
    return wire::frame_bytes(wire::FrameType::hello, 0, 0, encode(wire::Hello{magic, version, "raw"}));
  }
  // Reads frames until the server closes; returns them.
  static std::vector<wire::Frame> read_until_closed(int fd) {
    wire::FrameDecoder d;
    std::vector<wire::Frame> frames;
    char buf[4096];
    for (;;) {
      auto n = recv_some(fd, buf, sizeof(buf));
      if (!n.is_ok() || *n == 0) break;
      d.feed(std::string_view(buf, *n));
      for (;;) {
        auto f = d.next();
        if (!f.is_ok() || !f->has_value()) break;
        frames.push_back(std::move(**f));
      }
    }
    ::close(fd);
    return frames;
  }
  void expect_server_alive() {
    auto c = client("after");
    ASSERT_TRUE(c);
    auto s = c->stats({});
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    EXPECT_EQ(s->backend, "fake");
  }

  FakeStore fake_;
  std::string dir_;
  std::string path_;
  std::unique_ptr<StoreServer> server_;
};

TEST_F(StoreServerTest, RoundTripsAndErrorMapping) {
  serve();
  auto c = client();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->backend_name(), "remote(fake)");
  auto d = c->domain_add({"example.org"});
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(d->name, "example.org");
  EXPECT_EQ(d->created, 1700000000);
  ASSERT_TRUE(c->domain_add({"example.net"}).is_ok());
  auto l = c->domain_list({});
  ASSERT_TRUE(l.is_ok());
  ASSERT_EQ(l->domains.size(), 2u);
  EXPECT_EQ(l->domains[1].name, "example.org");

  auto dup = c->domain_add({"example.org"});
  EXPECT_EQ(dup.code(), Code::exists);
  EXPECT_EQ(dup.status().message(), "domain exists: example.org");
  EXPECT_EQ(c->domain_add({""}).code(), Code::invalid);
  auto un = c->mailbox_list({1});
  EXPECT_EQ(un.code(), Code::internal);
  EXPECT_EQ(un.status().message(), "not implemented: mailbox_list");

  // Large bodies travel intact.
  std::string big(5 << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>(i / 4096);
  ASSERT_TRUE(c->data_put({{1, "ns", "big"}, big}).is_ok());
  auto v = c->data_get({1, "ns", "big"});
  ASSERT_TRUE(v.is_ok());
  EXPECT_TRUE(v->found);
  EXPECT_EQ(v->value, big);
}

TEST_F(StoreServerTest, ManyThreadsPipelineOverOneConnection) {
  serve();
  auto c = client();
  ASSERT_TRUE(c);
  constexpr int kThreads = 8, kCalls = 1000;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        std::string key = std::to_string(t) + ":" + std::to_string(i);
        if (!c->data_put({{0, "p", key}, "value " + key}).is_ok()) ++failures;
        auto v = c->data_get({0, "p", key});
        if (!v.is_ok() || !v->found || v->value != "value " + key) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_F(StoreServerTest, AnswersComeBackOutOfOrder) {
  serve();
  auto c = client();
  ASSERT_TRUE(c);
  std::atomic<bool> slow_done{false};
  std::thread slow([&] {
    auto a = c->account_get({"slow@example.org"});
    EXPECT_TRUE(a.is_ok());
    slow_done = true;
  });
  std::this_thread::sleep_for(50ms);
  auto fast = c->account_get({"fast@example.org"});
  ASSERT_TRUE(fast.is_ok());
  EXPECT_EQ(fast->address, "fast@example.org");
  EXPECT_FALSE(slow_done.load());  // overtaken by the later request
  slow.join();
  EXPECT_TRUE(slow_done.load());
}

TEST_F(StoreServerTest, SurvivesGarbage) {
  serve();
  int fd = raw();
  ASSERT_TRUE(send_all(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").is_ok());
  read_until_closed(fd);
  expect_server_alive();
}

TEST_F(StoreServerTest, SurvivesTruncatedFrame) {
  serve();
  int fd = raw();
  std::string f = wire::frame_bytes(wire::FrameType::request, 1, 3, "");
  ASSERT_TRUE(send_all(fd, hello() + f.substr(0, 7)).is_ok());
  std::this_thread::sleep_for(20ms);
  ::close(fd);
  expect_server_alive();
}

TEST_F(StoreServerTest, RefusesWrongVersionAndMagic) {
  serve();
  for (auto h : {hello(0), hello(1, "MAILSTORX"), std::string(wire::frame_bytes(wire::FrameType::request, 1, 70, ""))}) {
    int fd = raw();
    ASSERT_TRUE(send_all(fd, h).is_ok());
    auto frames = read_until_closed(fd);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].type, wire::FrameType::error);
    wire::ErrorBody e;
    ASSERT_TRUE(decode(frames[0].body, e));
    EXPECT_EQ(e.code, Code::protocol);
  }
  expect_server_alive();
}

TEST_F(StoreServerTest, NewerClientVersionIsNegotiatedDown) {
  serve();
  int fd = raw();
  ASSERT_TRUE(send_all(fd, hello(wire::kProtocolVersion + 5)).is_ok());
  ::shutdown(fd, SHUT_WR);
  auto frames = read_until_closed(fd);
  ASSERT_EQ(frames.size(), 1u);
  ASSERT_EQ(frames[0].type, wire::FrameType::hello_ok);
  wire::HelloOk ok;
  ASSERT_TRUE(decode(frames[0].body, ok));
  EXPECT_EQ(ok.version, wire::kProtocolVersion);
  EXPECT_EQ(ok.backend, "fake");
  EXPECT_EQ(ok.format_version, kFormatVersion);
}

TEST_F(StoreServerTest, UnknownOpcodeAndBadBodyCloseTheConnection) {
  serve();
  struct Case {
    uint16_t opcode;
    std::string body;
  };
  for (const Case& k : {Case{9999, ""}, Case{1, "\xff"}}) {
    int fd = raw();
    // A good request first: it is still answered.
    std::string out = hello() + wire::frame_bytes(wire::FrameType::request, 1, 70, "") +
                      wire::frame_bytes(wire::FrameType::request, 2, k.opcode, k.body);
    ASSERT_TRUE(send_all(fd, out).is_ok());
    auto frames = read_until_closed(fd);
    ASSERT_EQ(frames.size(), 3u);
    EXPECT_EQ(frames[0].type, wire::FrameType::hello_ok);
    std::map<uint64_t, wire::Frame> by_id{{frames[1].id, frames[1]}, {frames[2].id, frames[2]}};
    EXPECT_EQ(by_id[1].type, wire::FrameType::ok);
    EXPECT_EQ(by_id[2].type, wire::FrameType::error);
    wire::ErrorBody e;
    ASSERT_TRUE(decode(by_id[2].body, e));
    EXPECT_EQ(e.code, Code::protocol);
  }
  expect_server_alive();
}

TEST_F(StoreServerTest, OversizedFrameIsRefused) {
  StoreServer::Options o;
  o.max_frame_bytes = 1024;
  serve(o);
  int fd = raw();
  ASSERT_TRUE(send_all(fd, hello() + wire::frame_bytes(wire::FrameType::request, 1, 50, std::string(2000, 'a'))).is_ok());
  auto frames = read_until_closed(fd);
  ASSERT_GE(frames.size(), 1u);
  EXPECT_EQ(frames[0].type, wire::FrameType::hello_ok);
  EXPECT_EQ(frames.size(), 1u);
  expect_server_alive();
}

TEST_F(StoreServerTest, SubscriptionEventsArrive) {
  serve();
  auto c = client();
  ASSERT_TRUE(c);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<ChangeEvent> got;
  auto sub = c->subscribe(5, [&](const std::vector<ChangeEvent>& events) {
    std::lock_guard lock(mu);
    got.insert(got.end(), events.begin(), events.end());
    cv.notify_all();
  });
  ASSERT_TRUE(sub.is_ok()) << sub.status().to_string();
  EXPECT_EQ(fake_.subscriptions(), 1u);
  ASSERT_TRUE(c->data_put({{6, "x", "other account"}, "a"}).is_ok());
  ASSERT_TRUE(c->data_put({{5, "x", "mine"}, "abc"}).is_ok());
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return !got.empty(); }));
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].account, 5u);
    EXPECT_EQ(got[0].kind, ChangeKind::appended);
    EXPECT_EQ(got[0].uids, std::vector<Uid>{3});
  }
  sub->reset();
  // The unsubscribe is asynchronous; a round trip after it has been processed.
  for (int i = 0; i < 100 && fake_.subscriptions() != 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(fake_.subscriptions(), 0u);
  ASSERT_TRUE(c->data_put({{5, "x", "mine"}, "abcd"}).is_ok());
  std::this_thread::sleep_for(50ms);
  std::lock_guard lock(mu);
  EXPECT_EQ(got.size(), 1u);
}

TEST_F(StoreServerTest, SubscriptionsComeBackAfterTheServerRestarts) {
  serve();
  auto c = client();
  ASSERT_TRUE(c);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<ChangeEvent> got;
  auto sub = c->subscribe(0, [&](const std::vector<ChangeEvent>& events) {
    std::lock_guard lock(mu);
    got.insert(got.end(), events.begin(), events.end());
    cv.notify_all();
  });
  ASSERT_TRUE(sub.is_ok());
  server_->stop();
  EXPECT_EQ(fake_.subscriptions(), 0u);
  serve();
  // Without any call, the client reconnects for its subscription and says
  // "look again" (mailbox 0), then events flow as before.
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return !got.empty(); }));
    EXPECT_EQ(got[0].kind, ChangeKind::mailbox);
    EXPECT_EQ(got[0].mailbox, 0u);
  }
  for (int i = 0; i < 200 && fake_.subscriptions() == 0; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(fake_.subscriptions(), 1u);
  auto other = client("other");
  ASSERT_TRUE(other);
  ASSERT_TRUE(other->data_put({{9, "x", "k"}, "12345"}).is_ok());
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return got.size() >= 2; }));
  EXPECT_EQ(got[1].account, 9u);
  EXPECT_EQ(got[1].uids, std::vector<Uid>{5});
}

TEST_F(StoreServerTest, LostConnectionIsUnavailableThenReconnects) {
  serve();
  auto c = client();
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->stats({}).is_ok());
  server_->stop();
  auto r = c->stats({});
  EXPECT_EQ(r.code(), Code::unavailable);
  serve();
  auto again = c->stats({});
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
}

TEST_F(StoreServerTest, StopFinishesRequestsInFlight) {
  serve();
  auto c = client();
  ASSERT_TRUE(c);
  Result<AccountInfo> slow = error(Code::internal, "not run");
  std::thread t([&] { slow = c->account_get({"slow@example.org"}); });
  std::this_thread::sleep_for(100ms);
  server_->stop();
  t.join();
  ASSERT_TRUE(slow.is_ok()) << slow.status().to_string();
  EXPECT_EQ(slow->address, "slow@example.org");
  EXPECT_FALSE(std::filesystem::exists(path_));
}

TEST_F(StoreServerTest, MaxClients) {
  StoreServer::Options o;
  o.max_clients = 1;
  serve(o);
  auto a = client("first");
  ASSERT_TRUE(a);
  auto b = RemoteStore::connect(path_, "second");
  EXPECT_EQ(b.code(), Code::busy);
  a.reset();
  // The slot frees once the server notices the first client left.
  Result<std::unique_ptr<RemoteStore>> c = error(Code::internal, "");
  for (int i = 0; i < 50; ++i) {
    c = RemoteStore::connect(path_, "third");
    if (c.is_ok()) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(c.is_ok());
}

TEST_F(StoreServerTest, StaleSocketIsReplacedLiveOneIsNot) {
  // A socket file nobody listens on, as a crashed daemon leaves it.
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path_.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);
  serve();
  expect_server_alive();
  StoreServer second(fake_);
  EXPECT_EQ(second.listen(path_).code(), Code::busy);
  expect_server_alive();
}

TEST_F(StoreServerTest, NothingListeningIsUnavailable) {
  auto r = RemoteStore::connect(path_, "test");
  EXPECT_EQ(r.code(), Code::unavailable);
}

TEST_F(StoreServerTest, AdoptsAnInheritedSocket) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path_.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  server_ = std::make_unique<StoreServer>(fake_);
  ASSERT_TRUE(server_->adopt(fd).is_ok());
  expect_server_alive();
  server_->stop();
  EXPECT_TRUE(std::filesystem::exists(path_));  // not ours to remove
}

}  // namespace
}  // namespace mail::store
