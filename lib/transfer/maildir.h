// Maildir and Maildir++: reading (cur/ and new/, ":2," flags, Dovecot's
// dovecot-keywords and dovecot-uidlist) and writing.
//
// Layout (Maildir++): the root is INBOX; every other folder is a directory
// ".Name.Sub" beside cur/new/tmp, names in modified UTF-7, '.' separating the
// hierarchy (mailbox "Name/Sub"). A '.' inside a name is written as "&AC4-".
// Flags are the letters after ":2,": D draft, F flagged, P passed ($Forwarded),
// R replied, S seen, T trashed; lower-case letters a..z are keywords, numbered
// by the folder's dovecot-keywords file ("0 name" lines). The internal date is
// the file's modification time (as Dovecot keeps it); the writer sets it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "transfer/message.h"

namespace mail::transfer {

// True when `dir` is a maildir (has cur/ or new/).
bool is_maildir(const std::string& dir);

struct MaildirFolder {
  std::string path;     // directory holding cur/ and new/
  std::string mailbox;  // relative mailbox name; "" for the root
};
// The root and its Maildir++ sub-folders, root first, then by name.
Result<std::vector<MaildirFolder>> maildir_folders(const std::string& root);

// Flags and keywords of a file name's ":2," part.
void parse_maildir_info(std::string_view file_name, const std::vector<std::string>& keyword_table,
                        uint32_t& flags, std::vector<std::string>& keywords);

// Reads one folder's messages, in dovecot-uidlist order when there is one,
// else by file name (which starts with the delivery time).
class MaildirReader {
 public:
  static Result<MaildirReader> open(const std::string& folder_path, size_t max_message_size = 64u << 20);

  Result<std::optional<SourceMessage>> next();
  std::vector<std::string> take_warnings() { return std::exchange(warnings_, {}); }
  uint64_t skipped() const { return skipped_; }
  uint64_t bytes_read() const { return bytes_read_; }
  size_t count() const { return files_.size(); }

 private:
  std::string path_;
  size_t max_ = 0;
  std::vector<std::string> keyword_table_;
  std::vector<std::string> files_;  // "cur/name" or "new/name"
  size_t next_ = 0;
  uint64_t bytes_read_ = 0;
  uint64_t skipped_ = 0;
  std::vector<std::string> warnings_;
};

// Writes messages into a Maildir++ tree.
class MaildirWriter {
 public:
  // Creates root/cur,new,tmp (and the folder's directories) as needed.
  static Result<MaildirWriter> open(const std::string& root, const std::string& mailbox);

  // `content` as stored (CRLF); lf: write it with LF line ends.
  Status write(std::string_view content, store::UnixTime internal_date, uint32_t flags,
               const std::vector<std::string>& keywords, bool lf = true);
  // Writes dovecot-keywords when keywords were used.
  Status finish();
  uint64_t dropped_keywords() const { return dropped_keywords_; }

 private:
  std::string dir_;
  std::vector<std::string> keyword_table_;
  uint64_t counter_ = 0;
  uint64_t dropped_keywords_ = 0;
};

// The directory of `mailbox` under a Maildir++ root ("" or INBOX: the root).
std::string maildir_folder_path(const std::string& root, const std::string& mailbox);

}  // namespace mail::transfer
