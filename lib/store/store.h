// The store interface: the one way every program reads and writes mail data.
//
// Implementations:
//   RocksStore   (store/rocks_store.h)  the embedded RocksDB engine; exactly one
//                process opens it read-write (mail-stored, or an offline tool).
//   RemoteStore  (store/remote_store.h) the local protocol client, talking to the
//                mail-stored daemon over a Unix socket.
// A PostgreSQL backend would be a third implementation of this class.
//
// Every method is thread-safe and synchronous. A write returns only once it is
// durable (fsync'd); concurrent writes share one fsync (group commit).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "store/ops.h"

namespace mail::store {

// Current on-disk format version, recorded in the store and checked at open.
constexpr uint32_t kFormatVersion = 1;

// Keeps a change subscription alive; destroying it unsubscribes.
class Subscription {
 public:
  virtual ~Subscription() = default;
};

using ChangeHandler = std::function<void(const std::vector<ChangeEvent>&)>;

class Store {
 public:
  virtual ~Store() = default;

#define MAIL_DECLARE_OP(code, name, Req, Resp) virtual Result<Resp> name(const Req& req) = 0;
  MAIL_STORE_OPS(MAIL_DECLARE_OP)
#undef MAIL_DECLARE_OP

  // Calls `handler` (on an internal thread) with the changes of each commit that
  // touched `account`, within milliseconds of the commit. account 0: all accounts.
  virtual Result<std::unique_ptr<Subscription>> subscribe(AccountId account,
                                                          ChangeHandler handler) = 0;

  // "rocksdb", "remote", ...
  virtual std::string backend_name() const = 0;
};

// Where a data directory keeps its parts.
struct StorePaths {
  std::string data_dir;
  std::string db_dir() const { return data_dir + "/db"; }
  std::string socket_path() const { return data_dir + "/stored.sock"; }
  std::string lock_path() const { return data_dir + "/store.lock"; }
};

enum class OpenMode {
  automatic,  // the daemon if it runs, else open the database directly
  daemon,     // only through the daemon
  direct,     // only directly (fails with busy if another process holds it)
};

// Opens the store for a client program: through mail-stored when it runs (its
// socket answers), else directly with an exclusive lock. A second direct opener
// gets Code::busy with a message naming the holder, never a corrupt store.
// Defined in mail_store_engine (with the RocksDB engine): only programs that may
// open the database themselves link it.
Result<std::unique_ptr<Store>> open_store(const StorePaths& paths, OpenMode mode = OpenMode::automatic);

// Reaches the store through mail-stored only, as the daemons do; Code::unavailable
// with a message saying what is missing when it does not answer. In the core
// store library, so the daemons never load the database engine.
Result<std::unique_ptr<Store>> connect_store(const StorePaths& paths);

// connect_store without the explanation: RemoteStore's own status.
Result<std::unique_ptr<Store>> connect_remote(const StorePaths& paths);

}  // namespace mail::store
