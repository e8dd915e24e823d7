#include "transfer/backup.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "base/codec.h"
#include "mime/summary.h"

namespace mail::transfer {
namespace fs = std::filesystem;
namespace {

using Key = std::array<unsigned char, crypto_secretstream_xchacha20poly1305_KEYBYTES>;
constexpr const char* kMagic = "mail-backup 1";
constexpr const char* kSuffix = ".mbak";

// ---- records ---------------------------------------------------------------------------

enum class RecordType : uint8_t { domain = 1, account, alias, mailbox, message, vanished, mailbox_deleted };

struct AccountRec {
  store::AccountInfo info;
  store::Credentials credentials;
  MAIL_FIELDS(info, credentials)
};
struct MessageRec {
  store::MailboxId mailbox = 0;
  store::MessageEntry entry;
  bool has_content = false;  // false: a flag change of a message in an earlier backup
  std::string content;
  MAIL_FIELDS(mailbox, entry, has_content, content)
};
struct VanishedRec {
  store::MailboxId mailbox = 0;
  std::vector<store::Uid> uids;
  MAIL_FIELDS(mailbox, uids)
};
struct MailboxState {
  store::MailboxId id = 0;
  store::AccountId account = 0;
  std::string name;
  uint32_t uidvalidity = 0;
  store::Uid uidnext = 0;
  store::ModSeq highest_modseq = 0;
  MAIL_FIELDS(id, account, name, uidvalidity, uidnext, highest_modseq)
};
struct ChunkInfo {
  std::string name;
  uint64_t size = 0;
  std::string checksum;  // BLAKE2b-256 of the ciphertext
  uint64_t records = 0;
  MAIL_FIELDS(name, size, checksum, records)
};
struct Manifest {
  std::string id, kind, parent;
  int64_t created = 0;
  std::vector<ChunkInfo> chunks;
  std::vector<MailboxState> mailboxes;
  uint64_t messages = 0;
  uint64_t content_bytes = 0;
  MAIL_FIELDS(id, kind, parent, created, chunks, mailboxes, messages, content_bytes)
};

template <class T>
void put_record(std::string& out, RecordType type, const T& rec) {
  out.push_back(static_cast<char>(type));
  std::string body = encode(rec);
  Writer w(out);
  w.varint(body.size());
  out += body;
}

// ---- keys ------------------------------------------------------------------------------

struct Kdf {
  std::string alg = "none";
  std::string salt;  // raw
  uint64_t ops = 0;
  uint64_t mem = 0;
};

std::string hex(std::string_view raw) {
  std::string out(raw.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
  out.pop_back();
  return out;
}

Result<std::string> unhex(std::string_view text) {
  std::string out(text.size() / 2, '\0');
  size_t len = 0;
  if (sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), nullptr,
                     &len, nullptr) != 0 ||
      len != out.size())
    return error(Code::invalid, "bad hex");
  return out;
}

Result<Key> derive_key(const BackupKey& source, const Kdf& kdf) {
  Key key{};
  if (kdf.alg == "argon2id13") {
    if (!source.has_passphrase) return error(Code::denied, "this backup is protected by a passphrase, not a key file");
    if (kdf.salt.size() != crypto_pwhash_SALTBYTES) return error(Code::corrupt, "header: bad key derivation salt");
    if (crypto_pwhash(key.data(), key.size(), source.passphrase.data(), source.passphrase.size(),
                      reinterpret_cast<const unsigned char*>(kdf.salt.data()), kdf.ops, kdf.mem,
                      crypto_pwhash_ALG_ARGON2ID13) != 0)
      return error(Code::internal, "key derivation failed (out of memory?)");
    return key;
  }
  if (source.key_file.empty()) return error(Code::denied, "this backup is protected by a key file (--key-file)");
  std::ifstream in(source.key_file, std::ios::binary);
  if (!in) return error(Code::not_found, "cannot read key file " + source.key_file);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() == key.size()) {
    std::memcpy(key.data(), text.data(), key.size());
    return key;
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  auto raw = unhex(text);
  if (!raw || raw->size() != key.size())
    return error(Code::invalid, "key file " + source.key_file + ": expected 32 bytes or 64 hex digits");
  std::memcpy(key.data(), raw->data(), key.size());
  return key;
}

std::string key_check(const Key& key) {
  static const char kText[] = "mail-backup key check v1";
  unsigned char out[16];
  crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(kText), sizeof kText - 1, key.data(),
                     key.size());
  return hex(std::string_view(reinterpret_cast<const char*>(out), sizeof out));
}

std::string checksum(std::string_view data) {
  unsigned char out[32];
  crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(data.data()), data.size(), nullptr, 0);
  return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

// zstd, then secretstream bound to "<id>/<name>".
Result<std::string> seal(const Key& key, const std::string& id, const std::string& name, std::string_view plain) {
  std::string comp(ZSTD_compressBound(plain.size()), '\0');
  size_t clen = ZSTD_compress(comp.data(), comp.size(), plain.data(), plain.size(), 3);
  if (ZSTD_isError(clen)) return error(Code::internal, std::string("zstd: ") + ZSTD_getErrorName(clen));
  comp.resize(clen);
  std::string ad = id + "/" + name;
  std::string out(crypto_secretstream_xchacha20poly1305_HEADERBYTES + comp.size() +
                      crypto_secretstream_xchacha20poly1305_ABYTES,
                  '\0');
  crypto_secretstream_xchacha20poly1305_state st;
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  crypto_secretstream_xchacha20poly1305_init_push(&st, o, key.data());
  unsigned long long outlen = 0;
  crypto_secretstream_xchacha20poly1305_push(&st, o + crypto_secretstream_xchacha20poly1305_HEADERBYTES, &outlen,
                                             reinterpret_cast<const unsigned char*>(comp.data()), comp.size(),
                                             reinterpret_cast<const unsigned char*>(ad.data()), ad.size(),
                                             crypto_secretstream_xchacha20poly1305_TAG_FINAL);
  return out;
}

Result<std::string> unseal(const Key& key, const std::string& id, const std::string& name, std::string_view sealed) {
  constexpr size_t H = crypto_secretstream_xchacha20poly1305_HEADERBYTES;
  constexpr size_t A = crypto_secretstream_xchacha20poly1305_ABYTES;
  if (sealed.size() < H + A) return error(Code::corrupt, name + ": damaged (too short)");
  crypto_secretstream_xchacha20poly1305_state st;
  if (crypto_secretstream_xchacha20poly1305_init_pull(&st, reinterpret_cast<const unsigned char*>(sealed.data()),
                                                      key.data()) != 0)
    return error(Code::corrupt, name + ": damaged (bad stream header)");
  std::string comp(sealed.size() - H - A, '\0');
  unsigned long long len = 0;
  unsigned char tag = 0;
  std::string ad = id + "/" + name;
  if (crypto_secretstream_xchacha20poly1305_pull(
          &st, reinterpret_cast<unsigned char*>(comp.data()), &len, &tag,
          reinterpret_cast<const unsigned char*>(sealed.data() + H), sealed.size() - H,
          reinterpret_cast<const unsigned char*>(ad.data()), ad.size()) != 0 ||
      tag != crypto_secretstream_xchacha20poly1305_TAG_FINAL)
    return error(Code::corrupt, name + ": damaged (authentication failed)");
  comp.resize(len);
  unsigned long long size = ZSTD_getFrameContentSize(comp.data(), comp.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > (1ull << 31))
    return error(Code::corrupt, name + ": damaged (bad compressed frame)");
  std::string plain(size, '\0');
  size_t got = ZSTD_decompress(plain.data(), plain.size(), comp.data(), comp.size());
  if (ZSTD_isError(got) || got != size) return error(Code::corrupt, name + ": damaged (decompression failed)");
  return plain;
}

// ---- header ----------------------------------------------------------------------------

struct Header {
  std::string id, kind, parent;
  int64_t created = 0;
  Kdf kdf;
  std::string key_check;
};

std::string render_header(const Header& h) {
  std::string kdf = h.kdf.alg == "none" ? "none"
                                         : fmt::format("{} {} {} {}", h.kdf.alg, hex(h.kdf.salt), h.kdf.ops, h.kdf.mem);
  return fmt::format("{}\nid {}\nkind {}\nparent {}\ncreated {}\nkdf {}\nkey-check {}\n", kMagic, h.id, h.kind,
                     h.parent.empty() ? "-" : h.parent, h.created, kdf, h.key_check);
}

Result<Header> parse_header(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != kMagic) return error(Code::corrupt, "header: not a mail-backup file");
  Header h;
  while (std::getline(in, line)) {
    auto sp = line.find(' ');
    if (sp == std::string::npos) continue;
    std::string k = line.substr(0, sp), v = line.substr(sp + 1);
    if (k == "id") h.id = v;
    else if (k == "kind") h.kind = v;
    else if (k == "parent") h.parent = v == "-" ? "" : v;
    else if (k == "created") h.created = std::strtoll(v.c_str(), nullptr, 10);
    else if (k == "key-check") h.key_check = v;
    else if (k == "kdf") {
      std::istringstream kv(v);
      std::string salt;
      kv >> h.kdf.alg;
      if (h.kdf.alg != "none") {
        kv >> salt >> h.kdf.ops >> h.kdf.mem;
        auto raw = unhex(salt);
        if (!raw) return error(Code::corrupt, "header: bad salt");
        h.kdf.salt = *raw;
      }
    }
  }
  if (h.id.empty() || (h.kind != "full" && h.kind != "incremental") || h.key_check.empty())
    return error(Code::corrupt, "header: damaged");
  return h;
}

// ---- tar -------------------------------------------------------------------------------

class TarWriter {
 public:
  ~TarWriter() {
    if (a_) archive_write_free(a_);
  }
  Status open(int fd) {
    a_ = archive_write_new();
    archive_write_set_format_pax_restricted(a_);
    archive_write_set_bytes_in_last_block(a_, 1);
    if (archive_write_open_fd(a_, fd) != ARCHIVE_OK) return err("open");
    return Status::ok();
  }
  Status add(const std::string& name, std::string_view data) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0600);
    archive_entry_set_mtime(e, std::time(nullptr), 0);
    int r = archive_write_header(a_, e);
    archive_entry_free(e);
    if (r != ARCHIVE_OK) return err("write " + name);
    size_t done = 0;
    while (done < data.size()) {
      la_ssize_t n = archive_write_data(a_, data.data() + done, std::min<size_t>(data.size() - done, 1u << 20));
      if (n < 0) return err("write " + name);
      done += static_cast<size_t>(n);
    }
    return Status::ok();
  }
  Status close() {
    if (archive_write_close(a_) != ARCHIVE_OK) return err("close");
    return Status::ok();
  }

 private:
  Status err(const std::string& what) {
    const char* s = archive_error_string(a_);
    return error(Code::io, "backup: " + what + ": " + (s ? s : "write error"));
  }
  archive* a_ = nullptr;
};

class TarReader {
 public:
  ~TarReader() {
    if (a_) archive_read_free(a_);
    if (fd_ > 2) ::close(fd_);
  }
  Status open(const std::string& path) {
    fd_ = path == "-" ? 0 : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return error(Code::not_found, "cannot open " + path + ": " + std::strerror(errno));
    a_ = archive_read_new();
    archive_read_support_format_tar(a_);
    if (archive_read_open_fd(a_, fd_, 1 << 16) != ARCHIVE_OK) return err("open " + path);
    return Status::ok();
  }
  // The next entry; name "" at the end.
  Status next(std::string& name, std::string& data, size_t max = 1u << 30) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(a_, &e);
    if (r == ARCHIVE_EOF) {
      name.clear();
      return Status::ok();
    }
    if (r != ARCHIVE_OK) return err("damaged archive after " + (last_.empty() ? std::string("its start") : last_));
    name = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
    la_int64_t size = archive_entry_size(e);
    if (size < 0 || static_cast<uint64_t>(size) > max) return error(Code::corrupt, name + ": damaged (bad size)");
    data.resize(static_cast<size_t>(size));
    size_t got = 0;
    while (got < data.size()) {
      la_ssize_t n = archive_read_data(a_, data.data() + got, data.size() - got);
      if (n < 0) return err(name + ": damaged archive");
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    if (got != data.size()) return error(Code::corrupt, name + ": damaged (truncated)");
    last_ = name;
    return Status::ok();
  }

 private:
  Status err(const std::string& what) {
    const char* s = archive_error_string(a_);
    return error(Code::corrupt, what + ": " + (s ? s : "read error"));
  }
  archive* a_ = nullptr;
  int fd_ = -1;
  std::string last_;
};

// ---- reading a whole backup ------------------------------------------------------------

// Reads a backup front to back: header, key, every chunk (checked and
// decrypted), the manifest (checked against the chunks). on_records gets each
// chunk's plaintext in order.
Result<Manifest> read_backup(const std::string& path, const BackupKey& key_source, Header* header_out,
                             const std::function<Status(std::string_view)>& on_records) {
  TarReader tar;
  MAIL_TRY(tar.open(path));
  std::string name, data;
  MAIL_TRY(tar.next(name, data, 1 << 16));
  if (name != "header") return error(Code::corrupt, path + ": not a mail-backup file (no header first)");
  MAIL_ASSIGN_OR_RETURN(Header header, parse_header(data));
  MAIL_ASSIGN_OR_RETURN(Key key, derive_key(key_source, header.kdf));
  if (key_check(key) != header.key_check) return error(Code::denied, path + ": wrong key or passphrase");
  if (header_out) *header_out = header;
  std::vector<ChunkInfo> seen;
  for (;;) {
    MAIL_TRY(tar.next(name, data));
    if (name.empty()) return error(Code::corrupt, path + ": damaged (no manifest: truncated?)");
    if (name == "manifest") break;
    if (name.rfind("chunks/", 0) != 0) return error(Code::corrupt, path + ": unexpected entry " + name);
    ChunkInfo c{name, data.size(), checksum(data), 0};
    auto plain = unseal(key, header.id, name, data);
    if (!plain) return error(plain.code(), path + ": " + plain.status().message());
    if (on_records) {
      Status st = on_records(*plain);
      if (!st.is_ok()) return error(st.code(), name + ": " + st.message());
    }
    seen.push_back(std::move(c));
  }
  auto plain = unseal(key, header.id, "manifest", data);
  if (!plain) return error(plain.code(), path + ": " + plain.status().message());
  Manifest m;
  if (!decode(*plain, m)) return error(Code::corrupt, path + ": manifest: damaged (undecodable)");
  if (m.id != header.id) return error(Code::corrupt, path + ": manifest belongs to another backup");
  for (size_t i = 0; i < m.chunks.size(); ++i) {
    if (i >= seen.size()) return error(Code::corrupt, path + ": " + m.chunks[i].name + ": missing");
    if (seen[i].name != m.chunks[i].name || seen[i].checksum != m.chunks[i].checksum ||
        seen[i].size != m.chunks[i].size)
      return error(Code::corrupt, path + ": " + seen[i].name + ": damaged (checksum mismatch)");
  }
  if (seen.size() > m.chunks.size()) return error(Code::corrupt, path + ": " + seen[m.chunks.size()].name + ": unexpected");
  return m;
}

// Calls f(type, body) for each record of a chunk.
Status for_each_record(std::string_view plain, const std::function<Status(RecordType, std::string_view)>& f) {
  Reader r(plain);
  while (!r.at_end()) {
    uint64_t type;
    std::string_view body;
    if (!r.varint(type) || !r.bytes(body)) return error(Code::corrupt, "damaged (undecodable record)");
    MAIL_TRY(f(static_cast<RecordType>(type), body));
  }
  return Status::ok();
}

std::string make_id(int64_t t, const std::string& kind, const std::string& dir) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm {};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  std::string base = std::string(buf) + "-" + (kind == "full" ? "full" : "incr");
  std::string id = base;
  for (int n = 2; !dir.empty() && fs::exists(fs::path(dir) / (id + kSuffix)); ++n) id = base + "-" + std::to_string(n);
  return id;
}

}  // namespace

// ---- lock, keygen ------------------------------------------------------------------------

Result<BackupLock> BackupLock::take(const std::string& dir) {
  BackupLock lock;
  std::string path = dir + "/.mail-backup.lock";
  lock.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock.fd_ < 0) return error(Code::io, "cannot open " + path + ": " + std::strerror(errno));
  if (::flock(lock.fd_, LOCK_EX | LOCK_NB) != 0)
    return error(Code::busy, "another mail-backup is running on " + dir);
  return lock;
}

BackupLock::~BackupLock() {
  if (fd_ >= 0) ::close(fd_);
}

Status backup_keygen(const std::string& path) {
  if (sodium_init() < 0) return error(Code::internal, "libsodium failed to initialise");
  Key key;
  randombytes_buf(key.data(), key.size());
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return error(errno == EEXIST ? Code::exists : Code::io, "cannot create " + path + ": " + std::strerror(errno));
  std::string text = hex(std::string_view(reinterpret_cast<const char*>(key.data()), key.size())) + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok) return error(Code::io, "cannot write " + path);
  return Status::ok();
}

// ---- create ------------------------------------------------------------------------------

Result<BackupInfo> backup_create(store::Store& store, const BackupCreateOptions& options) {
  if (sodium_init() < 0) return error(Code::internal, "libsodium failed to initialise");
  bool to_stdout = options.dest == "-";
  if (options.incremental && to_stdout)
    return error(Code::invalid, "an incremental backup needs the backup directory (its parent is there)");
  if (!to_stdout) {
    std::error_code ec;
    fs::create_directories(options.dest, ec);
    if (ec) return error(Code::io, "cannot create " + options.dest + ": " + ec.message());
  }

  Header header;
  header.created = std::time(nullptr);
  header.kind = options.incremental ? "incremental" : "full";
  if (options.key.has_passphrase) {
    header.kdf.alg = "argon2id13";
    header.kdf.salt.resize(crypto_pwhash_SALTBYTES);
    randombytes_buf(header.kdf.salt.data(), header.kdf.salt.size());
    header.kdf.ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
    header.kdf.mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
  }
  MAIL_ASSIGN_OR_RETURN(Key key, derive_key(options.key, header.kdf));
  header.key_check = key_check(key);

  // The parent's mailbox states.
  std::map<store::MailboxId, MailboxState> parent;
  if (options.incremental) {
    MAIL_ASSIGN_OR_RETURN(auto list, backup_list(options.dest));
    if (list.empty()) return error(Code::not_found, "no backup in " + options.dest + " to be incremental to");
    const BackupInfo& last = list.back();
    MAIL_ASSIGN_OR_RETURN(Manifest pm, read_backup(last.path, options.key, nullptr, nullptr));
    header.parent = pm.id;
    for (const auto& m : pm.mailboxes) parent[m.id] = m;
  }
  header.id = make_id(header.created, header.kind, to_stdout ? "" : options.dest);

  std::string final_path = to_stdout ? "-" : options.dest + "/" + header.id + kSuffix;
  std::string tmp_path = to_stdout ? "-" : final_path + ".tmp";
  int fd = to_stdout ? 1 : ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return error(Code::io, "cannot create " + tmp_path + ": " + std::strerror(errno));
  struct Closer {
    int fd;
    std::string tmp;
    bool done = false;
    ~Closer() {
      if (fd > 1) ::close(fd);
      if (!done && tmp != "-") ::unlink(tmp.c_str());
    }
  } closer{fd, tmp_path};

  TarWriter tar;
  MAIL_TRY(tar.open(fd));
  MAIL_TRY(tar.add("header", render_header(header)));

  Manifest manifest;
  manifest.id = header.id;
  manifest.kind = header.kind;
  manifest.parent = header.parent;
  manifest.created = header.created;
  std::string raw;
  uint64_t records = 0;
  auto flush = [&](bool force) -> Status {
    if (raw.empty() || (!force && raw.size() < options.chunk_bytes)) return Status::ok();
    std::string name = fmt::format("chunks/{:06}", manifest.chunks.size() + 1);
    MAIL_ASSIGN_OR_RETURN(std::string sealed, seal(key, header.id, name, raw));
    manifest.chunks.push_back({name, sealed.size(), checksum(sealed), records});
    MAIL_TRY(tar.add(name, sealed));
    raw.clear();
    records = 0;
    return Status::ok();
  };
  auto add = [&](RecordType type, const auto& rec) -> Status {
    put_record(raw, type, rec);
    ++records;
    return flush(false);
  };
  auto message = [&](store::MailboxId mailbox, const store::MessageEntry& e, bool with_content) -> Status {
    MessageRec rec{mailbox, e, with_content, {}};
    if (with_content) {
      auto content = store.content_get({e.content});
      if (!content) {
        if (content.code() == Code::not_found) return Status::ok();  // expunged meanwhile
        return content.status();
      }
      rec.content = std::move(content->bytes);
      ++manifest.messages;
      manifest.content_bytes += rec.content.size();
      if (options.progress) options.progress(manifest.messages, manifest.content_bytes);
    }
    return add(RecordType::message, rec);
  };

  MAIL_ASSIGN_OR_RETURN(auto domains, store.domain_list({}));
  for (const auto& d : domains.domains) MAIL_TRY(add(RecordType::domain, d));
  MAIL_ASSIGN_OR_RETURN(auto accounts, store.account_list({""}));
  for (const auto& a : accounts.accounts) {
    auto auth = store.account_auth({a.address});
    MAIL_TRY(add(RecordType::account, AccountRec{a, auth ? auth->credentials : store::Credentials{}}));
  }
  MAIL_ASSIGN_OR_RETURN(auto aliases, store.alias_list({""}));
  for (const auto& al : aliases.aliases) MAIL_TRY(add(RecordType::alias, al));

  std::set<store::MailboxId> present;
  for (const auto& a : accounts.accounts) {
    auto boxes = store.mailbox_list({a.id});
    if (!boxes) {
      if (boxes.code() == Code::not_found) continue;  // account removed meanwhile
      return boxes.status();
    }
    for (const auto& box : boxes->mailboxes) {
      present.insert(box.id);
      MAIL_TRY(add(RecordType::mailbox, box));
      MailboxState state{box.id, box.account, box.name, box.uidvalidity, box.uidnext, box.highest_modseq};
      auto p = parent.find(box.id);
      if (p != parent.end() && p->second.uidvalidity == box.uidvalidity) {
        auto changes = store.changes({box.id, p->second.highest_modseq});
        if (!changes) {
          if (changes.code() == Code::not_found) continue;
          return changes.status();
        }
        state.highest_modseq = changes->highest_modseq;
        for (const auto& e : changes->changed) {
          MAIL_TRY(message(box.id, e, e.uid >= p->second.uidnext));
          state.uidnext = std::max(state.uidnext, e.uid + 1);
        }
        state.uidnext = std::max(state.uidnext, p->second.uidnext);
        if (!changes->vanished.empty()) MAIL_TRY(add(RecordType::vanished, VanishedRec{box.id, changes->vanished}));
      } else {
        auto list = store.message_list({box.id});
        if (!list) {
          if (list.code() == Code::not_found) continue;
          return list.status();
        }
        for (const auto& e : list->messages) {
          MAIL_TRY(message(box.id, e, true));
          state.uidnext = std::max(state.uidnext, e.uid + 1);
        }
      }
      manifest.mailboxes.push_back(state);
    }
  }
  for (const auto& [id, state] : parent)
    if (!present.count(id)) MAIL_TRY(add(RecordType::mailbox_deleted, state));
  MAIL_TRY(flush(true));
  MAIL_ASSIGN_OR_RETURN(std::string sealed_manifest, seal(key, header.id, "manifest", encode(manifest)));
  MAIL_TRY(tar.add("manifest", sealed_manifest));
  MAIL_TRY(tar.close());

  BackupInfo info;
  info.id = header.id;
  info.kind = header.kind;
  info.parent = header.parent;
  info.created = header.created;
  info.path = final_path;
  info.chunks = manifest.chunks.size();
  info.messages = manifest.messages;
  info.content_bytes = manifest.content_bytes;
  if (!to_stdout) {
    if (::fsync(fd) != 0) return error(Code::io, "cannot write " + tmp_path + ": " + std::strerror(errno));
    if (::rename(tmp_path.c_str(), final_path.c_str()) != 0)
      return error(Code::io, "cannot rename to " + final_path + ": " + std::strerror(errno));
    closer.done = true;
    int dfd = ::open(options.dest.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
    std::error_code ec;
    info.size = fs::file_size(final_path, ec);
  }
  closer.done = true;
  return info;
}

// ---- list, verify --------------------------------------------------------------------------

Result<std::vector<BackupInfo>> backup_list(const std::string& dir) {
  std::vector<BackupInfo> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.size() <= std::strlen(kSuffix) || !name.ends_with(kSuffix)) continue;
    TarReader tar;
    std::string entry, data;
    BackupInfo info;
    info.path = e.path().string();
    info.size = e.file_size(ec);
    if (!tar.open(info.path).is_ok() || !tar.next(entry, data, 1 << 16).is_ok() || entry != "header") continue;
    auto h = parse_header(data);
    if (!h) continue;
    info.id = h->id;
    info.kind = h->kind;
    info.parent = h->parent;
    info.created = h->created;
    out.push_back(std::move(info));
  }
  if (ec) return error(Code::io, "cannot list " + dir + ": " + ec.message());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

Result<BackupInfo> backup_verify(const std::string& path, const BackupKey& key) {
  if (sodium_init() < 0) return error(Code::internal, "libsodium failed to initialise");
  Header header;
  uint64_t messages = 0;
  MAIL_ASSIGN_OR_RETURN(Manifest m, read_backup(path, key, &header, [&](std::string_view plain) {
                          return for_each_record(plain, [&](RecordType type, std::string_view body) -> Status {
                            bool ok = true;
                            switch (type) {
                              case RecordType::domain: {
                                store::DomainInfo d;
                                ok = decode(body, d);
                                break;
                              }
                              case RecordType::account: {
                                AccountRec a;
                                ok = decode(body, a);
                                break;
                              }
                              case RecordType::message: {
                                MessageRec r;
                                ok = decode(body, r);
                                if (ok && r.has_content) ++messages;
                                break;
                              }
                              default:
                                break;
                            }
                            if (!ok) return error(Code::corrupt, "damaged (undecodable record)");
                            return Status::ok();
                          });
                        }));
  if (messages != m.messages) return error(Code::corrupt, path + ": manifest and chunks disagree on the message count");
  BackupInfo info;
  info.id = m.id;
  info.kind = m.kind;
  info.parent = m.parent;
  info.created = m.created;
  info.path = path;
  info.chunks = m.chunks.size();
  info.messages = m.messages;
  info.content_bytes = m.content_bytes;
  std::error_code ec;
  if (path != "-") info.size = fs::file_size(path, ec);
  return info;
}

// ---- restore -------------------------------------------------------------------------------

namespace {

struct RestoreState {
  store::Store& store;
  const RestoreOptions& options;
  bool everything;
  RestoreStats stats;
  std::unordered_map<store::AccountId, store::AccountId> accounts;  // old -> new
  struct Box {
    store::MailboxId id = 0;        // in the target store
    store::AccountId account = 0;   // in the target store
    std::unordered_map<store::Uid, store::Uid> uids;  // old -> new (a whole-store restore keeps UIDs: unused)
  };
  std::unordered_map<store::MailboxId, Box> boxes;  // old -> new
  std::unordered_map<store::AccountId, std::string> account_names;  // old id -> old address
  // A whole-store restore stores each content once, as the source did: old id -> new id.
  std::unordered_map<store::ContentId, store::ContentId> contents;
  std::unordered_set<store::ContentId> pending_contents;  // old ids of contents in `pending`

  // The UID of a backed-up message in the target store (0: not there).
  store::Uid uid_of(Box& box, store::Uid old) {
    if (everything) return old;
    auto it = box.uids.find(old);
    return it == box.uids.end() ? 0 : it->second;
  }

  Status ensure_domain(const std::string& address) {
    auto at = address.rfind('@');
    if (at == std::string::npos) return Status::ok();
    auto r = store.domain_add({address.substr(at + 1)});
    if (r || r.code() == Code::exists) return Status::ok();
    return r.status();
  }

  struct Pending {
    Box* box = nullptr;  // stable: map nodes do not move, and no mailbox goes while messages are pending
    store::Uid old_uid = 0;
    store::ContentId old_content = 0;
    store::DeliverReq req;      // into another store's mailboxes: new UIDs
    store::MessageInsertReq insert;  // whole store (`everything`): UIDs and shared content kept
  };
  std::vector<Pending> pending;
  size_t pending_bytes = 0;

  // Stores the pending messages with options.jobs threads, then maps their
  // UIDs in backup order.
  Status flush() {
    if (pending.empty()) return Status::ok();
    std::vector<std::optional<Result<store::DeliverResp>>> results(pending.size());
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t i; (i = next++) < pending.size();) {
        if (everything) {
          results[i] = insert(pending[i].insert);
          continue;
        }
        pending[i].req.summary = mime::summarize(pending[i].req.content);
        results[i] = store.deliver(pending[i].req);
        pending[i].req.content = std::string();
      }
    };
    std::vector<std::thread> threads;
    unsigned n = std::min<size_t>(std::max(1u, options.jobs), pending.size());
    for (unsigned i = 1; i < n; ++i) threads.emplace_back(work);
    work();
    for (auto& t : threads) t.join();
    Status first;
    for (size_t i = 0; i < pending.size(); ++i) {
      const auto& r = *results[i];
      Status st = r ? Status() : r.status();
      if (st.is_ok() && (r->results.empty() || r->results[0].code != Code::ok))
        st = error(r->results.empty() ? Code::internal : r->results[0].code,
                   r->results.empty() ? "no delivery result" : r->results[0].message);
      if (!st.is_ok()) {
        if (first.is_ok()) first = st;
        continue;
      }
      if (everything) contents.emplace(pending[i].old_content, r->content);
      else pending[i].box->uids[pending[i].old_uid] = r->results[0].uid;
      ++stats.messages;
    }
    pending.clear();
    pending_contents.clear();
    pending_bytes = 0;
    if (options.progress) options.progress(stats.messages);
    return first;
  }

  Status apply(RecordType type, std::string_view body) {
    if (type != RecordType::message) MAIL_TRY(flush());
    switch (type) {
      case RecordType::domain: {
        store::DomainInfo d;
        if (!decode(body, d)) return error(Code::corrupt, "damaged (undecodable record)");
        if (!everything) return Status::ok();
        auto r = store.domain_add({d.name});
        if (r) ++stats.domains;
        else if (r.code() != Code::exists) return r.status();
        return Status::ok();
      }
      case RecordType::account: {
        AccountRec a;
        if (!decode(body, a)) return error(Code::corrupt, "damaged (undecodable record)");
        account_names[a.info.id] = a.info.address;
        if (!everything && a.info.address != options.account) return Status::ok();
        std::string address = (!options.as.empty() && options.mailbox.empty()) ? options.as : a.info.address;
        auto got = store.account_get({address});
        if (got) {
          accounts[a.info.id] = got->id;
          return Status::ok();
        }
        if (got.code() != Code::not_found) return got.status();
        MAIL_TRY(ensure_domain(address));
        auto added = store.account_add({address, a.credentials, a.info.quota, a.info.display_name});
        if (!added) return error(added.code(), "account " + address + ": " + added.status().message());
        accounts[a.info.id] = added->id;
        ++stats.accounts;
        return Status::ok();
      }
      case RecordType::alias: {
        store::AliasInfo al;
        if (!decode(body, al)) return error(Code::corrupt, "damaged (undecodable record)");
        if (!everything) return Status::ok();
        auto r = store.alias_add({al.source, al.targets});
        if (!r && r.code() != Code::exists) return r.status();
        return Status::ok();
      }
      case RecordType::mailbox: {
        store::MailboxInfo box;
        if (!decode(body, box)) return error(Code::corrupt, "damaged (undecodable record)");
        auto acc = accounts.find(box.account);
        if (acc == accounts.end()) return Status::ok();
        if (!options.mailbox.empty() && box.name != options.mailbox) return Status::ok();
        std::string name = (!options.mailbox.empty() && !options.as.empty()) ? options.as : box.name;
        auto known = boxes.find(box.id);
        if (known != boxes.end()) {
          // Renamed since the previous backup of the chain.
          auto cur = store.mailbox_get({acc->second, name});
          if (cur && everything && cur->id != known->second.id) {  // the name is another's now: move that aside
            MAIL_TRY(store.mailbox_rename({acc->second, name, name + ".restore-" + std::to_string(cur->id)}).status());
            cur = store.mailbox_get({acc->second, name});
          }
          if (!cur && cur.code() == Code::not_found && options.mailbox.empty()) {
            auto all = store.mailbox_list({acc->second});
            if (all)
              for (const auto& m : all->mailboxes)
                if (m.id == known->second.id) (void)store.mailbox_rename({acc->second, m.name, name});
          }
          if (everything) MAIL_TRY(restore_state(known->second.id, box));
          return Status::ok();
        }
        auto got = store.mailbox_get({acc->second, name});
        if (got && everything && held_by_other_backup_mailbox(got->id)) {
          // Deleted or renamed away and the name reused since: move the old one
          // aside; its own rename or deletion record follows in this backup.
          MAIL_TRY(store.mailbox_rename({acc->second, name, name + ".restore-" + std::to_string(got->id)}).status());
          got = store.mailbox_get({acc->second, name});
        }
        if (!got && got.code() == Code::not_found) {
          got = store.mailbox_create({acc->second, name, box.special_use});
          if (got) ++stats.mailboxes;
        }
        if (!got) return error(got.code(), "mailbox " + name + ": " + got.status().message());
        if (box.subscribed && !got->subscribed) (void)store.mailbox_subscribe({acc->second, name, true});
        if (everything) MAIL_TRY(restore_state(got->id, box));
        boxes[box.id].id = got->id;
        boxes[box.id].account = acc->second;
        return Status::ok();
      }
      case RecordType::message: {
        MessageRec m;
        if (!decode(body, m)) return error(Code::corrupt, "damaged (undecodable record)");
        auto box = boxes.find(m.mailbox);
        if (box == boxes.end()) return Status::ok();
        if (!m.has_content) {
          MAIL_TRY(flush());
          store::Uid uid = uid_of(box->second, m.entry.uid);
          if (!uid) return Status::ok();
          store::FlagsUpdateReq req{box->second.id, {uid}, store::FlagMode::set, m.entry.flags, m.entry.keywords};
          auto r = store.flags_update(req);
          if (!r && r.code() != Code::not_found) return r.status();
          ++stats.flag_updates;
          return Status::ok();
        }
        // Delivered in batches, several at once (the store commits them together).
        if (everything) {
          // A second copy of a content waits for the first to be stored, then shares it.
          if (pending_contents.count(m.entry.content)) MAIL_TRY(flush());
          store::MessageInsertReq in{box->second.id, m.entry.uid, m.entry.flags, m.entry.keywords,
                                     m.entry.internal_date};
          auto known = contents.find(m.entry.content);
          if (known != contents.end()) {
            in.content = known->second;
          } else {
            in.bytes = std::move(m.content);
            pending_contents.insert(m.entry.content);
          }
          pending_bytes += in.bytes.size();
          pending.push_back(Pending{&box->second, m.entry.uid, m.entry.content, {}, std::move(in)});
          if (pending.size() >= 256 || pending_bytes >= (8u << 20)) return flush();
          return Status::ok();
        }
        Pending p;
        p.box = &box->second;
        p.old_uid = m.entry.uid;
        p.req.internal_date = m.entry.internal_date;
        p.req.content = std::move(m.content);
        store::DeliveryTarget t;
        t.account = box->second.account;
        t.mailbox = box->second.id;
        t.flags = m.entry.flags;
        t.keywords = m.entry.keywords;
        t.enforce_quota = false;
        p.req.targets.push_back(std::move(t));
        pending_bytes += p.req.content.size();
        pending.push_back(std::move(p));
        if (pending.size() >= 256 || pending_bytes >= (8u << 20)) return flush();
        return Status::ok();
      }
      case RecordType::vanished: {
        VanishedRec v;
        if (!decode(body, v)) return error(Code::corrupt, "damaged (undecodable record)");
        auto box = boxes.find(v.mailbox);
        if (box == boxes.end()) return Status::ok();
        std::vector<store::Uid> uids;
        for (auto u : v.uids) {
          if (store::Uid uid = uid_of(box->second, u)) uids.push_back(uid);
          box->second.uids.erase(u);
        }
        if (uids.empty()) return Status::ok();
        auto r = store.expunge({box->second.id, uids});
        if (!r) return r.status();
        stats.expunged += r->expunged.size();
        return Status::ok();
      }
      case RecordType::mailbox_deleted: {
        MailboxState s;
        if (!decode(body, s)) return error(Code::corrupt, "damaged (undecodable record)");
        auto box = boxes.find(s.id);
        auto acc = accounts.find(s.account);
        if (box == boxes.end() || acc == accounts.end() || !everything) return Status::ok();
        // By its current name: the recorded one may belong to a newer mailbox now.
        MAIL_ASSIGN_OR_RETURN(auto all, store.mailbox_list({acc->second}));
        for (const auto& m : all.mailboxes)
          if (m.id == box->second.id) MAIL_TRY(store.mailbox_delete({acc->second, m.name}).status());
        boxes.erase(box);
        return Status::ok();
      }
    }
    return Status::ok();  // unknown record types are from a newer writer: skipped
  }

  bool held_by_other_backup_mailbox(store::MailboxId store_id) const {
    for (const auto& b : boxes)
      if (b.second.id == store_id) return true;
    return false;
  }

  // The mailbox's UIDVALIDITY, UIDNEXT and modseq as backed up.
  Status restore_state(store::MailboxId id, const store::MailboxInfo& box) {
    auto r = store.mailbox_restore({id, box.uidvalidity, box.uidnext, box.highest_modseq});
    if (!r) return error(r.code(), "mailbox " + box.name + ": " + r.status().message());
    return Status::ok();
  }

  // One message under its old UID; the answer in deliver's shape so flush() treats both alike.
  Result<store::DeliverResp> insert(store::MessageInsertReq& req) {
    if (!req.content) req.summary = mime::summarize(req.bytes);
    auto r = store.message_insert(req);
    req.bytes = std::string();
    if (!r) return r.status();
    store::DeliverResp resp;
    resp.content = r->content;
    store::DeliveryResult result;
    result.uid = req.uid;
    resp.results.push_back(result);
    return resp;
  }

};

}  // namespace

Result<RestoreStats> backup_restore(store::Store& store, const std::string& path, const RestoreOptions& options) {
  if (sodium_init() < 0) return error(Code::internal, "libsodium failed to initialise");
  if (options.account.empty() && (!options.mailbox.empty() || !options.as.empty()))
    return error(Code::invalid, "--mailbox and --as need --account");
  bool everything = options.account.empty();
  if (everything) {
    MAIL_ASSIGN_OR_RETURN(auto st, store.stats({}));
    if (st.accounts > 0 || st.domains > 0)
      return error(Code::not_empty,
                   "the store is not empty: restore everything only into an empty data directory, or pick --account");
  }
  // The chain, full backup first.
  std::vector<std::string> chain;
  std::string cur = path;
  for (int depth = 0; depth < 10000; ++depth) {
    chain.push_back(cur);
    TarReader tar;
    MAIL_TRY(tar.open(cur));
    std::string name, data;
    MAIL_TRY(tar.next(name, data, 1 << 16));
    if (name != "header") return error(Code::corrupt, cur + ": not a mail-backup file");
    MAIL_ASSIGN_OR_RETURN(Header h, parse_header(data));
    if (h.parent.empty()) break;
    if (cur == "-") return error(Code::invalid, "an incremental backup cannot be restored from stdin");
    std::string parent = (fs::path(cur).parent_path() / (h.parent + kSuffix)).string();
    if (!fs::exists(parent)) return error(Code::not_found, cur + ": its parent backup " + h.parent + " is missing");
    cur = parent;
  }
  std::reverse(chain.begin(), chain.end());

  RestoreState state{store, options, everything, {}, {}, {}, {}};
  for (const auto& p : chain) {
    MAIL_ASSIGN_OR_RETURN(Manifest m, read_backup(p, options.key, nullptr, [&](std::string_view plain) {
                            return for_each_record(plain, [&](RecordType t, std::string_view body) {
                              return state.apply(t, body);
                            });
                          }));
    (void)m;
    MAIL_TRY(state.flush());
    ++state.stats.backups;
  }
  if (!everything && state.accounts.empty())
    return error(Code::not_found, "no account " + options.account + " in the backup");
  if (!options.mailbox.empty() && state.boxes.empty())
    return error(Code::not_found, "no mailbox " + options.mailbox + " of " + options.account + " in the backup");
  return state.stats;
}

// ---- prune -----------------------------------------------------------------------------------

std::vector<BackupInfo> backups_to_prune(const std::vector<BackupInfo>& backups, const PruneRules& rules) {
  // Newest first; keep the newest backup of each of the last N days/weeks/months.
  std::vector<const BackupInfo*> sorted;
  for (const auto& b : backups) sorted.push_back(&b);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->id > b->id; });
  std::set<std::string> keep;
  auto bucket = [](int64_t t, char kind) {
    time_t tt = static_cast<time_t>(t);
    struct tm tm {};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, kind == 'd' ? "%Y-%m-%d" : kind == 'w' ? "%G-W%V" : "%Y-%m", &tm);
    return std::string(buf);
  };
  for (auto [kind, count] : {std::pair{'d', rules.daily}, std::pair{'w', rules.weekly}, std::pair{'m', rules.monthly}}) {
    std::set<std::string> buckets;
    for (auto* b : sorted) {
      std::string k = bucket(b->created, kind);
      if (buckets.count(k)) continue;
      if (buckets.size() >= count) break;
      buckets.insert(k);
      keep.insert(b->id);
    }
  }
  if (!sorted.empty()) keep.insert(sorted.front()->id);  // the newest always stays
  // Everything a kept incremental needs stays too.
  std::map<std::string, const BackupInfo*> by_id;
  for (auto* b : sorted) by_id[b->id] = b;
  std::vector<std::string> todo(keep.begin(), keep.end());
  while (!todo.empty()) {
    std::string id = todo.back();
    todo.pop_back();
    auto it = by_id.find(id);
    if (it == by_id.end() || it->second->parent.empty()) continue;
    if (keep.insert(it->second->parent).second) todo.push_back(it->second->parent);
  }
  std::vector<BackupInfo> out;
  for (const auto& b : backups)
    if (!keep.count(b.id)) out.push_back(b);
  return out;
}

}  // namespace mail::transfer
