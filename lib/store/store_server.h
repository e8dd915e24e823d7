// Serves any Store on a Unix socket with the local protocol (docs/PROTOCOL.md).
// mail-stored runs one over its RocksStore; tests run one over a fake.
//
// Each connection has a reader and a writer thread; requests are executed on a
// shared worker pool, so one connection pipelines many requests (answered by id,
// possibly out of order) and writers from many connections reach the store at
// the same time, where its group commit batches them. A connection that sends
// bad input is closed with a warning; the server goes on.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "store/store.h"
#include "store/wire.h"

namespace mail::store {

class StoreServer {
 public:
  struct Options {
    uint32_t max_clients = 256;
    uint32_t max_frame_bytes = wire::kDefaultMaxFrameBytes;
    uint32_t workers = 0;           // 0: two per hardware thread
    uint32_t max_in_flight = 256;   // per connection; reading pauses beyond it
    uint32_t handshake_timeout_ms = 10000;
    uint32_t send_timeout_ms = 30000;  // a client that stops reading is dropped
  };

  explicit StoreServer(Store& store);
  StoreServer(Store& store, Options options);
  ~StoreServer();  // stop()
  StoreServer(const StoreServer&) = delete;
  StoreServer& operator=(const StoreServer&) = delete;

  // Binds `socket_path` (mode 0660) and starts serving. A leftover socket file
  // is removed only when nothing answers on it; a live one is Code::busy.
  Status listen(const std::string& socket_path);
  // Serves an inherited listening socket (systemd LISTEN_FDS); it is closed by
  // stop() but its path is left alone.
  Status adopt(int listen_fd);

  // Stops accepting, lets every connection finish the requests it has in
  // flight and flush their answers, then closes everything. Idempotent.
  void stop();

  size_t client_count() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace mail::store
