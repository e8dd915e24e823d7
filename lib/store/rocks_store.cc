// The RocksDB engine: opening and locking the data directory, the writer thread
// and its group commit, content compression, and change notifications.
// The operations themselves are in rocks_ops_*.cc.
#include "store/rocks_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <rocksdb/cache.h>
#include <rocksdb/perf_level.h>
#include <rocksdb/table.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "base/log.h"
#include "store/rocks_internal.h"

namespace mail::store {

// ---- keys --------------------------------------------------------------------

namespace key {
namespace {
std::string with(char prefix, std::string_view rest) {
  std::string k(1, prefix);
  k.append(rest);
  return k;
}
std::string with_id(char prefix, uint64_t id) {
  std::string k(1, prefix);
  put_be64(k, id);
  return k;
}
std::string pair(char prefix, std::string_view a, std::string_view b) {
  std::string k(1, prefix);
  k.append(a);
  k.push_back('\0');
  k.append(b);
  return k;
}
}  // namespace

std::string meta(std::string_view name) { return with(kMeta, name); }
std::string counter(std::string_view name) { return with(kCounter, name); }
std::string domain(std::string_view name) { return with(kDomain, name); }
std::string account(AccountId id) { return with_id(kAccount, id); }
std::string account_name(std::string_view domain, std::string_view local) {
  return pair(kAccountName, domain, local);
}
std::string account_name_prefix(std::string_view domain) {
  return domain.empty() ? std::string(1, kAccountName) : pair(kAccountName, domain, "");
}
std::string alias(std::string_view domain, std::string_view local) { return pair(kAlias, domain, local); }
std::string alias_prefix(std::string_view domain) {
  return domain.empty() ? std::string(1, kAlias) : pair(kAlias, domain, "");
}
std::string mailbox(MailboxId id) { return with_id(kMailbox, id); }
std::string mailbox_name(AccountId account, std::string_view name) {
  std::string k = with_id(kMailboxName, account);
  k.append(name);
  return k;
}
std::string message(MailboxId mailbox, Uid uid) {
  std::string k = with_id(kMessage, mailbox);
  put_be32(k, uid);
  return k;
}
std::string message_prefix(MailboxId mailbox) { return with_id(kMessage, mailbox); }
std::string modseq(MailboxId mailbox, ModSeq modseq, Uid uid) {
  std::string k = with_id(kModseq, mailbox);
  put_be64(k, modseq);
  put_be32(k, uid);
  return k;
}
std::string modseq_prefix(MailboxId mailbox) { return with_id(kModseq, mailbox); }
std::string account_log(AccountId account, ModSeq modseq, MailboxId mailbox) {
  std::string k = with_id(kAccountLog, account);
  put_be64(k, modseq);
  put_be64(k, mailbox);
  return k;
}
std::string account_log_prefix(AccountId account) { return with_id(kAccountLog, account); }
std::string content_meta(ContentId id) { return with_id(kContentMeta, id); }
std::string content(ContentId id) { return with_id('c', id); }
std::string queue(QueueId id) { return with_id(kQueue, id); }
std::string data(AccountId account, std::string_view ns, std::string_view k) {
  std::string out = data_prefix(account, ns);
  out.append(k);
  return out;
}
std::string data_prefix(AccountId account, std::string_view ns) {
  std::string k = with_id(kData, account);
  k.append(ns);
  k.push_back('\0');
  return k;
}
std::string data_account_prefix(AccountId account) { return with_id(kData, account); }
}  // namespace key

// ---- helpers -----------------------------------------------------------------

Status from_rocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::ok();
  Code code = Code::io;
  if (s.IsCorruption()) code = Code::corrupt;
  else if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) code = Code::temporary;
  else if (s.IsNotFound()) code = Code::not_found;
  return error(code, std::string(what) + ": " + s.ToString());
}

UnixTime now_seconds() { return static_cast<UnixTime>(::time(nullptr)); }

std::string compress_content(std::string_view bytes) {
  thread_local std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  ZSTD_CCtx_reset(cctx.get(), ZSTD_reset_session_and_parameters);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, 3);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 1);
  std::string out(1 + ZSTD_compressBound(bytes.size()), '\0');
  out[0] = 1;
  size_t n = ZSTD_compress2(cctx.get(), out.data() + 1, out.size() - 1, bytes.data(), bytes.size());
  if (ZSTD_isError(n)) {  // cannot happen with a bound-sized buffer; keep the bytes safe anyway
    out.assign(1, 0);
    out.append(bytes);
    return out;
  }
  out.resize(1 + n);
  return out;
}

Result<std::string> decompress_content(std::string_view stored) {
  if (stored.empty()) return error(Code::corrupt, "empty content record");
  if (stored[0] == 0) return std::string(stored.substr(1));
  if (stored[0] != 1) return error(Code::corrupt, "unknown content encoding");
  std::string_view frame = stored.substr(1);
  unsigned long long size = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > (1ull << 32))
    return error(Code::corrupt, "content frame header is damaged");
  // One context per thread: ZSTD_decompress makes (and frees) a ~160 KB one per call.
  thread_local std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  std::string out(size, '\0');
  size_t n = ZSTD_decompressDCtx(dctx.get(), out.data(), out.size(), frame.data(), frame.size());
  if (ZSTD_isError(n) || n != size)
    return error(Code::corrupt, std::string("content failed its checksum: ") +
                                    (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short"));
  return out;
}

// ---- Txn ---------------------------------------------------------------------

std::string Txn::printable(std::string_view k) {
  std::string out;
  for (unsigned char c : k) {
    if (c >= 0x20 && c < 0x7f) out.push_back(static_cast<char>(c));
    else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

Result<std::optional<std::string>> Txn::get(const std::string& k) {
  std::string v;
  auto s = batch_->GetFromBatchAndDB(db_, rocksdb::ReadOptions(), k, &v);
  if (s.IsNotFound()) return std::optional<std::string>();
  MAIL_TRY(from_rocks(s, "read"));
  return std::optional<std::string>(std::move(v));
}

bool Txn::exists(const std::string& k) {
  auto r = get(k);
  return r.is_ok() && r->has_value();
}

void Txn::put(const std::string& k, std::string_view v) { batch_->Put(k, rocksdb::Slice(v.data(), v.size())); }
void Txn::del(const std::string& k) { batch_->Delete(k); }
void Txn::put_content(ContentId id, std::string_view stored) {
  batch_->Put(content_cf_, key::content(id), rocksdb::Slice(stored.data(), stored.size()));
}
void Txn::del_content(ContentId id) { batch_->Delete(content_cf_, key::content(id)); }

Result<std::vector<std::optional<std::string>>> read_in_key_order(rocksdb::Iterator& it,
                                                                 const std::vector<std::string>& keys) {
  std::vector<size_t> order(keys.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return keys[a] < keys[b]; });
  std::vector<std::optional<std::string>> out(keys.size());
  // A mailbox's keys are mostly neighbours (UIDs, content ids in delivery
  // order): stepping to the next entry costs far less than a lookup; a gap of
  // more than a few entries seeks.
  bool positioned = false;
  for (size_t i : order) {
    rocksdb::Slice want(keys[i]);
    if (!positioned) {
      it.Seek(want);
      positioned = true;
    } else if (it.Valid() && it.key().compare(want) < 0) {
      int steps = 0;
      while (it.Valid() && it.key().compare(want) < 0 && ++steps <= 8) it.Next();
      if (it.Valid() && it.key().compare(want) < 0) it.Seek(want);
    }
    if (!it.Valid()) break;  // past the last key: the rest are missing
    if (it.key() == want) out[i] = it.value().ToString();
  }
  MAIL_TRY(from_rocks(it.status(), "read"));
  return out;
}

Result<std::vector<std::optional<std::string>>> Txn::get_many(const std::vector<std::string>& keys) {
  std::unique_ptr<rocksdb::Iterator> it(batch_->NewIteratorWithBase(db_->NewIterator(rocksdb::ReadOptions())));
  return read_in_key_order(*it, keys);
}

Status Txn::scan(const std::string& prefix,
                 const std::function<bool(std::string_view, std::string_view)>& fn) {
  rocksdb::ReadOptions ro;
  std::unique_ptr<rocksdb::Iterator> it(batch_->NewIteratorWithBase(db_->NewIterator(ro)));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (!fn(std::string_view(it->key().data(), it->key().size()),
            std::string_view(it->value().data(), it->value().size())))
      break;
  }
  return from_rocks(it->status(), "scan");
}

uint64_t Txn::counter(std::string_view name) {
  auto v = get(key::counter(name));
  if (!v.is_ok() || !v->has_value() || (*v)->size() != 8) return 0;
  return get_be64(**v);
}

uint64_t Txn::next_id(std::string_view name) {
  uint64_t id = counter(name) + 1;
  std::string v;
  put_be64(v, id);
  put(key::counter(name), v);
  return id;
}

void Txn::add_counter(std::string_view name, int64_t delta) {
  int64_t n = static_cast<int64_t>(counter(name)) + delta;
  std::string v;
  put_be64(v, static_cast<uint64_t>(n < 0 ? 0 : n));
  put(key::counter(name), v);
}

// ---- open and lock -------------------------------------------------------------

namespace {

Result<int> lock_data_dir(const std::string& data_dir) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return error(Code::io, "cannot create data directory " + data_dir + ": " + ec.message());
  StorePaths paths{data_dir};
  int fd = ::open(paths.lock_path().c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return error(Code::io, "cannot open " + paths.lock_path() + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char buf[32] = {};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    if (err == EWOULDBLOCK) {
      std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("?");
      while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
      return error(Code::busy, "store " + data_dir + " is in use by pid " + pid +
                                   " (stop it, or go through mail-stored)");
    }
    return error(Code::io, "cannot lock " + paths.lock_path() + ": " + std::strerror(err));
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The pid is only for messages; the lock itself is what matters.
  }
  return fd;
}

}  // namespace

RocksStore::RocksStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RocksStore::~RocksStore() = default;

Result<std::unique_ptr<RocksStore>> RocksStore::open(const Options& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  MAIL_ASSIGN_OR_RETURN(impl->lock_fd, lock_data_dir(options.data_dir));

  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.keep_log_file_num = 3;
  db_options.max_background_jobs = 2;
  db_options.bytes_per_sync = 1 << 20;

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_mb << 20);
  rocksdb::ColumnFamilyOptions meta_cf;
  meta_cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  meta_cf.compression = rocksdb::kLZ4Compression;
  meta_cf.bottommost_compression = rocksdb::kZSTD;

  // Message bodies: already zstd-compressed, large, written once. Blob files keep
  // them out of the LSM tree so compaction does not rewrite them.
  rocksdb::ColumnFamilyOptions content_cf;
  content_cf.enable_blob_files = true;
  content_cf.min_blob_size = 512;
  content_cf.blob_compression_type = rocksdb::kNoCompression;
  content_cf.enable_blob_garbage_collection = true;
  content_cf.compression = rocksdb::kNoCompression;

  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, meta_cf}, {"content", content_cf}};
  StorePaths paths{options.data_dir};
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(db_options, paths.db_dir(), cfs, &impl->handles, &raw);
  if (!s.ok()) return from_rocks(s, "cannot open the store at " + paths.db_dir());
  impl->db.reset(raw);
  impl->content_cf = impl->handles[1];

  // Format version: written on creation, checked on every open.
  std::string version;
  s = impl->db->Get(rocksdb::ReadOptions(), key::meta("format"), &version);
  if (s.IsNotFound()) {
    std::string v;
    put_be32(v, kFormatVersion);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    MAIL_TRY(from_rocks(impl->db->Put(wo, key::meta("format"), v), "write format version"));
  } else {
    MAIL_TRY(from_rocks(s, "read format version"));
    if (version.size() != 4) return error(Code::corrupt, "store format version is damaged");
    uint32_t found = get_be32(version);
    if (found > kFormatVersion)
      return error(Code::config, "store format " + std::to_string(found) +
                                     " is newer than this program understands (" +
                                     std::to_string(kFormatVersion) + ")");
  }

  Impl* p = impl.get();
  impl->writer = std::thread([p] { p->writer_loop(); });
  impl->notifier = std::thread([p] { p->notifier_loop(); });
  return std::unique_ptr<RocksStore>(new RocksStore(std::move(impl)));
}

RocksStore::Impl::~Impl() {
  {
    std::lock_guard lock(mu);
    stopping = true;
  }
  queued_cv.notify_all();
  if (writer.joinable()) writer.join();
  {
    std::lock_guard lock(notify_mu);
  }
  notify_cv.notify_all();
  if (notifier.joinable()) notifier.join();
  if (db) {
    // A clean stop leaves nothing in the WAL to replay, so the next start is quick.
    rocksdb::FlushOptions flush;
    flush.wait = true;
    (void)db->Flush(flush, handles);
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    db->Close();
    db.reset();
  }
  if (lock_fd >= 0) ::close(lock_fd);
}

// ---- group commit ----------------------------------------------------------------

Status RocksStore::Impl::write(std::function<Status(Txn&)> fn, WriteLane lane) {
  PendingWrite op;
  op.run = std::move(fn);
  std::unique_lock lock(mu);
  if (stopping) return error(Code::unavailable, "store is shutting down");
  if (lane.group) {
    // A predecessor that never comes (its client died) must not block for ever.
    bool turn = order_cv.wait_for(lock, std::chrono::seconds(60), [&] { return order_next[lane.group] == lane.seq; });
    if (!turn) return error(Code::unavailable, "ordered write " + std::to_string(lane.seq) + " waited too long for its turn");
    order_next[lane.group] = lane.seq + 1;
    if (order_next.size() > 4096) order_next.erase(order_next.begin());  // lanes of long-gone clients
    order_cv.notify_all();
  }
  queue.push_back(&op);
  queued_cv.notify_one();
  done_cv.wait(lock, [&] { return op.done; });
  return op.result;
}

void RocksStore::Impl::writer_loop() {
  constexpr size_t kMaxGroup = 512;
  std::vector<PendingWrite*> group;
  for (;;) {
    {
      std::unique_lock lock(mu);
      queued_cv.wait(lock, [&] { return stopping || !queue.empty(); });
      if (queue.empty()) return;  // stopping, and nothing left to do
      while (!queue.empty() && group.size() < kMaxGroup) {
        group.push_back(queue.front());
        queue.pop_front();
      }
    }

    rocksdb::WriteBatchWithIndex batch(rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true);
    Txn txn(db.get(), content_cf, &batch);
    for (PendingWrite* op : group) {
      size_t events_before = txn.events().size();
      batch.SetSavePoint();
      Status st;
      try {
        st = op->run(txn);
      } catch (const std::exception& e) {
        st = error(Code::internal, std::string("store operation threw: ") + e.what());
      }
      if (st.is_ok()) {
        batch.PopSavePoint();
      } else {
        batch.RollbackToSavePoint();
        txn.events().resize(events_before);
      }
      op->result = std::move(st);
    }

    if (batch.GetWriteBatch()->Count() > 0) {
      rocksdb::WriteOptions wo;
      wo.sync = options.sync;
      Status st = from_rocks(db->Write(wo, batch.GetWriteBatch()), "commit");
      if (!st.is_ok()) {
        log::error("store commit failed: {}", st.to_string());
        for (PendingWrite* op : group)
          if (op->result.is_ok()) op->result = st;
        txn.events().clear();
      }
    }
    if (!txn.events().empty()) publish(std::move(txn.events()));

    {
      std::lock_guard lock(mu);
      for (PendingWrite* op : group) op->done = true;
    }
    done_cv.notify_all();
    group.clear();
  }
}

// ---- direct reads ------------------------------------------------------------------

Result<std::optional<std::string>> RocksStore::Impl::read(const std::string& k) {
  std::string v;
  auto s = db->Get(rocksdb::ReadOptions(), k, &v);
  if (s.IsNotFound()) return std::optional<std::string>();
  MAIL_TRY(from_rocks(s, "read"));
  return std::optional<std::string>(std::move(v));
}

Result<std::vector<std::optional<std::string>>> RocksStore::Impl::read_many(const std::vector<std::string>& keys) {
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);  // as in read_scan
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  return read_in_key_order(*it, keys);
}

Status RocksStore::Impl::read_scan(const std::string& prefix,
                                   const std::function<bool(std::string_view, std::string_view)>& fn,
                                   const std::string& start_at) {
  // RocksDB counts into a thread-local perf context on every step by default
  // (a __tls_get_addr call each, ~15% of a 100k-entry walk); nothing reads it.
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
  rocksdb::ReadOptions ro;
  // The bound lets RocksDB stop at the prefix's end inside each file instead
  // of merging the next key of every level past it.
  std::string end = prefix;
  while (!end.empty() && static_cast<uint8_t>(end.back()) == 0xff) end.pop_back();
  rocksdb::Slice bound;
  if (!end.empty()) {
    end.back() = static_cast<char>(static_cast<uint8_t>(end.back()) + 1);
    bound = end;
    ro.iterate_upper_bound = &bound;
  }
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro));
  for (it->Seek(start_at.empty() ? prefix : start_at); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    if (!fn(std::string_view(it->key().data(), it->key().size()),
            std::string_view(it->value().data(), it->value().size())))
      break;
  }
  return from_rocks(it->status(), "scan");
}

// ---- change notifications -------------------------------------------------------------

namespace {
class RocksSubscription final : public Subscription {
 public:
  RocksSubscription(RocksStore::Impl* impl, uint64_t id) : impl_(impl), id_(id) {}
  ~RocksSubscription() override {
    std::lock_guard lock(impl_->sub_mu);
    impl_->subscribers.erase(id_);
  }

 private:
  RocksStore::Impl* impl_;
  uint64_t id_;
};
}  // namespace

Result<std::unique_ptr<Subscription>> RocksStore::subscribe(AccountId account, ChangeHandler handler) {
  std::lock_guard lock(impl_->sub_mu);
  uint64_t id = impl_->next_subscriber++;
  impl_->subscribers[id] = Impl::Subscriber{account, std::move(handler)};
  return std::unique_ptr<Subscription>(new RocksSubscription(impl_.get(), id));
}

void RocksStore::Impl::publish(std::vector<ChangeEvent> events) {
  {
    std::lock_guard lock(notify_mu);
    notify_queue.push_back(std::move(events));
  }
  notify_cv.notify_one();
}

void RocksStore::Impl::notifier_loop() {
  for (;;) {
    std::vector<ChangeEvent> events;
    {
      std::unique_lock lock(notify_mu);
      notify_cv.wait(lock, [&] {
        if (!notify_queue.empty()) return true;
        std::lock_guard l(mu);
        return stopping;
      });
      if (notify_queue.empty()) return;
      events = std::move(notify_queue.front());
      notify_queue.pop_front();
    }
    // Handlers run under sub_mu so that a subscription destroyed after this
    // returns is never called again.
    std::lock_guard lock(sub_mu);
    for (auto& [id, sub] : subscribers) {
      std::vector<ChangeEvent> mine;
      for (const auto& e : events)
        if (sub.account == 0 || sub.account == e.account) mine.push_back(e);
      if (mine.empty()) continue;
      try {
        sub.handler(mine);
      } catch (const std::exception& e) {
        log::warn("change subscriber threw: {}", e.what());
      }
    }
  }
}

}  // namespace mail::store
