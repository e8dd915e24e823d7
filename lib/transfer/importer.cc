#include "transfer/importer.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_set>

#include <fmt/format.h>

#include "mime/summary.h"
#include "transfer/maildir.h"

namespace mail::transfer {
namespace fs = std::filesystem;

std::string_view kind_name(SourceKind k) {
  switch (k) {
    case SourceKind::maildir: return "maildir";
    case SourceKind::mbox: return "mbox";
    case SourceKind::eml: return "eml";
    case SourceKind::standard_input: return "stdin";
  }
  return "?";
}

// ---- planning ---------------------------------------------------------------------------

namespace {

constexpr size_t kQueueBytes = 12u << 20;  // read but not yet stored: bounds memory
// One store transaction (one fsync) holds up to this much; the next batch is
// prepared while it commits.
constexpr size_t kBatchBytes = 4u << 20;
constexpr size_t kBatchMessages = 256;
constexpr size_t kRecordBatch = 512;
constexpr const char* kNamespace = "import";

// The first bytes of a file.
std::string sniff(const std::string& path, size_t n = 4096) {
  std::string out(n, '\0');
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  ssize_t got = ::read(fd, out.data(), n);
  ::close(fd);
  out.resize(got > 0 ? static_cast<size_t>(got) : 0);
  return out;
}

bool has_ext(const std::string& name, std::string_view ext) {
  if (name.size() <= ext.size()) return false;
  std::string tail = name.substr(name.size() - ext.size());
  std::transform(tail.begin(), tail.end(), tail.begin(), ::tolower);
  return tail == ext;
}

// "Work.sbd/Project.mbox" -> "Work/Project"
std::string mailbox_for_relative(const fs::path& rel, bool strip_ext) {
  std::string out;
  for (auto it = rel.begin(); it != rel.end(); ++it) {
    std::string comp = it->string();
    bool last = std::next(it) == rel.end();
    if (!last && has_ext(comp, ".sbd")) comp.resize(comp.size() - 4);
    if (last && strip_ext) {
      for (std::string_view ext : {".mbox", ".mbx", ".mbs"})
        if (has_ext(comp, ext)) {
          comp.resize(comp.size() - ext.size());
          break;
        }
    }
    if (comp.empty() || comp == ".") continue;
    if (!out.empty()) out += '/';
    out += comp;
  }
  return out;
}

uint64_t file_size(const std::string& path) {
  std::error_code ec;
  auto s = fs::file_size(path, ec);
  return ec ? 0 : s;
}

Status add_maildir(std::vector<SourceEntry>& out, const std::string& root, const std::string& prefix) {
  MAIL_ASSIGN_OR_RETURN(auto folders, maildir_folders(root));
  for (auto& f : folders) {
    SourceEntry e;
    e.kind = SourceKind::maildir;
    e.path = f.path;
    e.mailbox = prefix.empty() ? f.mailbox : f.mailbox.empty() ? prefix : prefix + "/" + f.mailbox;
    uint64_t size = 0;
    for (const char* sub : {"/cur", "/new"}) {
      std::error_code ec;
      for (const auto& d : fs::directory_iterator(f.path + sub, ec))
        if (d.is_regular_file(ec)) size += d.file_size(ec);
    }
    e.size = size;
    out.push_back(std::move(e));
  }
  return Status::ok();
}

Status walk_tree(std::vector<SourceEntry>& out, const std::string& root, const std::string& dir) {
  std::error_code ec;
  std::vector<fs::directory_entry> children;
  for (const auto& e : fs::directory_iterator(dir, ec)) children.push_back(e);
  if (ec) return error(Code::io, "cannot list " + dir + ": " + ec.message());
  std::sort(children.begin(), children.end(), [](const auto& a, const auto& b) { return a.path() < b.path(); });
  for (const auto& e : children) {
    std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    std::string path = e.path().string();
    fs::path rel = fs::relative(e.path(), root, ec);
    if (e.is_directory(ec)) {
      if (is_maildir(path)) {
        MAIL_TRY(add_maildir(out, path, mailbox_for_relative(rel, false)));
      } else {
        MAIL_TRY(walk_tree(out, root, path));
      }
      continue;
    }
    if (!e.is_regular_file(ec)) continue;
    std::string head = sniff(path, 256);
    SourceEntry s;
    s.path = path;
    s.size = file_size(path);
    bool empty_mbox = head.empty() && (has_ext(name, ".mbox") || has_ext(name, ".mbx"));
    if (head.rfind("From ", 0) == 0 || empty_mbox) {
      s.kind = SourceKind::mbox;
      s.mailbox = mailbox_for_relative(rel, true);
    } else if (has_ext(name, ".eml") || looks_like_message(head)) {
      s.kind = SourceKind::eml;
      s.mailbox = mailbox_for_relative(rel.parent_path(), false);
    } else {
      continue;  // an index file or other non-mail: not ours to import
    }
    out.push_back(std::move(s));
  }
  return Status::ok();
}

}  // namespace

Result<std::vector<SourceEntry>> plan_sources(const std::string& path, std::string_view type) {
  std::vector<SourceEntry> out;
  if (type != "auto" && type != "maildir" && type != "mbox" && type != "eml")
    return error(Code::invalid, "unknown source type: " + std::string(type));
  if (path == "-") {
    SourceEntry e;
    e.kind = SourceKind::standard_input;
    e.path = "-";
    out.push_back(e);
    return out;
  }
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return error(Code::not_found, path + ": no such file or directory");
  if (fs::is_directory(st)) {
    if (type == "maildir" || (type == "auto" && is_maildir(path))) {
      MAIL_TRY(add_maildir(out, path, ""));
      return out;
    }
    if (type == "eml" || type == "mbox" || type == "auto") {
      MAIL_TRY(walk_tree(out, path, path));
      if (type != "auto")
        std::erase_if(out, [&](const SourceEntry& e) { return kind_name(e.kind) != type; });
      return out;
    }
  }
  SourceEntry e;
  e.path = path;
  e.size = file_size(path);
  if (type == "maildir") return error(Code::invalid, path + ": not a maildir (not a directory)");
  if (type == "mbox") e.kind = SourceKind::mbox;
  else if (type == "eml") e.kind = SourceKind::eml;
  else e.kind = sniff(path, 5) == "From " ? SourceKind::mbox : SourceKind::eml;
  out.push_back(e);
  return out;
}

// ---- sources ------------------------------------------------------------------------------

namespace {

class MboxSource final : public MessageSource {
 public:
  MboxSource(int fd, ReadFn read, const std::string& origin, MboxReader::Options options)
      : fd_(fd), reader_(std::move(read), origin, options) {}
  ~MboxSource() override {
    if (fd_ > 0) ::close(fd_);
  }
  Result<std::optional<SourceMessage>> next() override { return reader_.next(); }
  std::vector<std::string> take_warnings() override { return reader_.take_warnings(); }
  uint64_t skipped() const override { return reader_.skipped(); }
  uint64_t position() const override { return reader_.position(); }

 private:
  int fd_;
  MboxReader reader_;
};

class MaildirSource final : public MessageSource {
 public:
  explicit MaildirSource(MaildirReader r) : reader_(std::move(r)) {}
  Result<std::optional<SourceMessage>> next() override { return reader_.next(); }
  std::vector<std::string> take_warnings() override { return reader_.take_warnings(); }
  uint64_t skipped() const override { return reader_.skipped(); }
  uint64_t position() const override { return reader_.bytes_read(); }

 private:
  MaildirReader reader_;
};

// One message (a file or what was left of stdin).
class SingleSource final : public MessageSource {
 public:
  explicit SingleSource(std::optional<SourceMessage> m, std::vector<std::string> warnings, uint64_t skipped)
      : m_(std::move(m)), warnings_(std::move(warnings)), skipped_(skipped) {}
  Result<std::optional<SourceMessage>> next() override {
    if (m_) position_ = m_->content.size();
    return std::exchange(m_, std::nullopt);
  }
  std::vector<std::string> take_warnings() override { return std::exchange(warnings_, {}); }
  uint64_t skipped() const override { return skipped_; }
  uint64_t position() const override { return position_; }

 private:
  std::optional<SourceMessage> m_;
  std::vector<std::string> warnings_;
  uint64_t skipped_;
  uint64_t position_ = 0;
};

// Reads all of fd, up to max bytes (more: too_big).
Status read_all(int fd, std::string& out, size_t max, const std::string& origin) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return error(Code::io, origin + ": read: " + std::strerror(errno));
    if (n == 0) return Status::ok();
    if (out.size() + static_cast<size_t>(n) > max)
      return error(Code::too_big, origin + ": message larger than " + std::to_string(max) + " bytes skipped");
    out.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

Result<std::unique_ptr<MessageSource>> open_source(const SourceEntry& entry, MboxVariant variant,
                                                   size_t max_message_size) {
  MboxReader::Options mbox_options{variant, max_message_size};
  switch (entry.kind) {
    case SourceKind::maildir: {
      MAIL_ASSIGN_OR_RETURN(auto reader, MaildirReader::open(entry.path, max_message_size));
      return std::unique_ptr<MessageSource>(new MaildirSource(std::move(reader)));
    }
    case SourceKind::mbox: {
      int fd = ::open(entry.path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return error(Code::io, "cannot open " + entry.path + ": " + std::strerror(errno));
      posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
      return std::unique_ptr<MessageSource>(new MboxSource(fd, fd_reader(fd), entry.path, mbox_options));
    }
    case SourceKind::eml: {
      int fd = ::open(entry.path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return error(Code::io, "cannot open " + entry.path + ": " + std::strerror(errno));
      SourceMessage m;
      m.origin = entry.path;
      Status st = read_all(fd, m.content, max_message_size, entry.path);
      struct stat sb;
      store::UnixTime mtime = fstat(fd, &sb) == 0 ? sb.st_mtime : 0;
      ::close(fd);
      if (st.code() == Code::too_big)
        return std::unique_ptr<MessageSource>(new SingleSource(std::nullopt, {st.message()}, 1));
      MAIL_TRY(st);
      m.internal_date = date_from_headers(m.content);
      if (!m.internal_date) m.internal_date = mtime;
      return std::unique_ptr<MessageSource>(new SingleSource(std::move(m), {}, 0));
    }
    case SourceKind::standard_input: {
      // Peek: an mbox starts with "From ". The peeked bytes are replayed.
      std::string head;
      while (head.size() < 5) {
        char c[5];
        ssize_t n = ::read(0, c, 5 - head.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return error(Code::io, std::string("stdin: read: ") + std::strerror(errno));
        if (n == 0) break;
        head.append(c, static_cast<size_t>(n));
      }
      if (head == "From ") {
        ReadFn base = fd_reader(0);
        ReadFn replay = [head, base, done = false](char* buf, size_t cap) mutable -> Result<size_t> {
          if (!done) {
            done = true;
            size_t n = std::min(cap, head.size());
            std::memcpy(buf, head.data(), n);
            if (n < head.size()) return error(Code::internal, "read buffer too small");
            return n;
          }
          return base(buf, cap);
        };
        return std::unique_ptr<MessageSource>(new MboxSource(-1, std::move(replay), "stdin", mbox_options));
      }
      SourceMessage m;
      m.origin = "stdin";
      m.content = head;
      Status st = read_all(0, m.content, max_message_size, "stdin");
      if (st.code() == Code::too_big)
        return std::unique_ptr<MessageSource>(new SingleSource(std::nullopt, {st.message()}, 1));
      MAIL_TRY(st);
      m.internal_date = date_from_headers(m.content);
      return std::unique_ptr<MessageSource>(new SingleSource(std::move(m), {}, 0));
    }
  }
  return error(Code::internal, "unknown source kind");
}

// ---- importer -------------------------------------------------------------------------------

namespace {

using Hash = std::array<uint8_t, 16>;
struct HashHasher {
  size_t operator()(const Hash& h) const {
    size_t v;
    std::memcpy(&v, h.data(), sizeof v);
    return v;
  }
};

Hash hash_of(std::string_view content) {
  Hash h;
  crypto_generichash(h.data(), h.size(), reinterpret_cast<const unsigned char*>(content.data()), content.size(),
                     nullptr, 0);
  return h;
}

std::string record_key_prefix(store::MailboxId id) { return fmt::format("{:020}/", id); }

}  // namespace

struct Importer::Impl {
  struct MailboxState {
    store::MailboxId id = 0;
    std::string name;
    size_t counts = 0;  // index in stats.mailboxes
    std::unordered_set<Hash, HashHasher> hashes;
    std::vector<std::pair<store::Uid, Hash>> unrecorded;
  };
  // A message read from a source, numbered in reading order.
  struct Task {
    uint64_t seq = 0;
    MailboxState* mailbox = nullptr;
    SourceMessage message;
  };
  // A message ready to store; `dropped` when the import failed meanwhile.
  struct Prepared {
    MailboxState* mailbox = nullptr;
    Hash hash{};
    size_t queued = 0;  // its share of queued_bytes
    bool dropped = false;
    std::string where;  // file and offset, for errors
    store::DeliverReq req;
  };

  store::Store& store;
  store::AccountInfo account;
  ImportOptions options;

  mutable std::mutex mu;
  std::condition_variable work_cv, space_cv, idle_cv, commit_cv;
  // Readers push tasks; workers turn them into Prepared entries in parallel;
  // two committers store them in reading order, so UIDs follow the source.
  std::deque<Task> queue;
  std::map<uint64_t, Prepared> ready;  // by seq, waiting for their turn
  uint64_t next_seq = 0;               // the next task's number
  uint64_t commit_seq = 0;             // the next number to store
  size_t queued_bytes = 0;             // of messages read and not yet stored
  size_t preparing = 0;           // tasks the workers hold
  bool producer_waiting = false;  // the reader waits for memory to be freed
  bool stopping = false;
  bool committer_stop = false;
  Status failure;
  ImportStats stats;
  std::map<std::string, std::unique_ptr<MailboxState>> mailboxes;
  std::vector<std::thread> workers;
  std::thread committers[2];
  uint64_t lane = 0;        // our ordered lane in the store
  uint64_t next_batch = 0;  // its next sequence number
  uint64_t bytes_before = 0;  // input consumed by finished sources

  Impl(store::Store& s, store::AccountInfo a, ImportOptions o) : store(s), account(std::move(a)), options(std::move(o)) {}

  void warn(const std::string& text) {
    {
      std::lock_guard lock(mu);
      ++stats.warnings;
    }
    if (options.warn) options.warn(text);
  }

  Status write_record(MailboxState& mb, std::vector<std::pair<store::Uid, Hash>> batch) {
    if (batch.empty()) return Status::ok();
    store::Uid first = batch.front().first;
    std::string value;
    value.reserve(batch.size() * 20);
    for (auto& [uid, h] : batch) {
      first = std::min(first, uid);
      char be[4] = {static_cast<char>(uid >> 24), static_cast<char>(uid >> 16), static_cast<char>(uid >> 8),
                    static_cast<char>(uid)};
      value.append(be, 4);
      value.append(reinterpret_cast<const char*>(h.data()), h.size());
    }
    store::DataPutReq req;
    req.key = {account.id, kNamespace, record_key_prefix(mb.id) + fmt::format("{:010}", first)};
    req.value = std::move(value);
    auto r = store.data_put(req);
    if (!r) return r.status();
    return Status::ok();
  }

  // Finds or creates the mailbox and loads what it already holds.
  Result<MailboxState*> mailbox_state(const std::string& name) {
    if (auto it = mailboxes.find(name); it != mailboxes.end()) return it->second.get();
    auto mb = std::make_unique<MailboxState>();
    mb->name = name;
    auto got = store.mailbox_get({account.id, name});
    if (!got && got.code() == Code::not_found) {
      store::MailboxCreateReq create{account.id, name, special_use_for(name)};
      auto created = store.mailbox_create(create);
      if (!created && created.code() == Code::exists) got = store.mailbox_get({account.id, name});
      else got = std::move(created);
    }
    if (!got) return error(got.code(), "mailbox " + name + ": " + got.status().message());
    mb->id = got->id;

    // Duplicate records, kept only for messages still there.
    store::DataScanReq scan{account.id, kNamespace, record_key_prefix(mb->id), 0};
    MAIL_ASSIGN_OR_RETURN(auto records, store.data_scan(scan));
    std::vector<std::pair<store::Uid, Hash>> recorded;
    for (const auto& item : records.items) {
      const std::string& v = item.value;
      for (size_t p = 0; p + 20 <= v.size(); p += 20) {
        auto u = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(v[p + i])); };
        store::Uid uid = (u(0) << 24) | (u(1) << 16) | (u(2) << 8) | u(3);
        Hash h;
        std::memcpy(h.data(), v.data() + p + 4, h.size());
        recorded.emplace_back(uid, h);
      }
    }
    std::sort(recorded.begin(), recorded.end());
    MAIL_ASSIGN_OR_RETURN(auto list, store.message_list({mb->id}));
    std::vector<store::Uid> live;
    live.reserve(list.messages.size());
    for (const auto& e : list.messages) {
      live.push_back(e.uid);
      auto it = std::lower_bound(recorded.begin(), recorded.end(), std::make_pair(e.uid, Hash{}));
      if (it != recorded.end() && it->first == e.uid) {
        mb->hashes.insert(it->second);
        continue;
      }
      // Not recorded: hash what is stored.
      auto content = store.content_get({e.content});
      if (!content) return error(content.code(), "reading message " + std::to_string(e.uid) + " of " + name + ": " +
                                                     content.status().message());
      Hash h = hash_of(content->bytes);
      mb->hashes.insert(h);
      mb->unrecorded.emplace_back(e.uid, h);
      if (mb->unrecorded.size() >= kRecordBatch) MAIL_TRY(write_record(*mb, std::exchange(mb->unrecorded, {})));
    }
    MAIL_TRY(write_record(*mb, std::exchange(mb->unrecorded, {})));
    // Records none of whose messages is left go.
    for (const auto& item : records.items) {
      bool any = false;
      const std::string& v = item.value;
      for (size_t p = 0; p + 20 <= v.size() && !any; p += 20) {
        auto u = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(v[p + i])); };
        store::Uid uid = (u(0) << 24) | (u(1) << 16) | (u(2) << 8) | u(3);
        any = std::binary_search(live.begin(), live.end(), uid);
      }
      if (!any) (void)store.data_delete({account.id, kNamespace, item.key});
    }

    MailboxCounts counts;
    counts.mailbox = name;
    {
      std::lock_guard lock(mu);
      mb->counts = stats.mailboxes.size();
      stats.mailboxes.push_back(counts);
    }
    auto* raw = mb.get();
    mailboxes.emplace(name, std::move(mb));
    return raw;
  }

  void start_workers() {
    if (!workers.empty()) return;
    unsigned n = std::max(1u, options.jobs);
    for (unsigned i = 0; i < n; ++i) workers.emplace_back([this] { work(); });
    for (auto& c : committers) c = std::thread([this] { commit_loop(); });
  }

  // Queues one message read from a source; waits while too much is in memory.
  void push(MailboxState* mb, SourceMessage m) {
    std::unique_lock lock(mu);
    size_t size = m.content.size();
    auto room = [&] { return queued_bytes == 0 || queued_bytes + size <= kQueueBytes || !failure.is_ok(); };
    if (!room()) {
      producer_waiting = true;
      lock.unlock();
      commit_cv.notify_one();
      lock.lock();
      space_cv.wait(lock, room);
      producer_waiting = false;
    }
    queued_bytes += size;
    queue.push_back({next_seq++, mb, std::move(m)});
    lock.unlock();
    work_cv.notify_one();
  }

  void work() {
    for (;;) {
      Task task;
      {
        std::unique_lock lock(mu);
        work_cv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) return;
        task = std::move(queue.front());
        queue.pop_front();
        ++preparing;
      }
      Prepared p = prepare(task);
      {
        std::lock_guard lock(mu);
        ready.emplace(task.seq, std::move(p));
        --preparing;
      }
      commit_cv.notify_one();
    }
  }

  // The CPU part of a delivery, done in parallel: line endings, hash, summary.
  Prepared prepare(Task& task) {
    Prepared p;
    p.mailbox = task.mailbox;
    p.queued = task.message.content.size();
    {
      std::lock_guard lock(mu);
      p.dropped = !failure.is_ok();
    }
    if (p.dropped) return p;
    SourceMessage& m = task.message;
    p.where = m.origin + ": offset " + std::to_string(m.offset);
    p.req.content = to_crlf(m.content);
    m.content = std::string();
    p.hash = hash_of(p.req.content);
    {
      std::lock_guard lock(mu);  // already stored: the committer counts it, no need to parse it
      if (p.mailbox->hashes.count(p.hash)) {
        p.req.content = std::string();
        return p;
      }
    }
    p.req.internal_date = m.internal_date ? m.internal_date : date_from_headers(p.req.content);
    p.req.summary = mime::summarize(p.req.content);
    store::DeliveryTarget target;
    target.account = account.id;
    target.mailbox = p.mailbox->id;
    target.flags = m.flags;
    target.keywords = std::move(m.keywords);
    target.enforce_quota = options.enforce_quota;
    p.req.targets.push_back(std::move(target));
    return p;
  }

  void fail(const Status& st) {
    std::lock_guard lock(mu);
    if (failure.is_ok()) failure = st;
  }

  // Whether to store now (under mu): a full batch is ready in order, or
  // waiting cannot make it fuller (workers idle, reader blocked on memory, end).
  bool batch_due() const {
    if (!ready.count(commit_seq)) return false;
    if (committer_stop || producer_waiting || (queue.empty() && preparing == 0)) return true;
    size_t n = 0, bytes = 0;
    for (auto it = ready.find(commit_seq); it != ready.end() && it->first == commit_seq + n; ++it, ++n) {
      bytes += it->second.queued;
      if (n + 1 >= kBatchMessages || bytes >= kBatchBytes) return true;
    }
    return false;
  }

  // Stores prepared messages in reading order, a batch per transaction. Two
  // of these run, so one batch travels while the store commits the other; the
  // store's ordered lane keeps the batches (and so the UIDs) in order.
  void commit_loop() {
    for (;;) {
      size_t bytes = 0;
      std::vector<Prepared> batch;
      store::DeliverBatchReq req;
      {
        std::unique_lock lock(mu);
        commit_cv.wait(lock, [&] { return batch_due() || (committer_stop && ready.empty()); });
        if (!ready.count(commit_seq)) return;
        for (auto it = ready.find(commit_seq); it != ready.end() && it->first == commit_seq;
             it = ready.find(commit_seq)) {
          if (!batch.empty() && (batch.size() >= kBatchMessages || bytes + it->second.queued > kBatchBytes)) break;
          bytes += it->second.queued;
          Prepared p = std::move(it->second);
          ready.erase(it);
          ++commit_seq;
          // Duplicates (of stored messages or earlier in the source) are left
          // out here, in reading order: the first copy is kept.
          if (p.dropped || !failure.is_ok()) continue;
          if (!p.mailbox->hashes.insert(p.hash).second) {
            ++stats.duplicates;
            ++stats.mailboxes[p.mailbox->counts].duplicates;
            continue;
          }
          req.messages.push_back(std::move(p.req));
          batch.push_back(std::move(p));
        }
        if (!req.messages.empty()) {
          req.order_group = lane;
          req.order_seq = next_batch++;
        }
      }
      if (!req.messages.empty()) store_batch(batch, req);
      {
        std::lock_guard lock(mu);
        queued_bytes -= bytes;
      }
      space_cv.notify_all();
      idle_cv.notify_all();
    }
  }

  void store_batch(std::vector<Prepared>& batch, store::DeliverBatchReq& req) {
    auto r = store.deliver_batch(req);
    std::vector<std::pair<MailboxState*, std::vector<std::pair<store::Uid, Hash>>>> records;
    {
      std::lock_guard lock(mu);
      for (size_t i = 0; i < batch.size(); ++i) {
        Prepared& p = batch[i];
        MailboxState& mb = *p.mailbox;
        const store::DeliverReq& m = req.messages[i];
        Status st = r ? Status() : r.status();
        if (st.is_ok() && (r->messages[i].results.empty() || r->messages[i].results[0].code != Code::ok))
          st = r->messages[i].results.empty()
                   ? error(Code::internal, "no delivery result")
                   : error(r->messages[i].results[0].code, r->messages[i].results[0].message);
        if (!st.is_ok()) {
          mb.hashes.erase(p.hash);
          if (failure.is_ok())
            failure = error(st.code(), p.where + ": not imported into " + mb.name + ": " + st.message());
          continue;
        }
        ++stats.imported;
        stats.bytes_stored += m.content.size();
        auto& c = stats.mailboxes[mb.counts];
        ++c.imported;
        c.bytes += m.content.size();
        mb.unrecorded.emplace_back(r->messages[i].results[0].uid, p.hash);
        if (mb.unrecorded.size() >= kRecordBatch) records.emplace_back(&mb, std::exchange(mb.unrecorded, {}));
      }
    }
    // Duplicate records go in writes of their own (a lost record only costs
    // hashing that message again on the next run).
    for (auto& rec : records) {
      Status w = write_record(*rec.first, std::move(rec.second));
      if (!w.is_ok()) fail(w);
    }
  }

  void drain() {
    std::unique_lock lock(mu);
    idle_cv.wait(lock, [&] { return queued_bytes == 0 && queue.empty() && ready.empty(); });
  }

  void stop_workers() {
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    work_cv.notify_all();
    for (auto& t : workers) t.join();
    workers.clear();
    {
      std::lock_guard lock(mu);
      committer_stop = true;  // only now: every task read has been prepared
    }
    commit_cv.notify_all();
    for (auto& c : committers)
      if (c.joinable()) c.join();
    std::lock_guard lock(mu);
    stopping = false;
    committer_stop = false;
  }
};

Importer::Importer(store::Store& store, store::AccountInfo account, ImportOptions options)
    : impl_(std::make_unique<Impl>(store, std::move(account), std::move(options))) {
  if (sodium_init() < 0) impl_->failure = error(Code::internal, "libsodium failed to initialise");
  while (!impl_->lane) randombytes_buf(&impl_->lane, sizeof impl_->lane);
}

Importer::~Importer() {
  if (!impl_->workers.empty()) impl_->stop_workers();
}

std::string Importer::target_mailbox(const SourceEntry& entry) const {
  const std::string& base = impl_->options.mailbox;
  std::string name;
  if (base.empty()) name = entry.mailbox.empty() ? "INBOX" : entry.mailbox;
  else name = entry.mailbox.empty() ? base : base + "/" + entry.mailbox;
  return canonical_mailbox_name(name);
}

Status Importer::import(const SourceEntry& entry, MessageSource& source) {
  Impl& d = *impl_;
  {
    std::lock_guard lock(d.mu);
    MAIL_TRY(d.failure);
  }
  MAIL_ASSIGN_OR_RETURN(auto* mb, d.mailbox_state(target_mailbox(entry)));
  d.start_workers();
  uint64_t skipped_seen = 0;
  Status result;
  auto problem = [&](const std::string& text, bool skipped) -> Status {
    d.warn(text);
    if (skipped) {
      std::lock_guard lock(d.mu);
      ++d.stats.skipped;
      ++d.stats.mailboxes[mb->counts].skipped;
    }
    if (d.options.strict) return error(Code::invalid, text + " (--strict: import stopped)");
    return Status::ok();
  };
  for (;;) {
    {
      std::lock_guard lock(d.mu);
      if (!d.failure.is_ok()) break;
    }
    auto next = source.next();
    for (const auto& w : source.take_warnings()) {
      result = problem(w, false);
      if (!result.is_ok()) break;
    }
    if (!result.is_ok()) break;
    if (source.skipped() > skipped_seen) {
      std::lock_guard lock(d.mu);
      d.stats.skipped += source.skipped() - skipped_seen;
      d.stats.mailboxes[mb->counts].skipped += source.skipped() - skipped_seen;
      skipped_seen = source.skipped();
    }
    if (!next) {
      if (next.code() == Code::invalid) {  // not an mbox after all
        result = problem(next.status().message(), true);
        break;
      }
      result = next.status();
      break;
    }
    if (!*next) break;
    SourceMessage m = std::move(**next);
    {
      std::lock_guard lock(d.mu);
      ++d.stats.read;
    }
    std::string where = m.origin + (entry.kind == SourceKind::maildir ? "" : ": offset " + std::to_string(m.offset));
    for (const auto& w : m.warnings) {
      result = problem(where + ": " + w + " (imported as is)", false);
      if (!result.is_ok()) break;
    }
    if (!result.is_ok()) break;
    if (!looks_like_message(m.content)) {
      result = problem(where + ": not a message (no header field first), skipped", true);
      if (!result.is_ok()) break;
      continue;
    }
    if (d.options.progress) d.options.progress(d.bytes_before + source.position());
    d.push(mb, std::move(m));
  }
  d.bytes_before += source.position();
  {
    std::lock_guard lock(d.mu);
    d.stats.bytes_in = d.bytes_before;
  }
  if (d.options.progress) d.options.progress(d.bytes_before);
  return result;
}

Status Importer::finish() {
  Impl& d = *impl_;
  d.drain();
  d.stop_workers();
  Status failure;
  {
    std::lock_guard lock(d.mu);
    failure = d.failure;
  }
  for (auto& [name, mb] : d.mailboxes) {
    Status st = d.write_record(*mb, std::exchange(mb->unrecorded, {}));
    if (failure.is_ok() && !st.is_ok()) failure = st;
  }
  return failure;
}

ImportStats Importer::stats() const {
  std::lock_guard lock(impl_->mu);
  return impl_->stats;
}

}  // namespace mail::transfer
