// open_store: how a program that may open the database itself gets its Store
// (see store.h). Part of mail_store_engine, with the RocksDB engine.
#include <chrono>
#include <thread>

#include "store/rocks_store.h"
#include "store/store.h"

namespace mail::store {
namespace {

// How long automatic mode waits for a daemon that holds the lock but does not
// answer yet (it is opening the database, or replaying its log after a crash).
constexpr auto kDaemonStartWait = std::chrono::seconds(10);
constexpr auto kRetryInterval = std::chrono::milliseconds(100);

Result<std::unique_ptr<Store>> direct(const StorePaths& paths) {
  RocksStore::Options options;
  options.data_dir = paths.data_dir;
  auto r = RocksStore::open(options);
  if (!r.is_ok()) return r.status();
  return std::unique_ptr<Store>(std::move(r).value());
}

}  // namespace

Result<std::unique_ptr<Store>> open_store(const StorePaths& paths, OpenMode mode) {
  switch (mode) {
    case OpenMode::direct:
      return direct(paths);

    case OpenMode::daemon:
      return connect_store(paths);

    case OpenMode::automatic:
      break;
  }

  auto deadline = std::chrono::steady_clock::now() + kDaemonStartWait;
  for (;;) {
    auto r = connect_remote(paths);
    // A daemon that answers but refuses us (version, too many clients) is an
    // answer: opening the database behind its back is not an option anyway.
    if (r.is_ok() || r.code() != Code::unavailable) return r;
    auto d = direct(paths);
    if (d.is_ok() || d.code() != Code::busy) return d;
    // Someone holds the lock without serving the socket: mail-stored starting
    // (or stopping), or another offline tool. Wait a little for either.
    if (std::chrono::steady_clock::now() >= deadline) return d;
    std::this_thread::sleep_for(kRetryInterval);
  }
}

}  // namespace mail::store
