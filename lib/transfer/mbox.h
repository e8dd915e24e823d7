// mbox: reading every common variant as a stream, writing mboxrd.
//
// Variants (all start each message with a "From sender date" line):
//   mboxo    body lines "From " are written as ">From "; a reader removes one '>'
//            from ">From " lines only.
//   mboxrd   every /^>*From / line gets one more '>'; a reader removes one '>'
//            from /^>+From / lines, so the escaping is reversible.
//   mboxcl   Content-Length: gives the body length, bodies escaped as mboxo.
//   mboxcl2  Content-Length: gives the body length, bodies not escaped.
// `automatic` honours a Content-Length only where it is needed: when it points
// exactly at the next From_ line (or the end) and reading lines would split the
// body at a bare "From " line (mboxcl2). Elsewhere lines and Content-Length
// agree, and bodies are unescaped as mboxrd (which reads mboxo and mboxcl files
// the same unless a line starts ">>From ").
//
// The mbox-private header fields are metadata, not message: Status (R: seen),
// X-Status (A answered, F flagged, T draft, D deleted), X-Keywords, and
// X-UID/X-IMAP/X-IMAPbase, plus a Content-Length that was used to delimit the
// message (else it stays), are turned into flags and keywords and removed from the bytes (as
// Dovecot hides them). The writer puts Status/X-Status/X-Keywords back, so an
// export and a re-import give the same bytes.
//
// Memory: the reader holds one message (plus a read buffer) at a time.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "transfer/message.h"

namespace mail::transfer {

enum class MboxVariant : uint8_t { automatic = 0, mboxo, mboxrd, mboxcl, mboxcl2 };
std::string_view variant_name(MboxVariant v);
// "auto", "mboxo", ...; invalid for anything else.
Result<MboxVariant> parse_variant(std::string_view name);

// Reads up to `cap` bytes into `buf`; 0 at the end.
using ReadFn = std::function<Result<size_t>(char* buf, size_t cap)>;
ReadFn fd_reader(int fd);                   // does not close fd
ReadFn memory_reader(std::string_view data);  // data must outlive the reader

class MboxReader {
 public:
  struct Options {
    MboxVariant variant = MboxVariant::automatic;
    size_t max_message_size = 64u << 20;  // larger messages are skipped (warning)
  };
  MboxReader(ReadFn read, std::string origin, Options options);
  MboxReader(ReadFn read, std::string origin) : MboxReader(std::move(read), std::move(origin), Options{}) {}

  // The next message, or nullopt at the end. io errors of the source end the
  // reading; a file that is not an mbox (no From_ line first) is Code::invalid.
  // Oversized or empty entries are skipped and reported through warnings().
  Result<std::optional<SourceMessage>> next();

  // Problems that made the reader skip input (each "origin: offset N: what").
  // Cleared by take_warnings().
  std::vector<std::string> take_warnings();
  uint64_t skipped() const { return skipped_; }
  // Bytes of input consumed so far.
  uint64_t position() const { return base_ + pos_; }
  // What the file looks like so far: mboxcl2/mboxcl if Content-Length
  // delimited messages, mboxrd if ">>From " seen, else mboxo.
  MboxVariant detected() const;

 private:
  // Makes at least `n` bytes available after pos_ (fewer at the end); false on error.
  Status fill(size_t n);
  // The next line (with its '\n', if any) starting at pos_; empty at the end.
  Result<std::string_view> peek_line();
  bool is_from_line(std::string_view line, bool after_blank) const;
  void warn(uint64_t offset, const std::string& what);

  ReadFn read_;
  std::string origin_;
  Options options_;
  std::string buf_;
  size_t end_ = 0;  // bytes of buf_ holding data
  size_t pos_ = 0;
  uint64_t base_ = 0;  // file offset of buf_[0]
  bool eof_ = false;
  bool started_ = false;
  bool seen_cl_ = false, seen_cl2_ = false, seen_rd_ = false;
  uint64_t skipped_ = 0;
  std::vector<std::string> warnings_;
};

// Writes messages as mboxrd to a stream of bytes.
class MboxWriter {
 public:
  using WriteFn = std::function<Status(std::string_view)>;
  // lf: convert CRLF to LF (the usual mbox form); false keeps bytes as stored.
  explicit MboxWriter(WriteFn write, bool lf = true) : write_(std::move(write)), lf_(lf) {}
  // `content` as stored (CRLF); adds the From_ line, the metadata fields and
  // the blank line after the message.
  Status write(std::string_view content, store::UnixTime internal_date, uint32_t flags,
               const std::vector<std::string>& keywords);

 private:
  WriteFn write_;
  bool lf_;
};

// The mbox encoding of one message (what MboxWriter writes for it).
std::string mbox_entry(std::string_view content, store::UnixTime internal_date, uint32_t flags,
                       const std::vector<std::string>& keywords, bool lf = true);

}  // namespace mail::transfer
