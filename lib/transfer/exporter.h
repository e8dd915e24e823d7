// Exporting an account's mailboxes to Maildir++ or mboxrd, with flags,
// keywords and internal dates, so that an import of the result gives back the
// same messages (bytes, flags, keywords, dates).
//
//   maildir  PATH is the Maildir++ root: INBOX in PATH itself, "A/B" in PATH/.A.B
//   mbox     PATH is one file when a single mailbox is exported and PATH is not
//            a directory ("-": stdout); else a directory with one file per
//            mailbox, "A/B" in PATH/A/B.mbox. Files are written beside and
//            renamed into place when complete.
// Line ends are LF unless `crlf` (the bytes exactly as stored).
// Memory: one message at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "store/store.h"
#include "transfer/importer.h"

namespace mail::transfer {

enum class ExportKind : uint8_t { maildir = 0, mbox };

struct ExportOptions {
  ExportKind kind = ExportKind::maildir;
  std::string path;
  std::vector<std::string> mailboxes;  // empty: all of the account's mailboxes
  bool crlf = false;
  std::function<void(uint64_t bytes_done, uint64_t bytes_total)> progress;
};

struct ExportStats {
  uint64_t messages = 0;
  uint64_t bytes = 0;  // as stored
  uint64_t dropped_keywords = 0;  // Maildir keeps 26 keywords per folder
  std::vector<MailboxCounts> mailboxes;  // `imported` counts exported messages
};

Result<ExportStats> export_mail(store::Store& store, const store::AccountInfo& account, const ExportOptions& options);

}  // namespace mail::transfer
