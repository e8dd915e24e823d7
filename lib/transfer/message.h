// What moving mail in and out deals in: one message with the metadata users
// care about (flags, keywords, internal date), plus the small text helpers the
// mbox and Maildir formats share (line ends, dates, flag letters, folder names).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/mutf7.h"
#include "store/model.h"

namespace mail::transfer {

// One message read from a source, before it is stored.
struct SourceMessage {
  std::string content;                // the message bytes (line ends as in the source)
  store::UnixTime internal_date = 0;  // 0: unknown (the importer falls back to Received/Date)
  uint32_t flags = 0;                 // store::flag bits
  std::vector<std::string> keywords;
  std::string origin;                 // file the message came from, for warnings
  uint64_t offset = 0;                // byte offset in that file
  std::vector<std::string> warnings;  // problems found while reading it (imported anyway)
};

// Line ends. The store keeps messages with CRLF (as IMAP serves them); files on
// disk (mbox, Maildir) normally use LF.
// Bare LF becomes CRLF; existing CRLF and lone CR are kept.
std::string to_crlf(std::string_view in);
// CRLF becomes LF; lone CR is kept.
std::string to_lf(std::string_view in);

// True when `content` starts like a message: a header field ("Name:" with
// printable name characters), or the blank line of an empty header. Sources
// skip anything else with a warning.
bool looks_like_message(std::string_view content);

// Dates.
// asctime-style date of an mbox From_ line ("Wed Nov 25 14:39:16 2026",
// optionally followed by a zone "+0100"/"UTC"), as found after the sender;
// 0 if none parses. Without a zone the time is UTC.
store::UnixTime parse_from_line_date(std::string_view from_line);
// The same, but nullopt when the line has no date at all (0: a date before 1970).
std::optional<store::UnixTime> from_line_date(std::string_view from_line);
// RFC 5322 date-time ("Wed, 25 Nov 2026 14:39:16 +0100", obsolete zones and
// missing weekday allowed); 0 if it does not parse.
store::UnixTime parse_rfc5322_date(std::string_view text);
// "Wed Nov 25 14:39:16 2026" (UTC), the form written on From_ lines.
std::string format_asctime(store::UnixTime t);

// The internal date a message without one gets: the date of its newest
// (topmost) Received field, else its Date field; 0 if neither parses.
store::UnixTime date_from_headers(std::string_view content);

// The header block of a message: up to and including the blank line (or all of
// it if there is none).
std::string_view header_block(std::string_view content);

// Folder names. Maildir++ and IMAP use modified UTF-7 (base/mutf7.h).
using mail::mutf7_decode;
using mail::mutf7_encode;

// The special use a folder name implies (top-level "Sent", "Drafts", "Trash",
// "Junk"/"Spam", "Archive" and common variants), none otherwise.
store::SpecialUse special_use_for(std::string_view mailbox_name);

// "inbox" in any case is INBOX.
std::string canonical_mailbox_name(std::string_view name);

}  // namespace mail::transfer
