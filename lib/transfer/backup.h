// Backups of the whole store: full or incremental, consistent while mail is
// delivered, compressed, encrypted, verifiable, restorable as a whole or one
// account or mailbox at a time.
//
// A backup is one tar file (libarchive, ustar/pax) holding, in this order:
//   header          plain text: format, id, kind, parent id, time, key
//                   derivation (none, or argon2id with its salt and limits) and
//                   a key check (keyed BLAKE2b of a constant), so a wrong key is
//                   told apart from damage
//   chunks/NNNNNN   records (domains, accounts with credentials, aliases,
//                   mailboxes, messages with their content, vanished UIDs),
//                   zstd-compressed, then encrypted with libsodium's
//                   secretstream (XChaCha20-Poly1305) bound to the backup id and
//                   chunk name; about 8 MiB of records each
//   manifest        encrypted like a chunk: every chunk's name, size and
//                   BLAKE2b-256 of its ciphertext, the mailboxes' states
//                   (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ) for the next
//                   incremental, and counts
// It is written front to back (so it can go to stdout or a pipe); verify and
// restore read it front to back too.
//
// Consistency: the backup reads committed state through the store API
// mailbox by mailbox; every message in it was committed whole, every message
// committed before the backup began is in it, and later ones may be.
//
// Incremental: only what changed since the parent (the newest backup in the
// directory): new messages with content, flag changes of older ones, vanished
// UIDs, from each mailbox's change log (store `changes`); mailboxes new or with
// a new UIDVALIDITY are taken whole. Restoring an incremental backup applies its
// chain, full backup first.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "store/store.h"

namespace mail::transfer {

// Where the key comes from: a key file (32 raw bytes, or 64 hex digits), or a
// passphrase stretched with argon2id (salt and limits kept in the header).
struct BackupKey {
  std::string key_file;
  std::string passphrase;
  bool has_passphrase = false;
};

// Writes a new random key file (0600); fails if the file exists.
Status backup_keygen(const std::string& path);

struct BackupInfo {
  std::string id;  // e.g. 20261129T150500Z-full
  std::string kind;  // "full" or "incremental"
  std::string parent;  // id of the parent ("" for full)
  int64_t created = 0;
  std::string path;
  uint64_t size = 0;  // bytes of the file
  // Known after create/verify (from the manifest):
  uint64_t chunks = 0;
  uint64_t messages = 0;
  uint64_t content_bytes = 0;
};

struct BackupCreateOptions {
  BackupKey key;
  std::string dest;  // a directory (the backup is DEST/<id>.mbak), or "-" for stdout
  bool incremental = false;  // needs a directory holding the parent
  size_t chunk_bytes = 8u << 20;
  std::function<void(uint64_t messages, uint64_t bytes)> progress;
};
Result<BackupInfo> backup_create(store::Store& store, const BackupCreateOptions& options);

// Backups in a directory (headers only; no key needed), oldest first.
Result<std::vector<BackupInfo>> backup_list(const std::string& dir);

// Reads every chunk and the manifest, checking checksums, authentication and
// the records; the first damaged part is named in the error (Code::corrupt),
// a wrong key is Code::denied.
Result<BackupInfo> backup_verify(const std::string& path, const BackupKey& key);

struct RestoreOptions {
  BackupKey key;
  std::string account;   // only this account ("" = everything: needs an empty store)
  std::string mailbox;   // only this mailbox of `account`
  std::string as;        // restore under this name (account address, or mailbox name with --mailbox)
  unsigned jobs = 8;     // messages stored at once (a whole-store restore keeps UIDs; else 1 keeps their order)
  std::function<void(uint64_t messages)> progress;
};
struct RestoreStats {
  uint64_t backups = 0;  // backups of the chain applied
  uint64_t domains = 0, accounts = 0, mailboxes = 0, messages = 0, flag_updates = 0, expunged = 0;
};
// Restores `path` (and, for an incremental backup, its chain from the same
// directory) into `store`.
Result<RestoreStats> backup_restore(store::Store& store, const std::string& path, const RestoreOptions& options);

// Which backups prune removes under the retention rules: the newest backup of
// each of the last `daily` days, `weekly` ISO weeks and `monthly` months is
// kept (as is everything its incremental chain needs); the rest are returned.
struct PruneRules {
  unsigned daily = 0, weekly = 0, monthly = 0;
};
std::vector<BackupInfo> backups_to_prune(const std::vector<BackupInfo>& backups, const PruneRules& rules);

// Takes an exclusive lock on DIR/.mail-backup.lock (Code::busy when held).
class BackupLock {
 public:
  static Result<BackupLock> take(const std::string& dir);
  BackupLock(BackupLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  BackupLock& operator=(BackupLock&&) = delete;
  ~BackupLock();

 private:
  BackupLock() = default;
  int fd_ = -1;
};

}  // namespace mail::transfer
