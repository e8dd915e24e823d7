// The embedded RocksDB backend: the only file set that knows RocksDB. Exactly one
// process opens a data directory read-write; the exclusive lock on
// <data_dir>/store.lock makes a second opener fail with Code::busy.
//
// Writes from any number of threads are queued to one writer thread, which
// commits everything queued so far as one atomic WriteBatch with one fsync
// (group commit) and then answers each caller. Reads go to the database directly.
// Key layout and record formats: docs/STORE.md.
#pragma once

#include <memory>
#include <string>

#include "store/store.h"

namespace mail::store {

class RocksStore final : public Store {
 public:
  struct Options {
    std::string data_dir;         // the database lives in <data_dir>/db
    uint64_t block_cache_mb = 32;
    bool sync = true;             // fsync every commit; false only for tests of speed
  };

  // Takes the data directory's lock (Code::busy "store is in use by pid N"),
  // then opens or creates the database and checks its format version.
  static Result<std::unique_ptr<RocksStore>> open(const Options& options);

  ~RocksStore() override;

#define MAIL_DECLARE_OP(code, name, Req, Resp) Result<Resp> name(const Req& req) override;
  MAIL_STORE_OPS(MAIL_DECLARE_OP)
#undef MAIL_DECLARE_OP

  Result<std::unique_ptr<Subscription>> subscribe(AccountId account, ChangeHandler handler) override;
  std::string backend_name() const override { return "rocksdb"; }

  struct Impl;

 private:
  explicit RocksStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mail::store
