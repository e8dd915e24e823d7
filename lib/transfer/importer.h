// Importing mail into the store: what a source path holds (a Maildir++ tree, an
// mbox file, a directory tree of mbox files, single .eml files, stdin), and the
// Importer that stores their messages with their flags, keywords and dates.
//
// Duplicates: a message is not imported again into a mailbox that already holds
// the same bytes. The Importer keeps, per mailbox, BLAKE2b-128 hashes of the
// (CRLF) content of its messages in the store's per-account data under
// namespace "import" (key "<mailbox id>/<first uid>", value: (be32 uid, 16-byte
// hash) pairs of a batch). On the first message for a mailbox it loads them,
// keeps only those whose uid is still in the mailbox (an expunged message may
// be imported again), and hashes the content of messages it has no record of
// (delivered by SMTP or IMAP, or by an import that crashed before writing its
// record), so the check is exact whatever happened before. Content hashes were
// chosen over Message-ID+size because many messages (drafts, old mail, spam)
// have no or non-unique Message-IDs, and a hash never needs the message parsed.
//
// Memory: the reader holds one message at a time, the messages queued or
// being delivered at most 8 MiB together (or one message), the duplicate check
// 20 bytes per message of the current mailboxes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "store/store.h"
#include "transfer/mbox.h"
#include "transfer/message.h"

namespace mail::transfer {

// ---- sources -----------------------------------------------------------------------

enum class SourceKind : uint8_t { maildir = 0, mbox, eml, standard_input };
std::string_view kind_name(SourceKind k);

// One stream of messages bound for one mailbox.
struct SourceEntry {
  SourceKind kind = SourceKind::eml;
  std::string path;     // file or directory; "-" for stdin
  std::string mailbox;  // relative mailbox name ("" = the import's target mailbox)
  uint64_t size = 0;    // bytes (for progress); 0 unknown
};

// What to import for a path given on the command line. `type`: "auto",
// "maildir", "mbox", "eml" (a directory of mbox files is "mbox" or "auto").
//   Maildir root    -> one entry per folder (root "", ".Sent" "Sent", ...)
//   mbox file       -> one entry, mailbox ""
//   directory       -> its mbox files (mailbox: the relative path without
//                      ".mbox"/".mbx", Thunderbird's "X.sbd/" is "X/"), its
//                      maildirs (as above, under their relative path) and .eml
//                      files (into the mailbox of their directory)
//   other file      -> one .eml message
//   "-"             -> stdin: mbox if it starts with "From ", else one message
Result<std::vector<SourceEntry>> plan_sources(const std::string& path, std::string_view type);

// Reads one SourceEntry's messages.
class MessageSource {
 public:
  virtual ~MessageSource() = default;
  virtual Result<std::optional<SourceMessage>> next() = 0;
  virtual std::vector<std::string> take_warnings() = 0;
  virtual uint64_t skipped() const = 0;  // entries the reader could not turn into messages
  virtual uint64_t position() const = 0; // bytes consumed
};
Result<std::unique_ptr<MessageSource>> open_source(const SourceEntry& entry, MboxVariant variant,
                                                   size_t max_message_size);

// ---- importer ----------------------------------------------------------------------

struct ImportOptions {
  std::string mailbox;          // target (prefix) mailbox; "" = INBOX for the root
  unsigned jobs = 8;            // threads preparing messages (stored in source order whatever the count)
  bool strict = false;          // the first problem stops the import
  bool enforce_quota = false;   // admins import regardless of quota unless asked
  size_t max_message_size = 64u << 20;
  MboxVariant variant = MboxVariant::automatic;
  std::function<void(uint64_t bytes)> progress;  // bytes of input consumed so far (producer thread)
  std::function<void(const std::string&)> warn;  // each warning as it happens
};

struct MailboxCounts {
  std::string mailbox;
  uint64_t imported = 0;
  uint64_t duplicates = 0;
  uint64_t skipped = 0;
  uint64_t bytes = 0;  // imported bytes (as stored)
};

struct ImportStats {
  uint64_t read = 0;  // messages read from the sources
  uint64_t imported = 0;
  uint64_t duplicates = 0;
  uint64_t skipped = 0;
  uint64_t warnings = 0;
  uint64_t bytes_in = 0;  // source bytes consumed
  uint64_t bytes_stored = 0;
  std::vector<MailboxCounts> mailboxes;  // in the order first used
};

class Importer {
 public:
  Importer(store::Store& store, store::AccountInfo account, ImportOptions options);
  ~Importer();
  Importer(const Importer&) = delete;
  Importer& operator=(const Importer&) = delete;

  // Imports every message of `source` into the mailbox for `entry` (created,
  // with its special use, if missing). Returns an error only when the import
  // must stop: the store failed, or --strict met a problem.
  Status import(const SourceEntry& entry, MessageSource& source);
  // Waits for deliveries in flight and writes the duplicate records.
  Status finish();
  ImportStats stats() const;

  // The mailbox an entry goes to.
  std::string target_mailbox(const SourceEntry& entry) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace mail::transfer
