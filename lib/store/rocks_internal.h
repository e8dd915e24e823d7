// Private to the RocksDB backend (rocks_*.cc): the key layout, the write
// transaction the writer thread runs operations in, and the shared state.
// Nothing outside lib/store/rocks_*.cc includes this file or RocksDB.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/utilities/write_batch_with_index.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "store/rocks_store.h"

namespace mail::store {

// Key layout (docs/STORE.md). Default column family, one-byte prefixes;
// integers big-endian so that keys sort numerically.
namespace key {
constexpr char kMeta = 'V';        // V <name>                      -> meta value
constexpr char kCounter = 'N';     // N <name>                      -> be64 counter
constexpr char kDomain = 'd';      // d <domain>                    -> DomainInfo
constexpr char kAccount = 'A';     // A <be64 account>              -> AccountRecord
constexpr char kAccountName = 'a'; // a <domain> 0 <local>          -> be64 account
constexpr char kAlias = 'l';       // l <domain> 0 <local>          -> AliasInfo ("" local: catch-all)
constexpr char kMailbox = 'M';     // M <be64 mailbox>              -> MailboxInfo
constexpr char kMailboxName = 'm'; // m <be64 account> <name>       -> be64 mailbox
constexpr char kMessage = 'E';     // E <be64 mailbox> <be32 uid>   -> MessageEntry
constexpr char kModseq = 'C';      // C <be64 mailbox> <be64 modseq> <be32 uid> -> ModseqRecord
constexpr char kAccountLog = 'J';  // J <be64 account> <be64 modseq> <be64 mailbox> -> ChangeEvent
constexpr char kContentMeta = 'K'; // K <be64 content>              -> ContentMeta
constexpr char kQueue = 'Q';       // Q <be64 queue>                -> QueueEntry
constexpr char kData = 'D';        // D <be64 account> <ns> 0 <key> -> bytes
// Column family "content": c <be64 content> -> [u8 1][zstd frame with checksum]

std::string meta(std::string_view name);
std::string counter(std::string_view name);
std::string domain(std::string_view name);
std::string account(AccountId id);
std::string account_name(std::string_view domain, std::string_view local);
std::string account_name_prefix(std::string_view domain);  // "" : every domain
std::string alias(std::string_view domain, std::string_view local);
std::string alias_prefix(std::string_view domain);
std::string mailbox(MailboxId id);
std::string mailbox_name(AccountId account, std::string_view name);
std::string message(MailboxId mailbox, Uid uid);
std::string message_prefix(MailboxId mailbox);
std::string modseq(MailboxId mailbox, ModSeq modseq, Uid uid);
std::string modseq_prefix(MailboxId mailbox);
std::string account_log(AccountId account, ModSeq modseq, MailboxId mailbox);
std::string account_log_prefix(AccountId account);
std::string content_meta(ContentId id);
std::string content(ContentId id);
std::string queue(QueueId id);
std::string data(AccountId account, std::string_view ns, std::string_view k);
std::string data_prefix(AccountId account, std::string_view ns);
std::string data_account_prefix(AccountId account);
}  // namespace key

// What the store keeps for an account: the public part and its verifiers.
struct AccountRecord {
  AccountInfo info;
  Credentials credentials;
  MAIL_FIELDS(info, credentials)
};

// One entry of a mailbox's modseq index: the message's latest change, or its
// expunge (a tombstone kept for QRESYNC's VANISHED).
struct ModseqRecord {
  Uid uid = 0;
  bool expunged = false;
  MAIL_FIELDS(uid, expunged)
};

// The write transaction an operation runs in, on the writer thread. Reads see
// the writes of earlier operations of the same group commit.
class Txn {
 public:
  Txn(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* content_cf, rocksdb::WriteBatchWithIndex* batch)
      : db_(db), content_cf_(content_cf), batch_(batch) {}

  Result<std::optional<std::string>> get(const std::string& k);
  // Many gets at once (read_in_key_order over the batch and the database).
  Result<std::vector<std::optional<std::string>>> get_many(const std::vector<std::string>& keys);
  bool exists(const std::string& k);
  void put(const std::string& k, std::string_view v);
  void del(const std::string& k);
  void put_content(ContentId id, std::string_view stored);
  void del_content(ContentId id);

  template <class T>
  Result<std::optional<T>> get_record(const std::string& k) {
    MAIL_ASSIGN_OR_RETURN(auto raw, get(k));
    if (!raw) return std::optional<T>();
    T v;
    if (!decode(*raw, v)) return error(Code::corrupt, "undecodable record at key " + printable(k));
    return std::optional<T>(std::move(v));
  }
  // A record that must exist: not_found with `what` otherwise.
  template <class T>
  Result<T> need(const std::string& k, const std::string& what) {
    MAIL_ASSIGN_OR_RETURN(auto v, get_record<T>(k));
    if (!v) return error(Code::not_found, what);
    return std::move(*v);
  }
  template <class T>
  void put_record(const std::string& k, const T& v) {
    put(k, encode(v));
  }

  // Calls fn(key, value) for each key starting with prefix (batch and database
  // merged) until it returns false.
  Status scan(const std::string& prefix,
              const std::function<bool(std::string_view, std::string_view)>& fn);

  uint64_t next_id(std::string_view counter_name);
  void add_counter(std::string_view counter_name, int64_t delta);
  uint64_t counter(std::string_view counter_name);

  std::vector<ChangeEvent>& events() { return events_; }

  static std::string printable(std::string_view k);

 private:
  rocksdb::DB* db_;
  rocksdb::ColumnFamilyHandle* content_cf_;
  rocksdb::WriteBatchWithIndex* batch_;
  std::vector<ChangeEvent> events_;
};

Status from_rocks(const rocksdb::Status& s, std::string_view what);

// The values of `keys` (any order; missing ones empty) read with one iterator
// walking them in key order: IMAP reads a whole mailbox's records, whose keys
// are mostly neighbours, and stepping on is far cheaper than a lookup each.
Result<std::vector<std::optional<std::string>>> read_in_key_order(rocksdb::Iterator& it,
                                                                 const std::vector<std::string>& keys);

// Content as stored: a version byte and a zstd frame carrying its own checksum.
std::string compress_content(std::string_view bytes);
Result<std::string> decompress_content(std::string_view stored);

// Orders writes of one client lane; see Impl::write.
struct WriteLane {
  uint64_t group = 0;
  uint64_t seq = 0;
};

struct RocksStore::Impl {
  Options options;
  int lock_fd = -1;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // [0] default, [1] content
  rocksdb::ColumnFamilyHandle* content_cf = nullptr;

  // The group commit queue.
  struct PendingWrite {
    std::function<Status(Txn&)> run;
    Status result;
    bool done = false;
  };
  std::mutex mu;
  std::condition_variable queued_cv;
  std::condition_variable done_cv;
  std::deque<PendingWrite*> queue;
  // Ordered lanes (DeliverBatchReq::order_group): the next seq each may queue.
  std::condition_variable order_cv;
  std::map<uint64_t, uint64_t> order_next;
  bool stopping = false;
  std::thread writer;

  // Change subscriptions, notified from their own thread.
  struct Subscriber {
    AccountId account;
    ChangeHandler handler;
  };
  std::mutex sub_mu;
  std::map<uint64_t, Subscriber> subscribers;
  uint64_t next_subscriber = 1;
  std::mutex notify_mu;
  std::condition_variable notify_cv;
  std::deque<std::vector<ChangeEvent>> notify_queue;
  std::thread notifier;

  ~Impl();
  void writer_loop();
  void notifier_loop();
  void publish(std::vector<ChangeEvent> events);

  // Runs fn on the writer thread inside a group commit; returns once durable.
  // With a lane (group != 0), writes of one group are queued in seq order
  // (0, 1, 2, ...), so callers may have several in flight and keep their order.
  Status write(std::function<Status(Txn&)> fn, WriteLane lane = {});
  template <class Resp, class F>
  Result<Resp> write_op(F&& fn, WriteLane lane = {}) {
    Resp resp;
    Status st = write(
        [&](Txn& txn) -> Status {
          auto r = fn(txn);
          if (!r.is_ok()) return r.status();
          resp = std::move(r).value();
          return Status::ok();
        },
        lane);
    if (!st.is_ok()) return st;
    return resp;
  }

  // Direct reads of committed data.
  Result<std::optional<std::string>> read(const std::string& k);
  template <class T>
  Result<std::optional<T>> read_record(const std::string& k) {
    MAIL_ASSIGN_OR_RETURN(auto raw, read(k));
    if (!raw) return std::optional<T>();
    T v;
    if (!decode(*raw, v)) return error(Code::corrupt, "undecodable record at key " + Txn::printable(k));
    return std::optional<T>(std::move(v));
  }
  template <class T>
  Result<T> read_need(const std::string& k, const std::string& what) {
    MAIL_ASSIGN_OR_RETURN(auto v, read_record<T>(k));
    if (!v) return error(Code::not_found, what);
    return std::move(*v);
  }
  // Many point reads at once (read_in_key_order).
  Result<std::vector<std::optional<std::string>>> read_many(const std::vector<std::string>& keys);
  template <class T>
  Result<std::vector<std::optional<T>>> read_records(const std::vector<std::string>& keys) {
    MAIL_ASSIGN_OR_RETURN(auto raw, read_many(keys));
    std::vector<std::optional<T>> out(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
      if (!raw[i]) continue;
      T v;
      if (!decode(*raw[i], v)) return error(Code::corrupt, "undecodable record at key " + Txn::printable(keys[i]));
      out[i] = std::move(v);
    }
    return out;
  }
  Status read_scan(const std::string& prefix,
                   const std::function<bool(std::string_view, std::string_view)>& fn,
                   const std::string& start_at = "");
};

// Shared steps of operations (rocks_ops_*.cc).
Result<AccountRecord> account_by_address(Txn& txn, const std::string& address);
ModSeq bump_account_modseq(AccountRecord& account);
Status release_content(Txn& txn, ContentId id);
Status add_content_ref(Txn& txn, ContentId id);
// Stores new content (compressed) with its meta and counts it.
void put_content(Txn& txn, const ContentMeta& meta, std::string_view stored);
// Adds a message entry at entry.uid (UIDNEXT moves past it): counters, usage, modseq index.
void put_message(Txn& txn, MailboxInfo& mailbox, AccountRecord& account, MessageEntry& entry, ModSeq modseq);
// Removes one message from a mailbox: entry, counters, modseq tombstone, usage, content ref.
Status expunge_message(Txn& txn, MailboxInfo& mailbox, AccountRecord& account,
                       const MessageEntry& entry, ModSeq modseq, bool keep_tombstone);
void record_change(Txn& txn, const MailboxInfo& mailbox, ChangeKind kind, ModSeq modseq,
                   std::vector<Uid> uids);
Result<MailboxInfo> create_mailbox(Txn& txn, AccountRecord& account, const std::string& name,
                                   SpecialUse special_use, bool subscribed);
UnixTime now_seconds();

}  // namespace mail::store
