// The parsed facts about one message, computed once when it is stored (SMTP
// delivery, IMAP APPEND) and kept in store::ContentMeta::summary, so that IMAP
// FETCH of ENVELOPE/BODYSTRUCTURE/BODY[section] and SEARCH/SORT keys never
// parse the message again. Sections are served by slicing the raw bytes with
// the offsets of the part tree.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/codec.h"
#include "base/status.h"

namespace mail::mime {

// One MIME entity. Offsets are byte positions in the raw message.
// For message/rfc822 parts, children[0] is the embedded message (its header
// starts at this part's body).
struct Part {
  uint64_t header_begin = 0;
  uint64_t body_begin = 0;  // just after the blank line ending the header
  uint64_t body_end = 0;
  std::string type;     // lower case, e.g. "text"
  std::string subtype;  // lower case, e.g. "plain"
  std::string charset;  // lower case, may be empty
  std::string encoding; // Content-Transfer-Encoding, lower case ("" = 7bit)
  uint32_t lines = 0;   // body lines
  std::vector<Part> children;
  MAIL_FIELDS(header_begin, body_begin, body_end, type, subtype, charset, encoding, lines, children)

  bool is_multipart() const { return type == "multipart"; }
  bool is_message() const { return type == "message" && (subtype == "rfc822" || subtype == "global"); }
};

struct Summary {
  uint32_t version = 1;
  uint64_t size = 0;
  std::string envelope;       // IMAP ENVELOPE, rendered (parenthesised list)
  std::string bodystructure;  // IMAP BODYSTRUCTURE, rendered
  std::string body;           // IMAP BODY (no extension data), rendered
  Part root;
  int64_t date = 0;           // Date: header as unix time; 0 if absent/invalid
  std::string sort_from;      // first From mailbox, lower case (RFC 5256)
  std::string sort_to;
  std::string sort_cc;
  std::string subject_base;   // RFC 5256 base subject, upper-cased for comparison
  std::string subject;        // decoded, UTF-8
  std::string message_id;
  std::string in_reply_to;
  std::string references;
  std::string preview;        // RFC 8970, at most 200 characters, UTF-8
  std::string display_from;   // RFC 5957 display name (or address), for SORT=DISPLAY
  std::string display_to;
  // The Date header's zone, seconds east of UTC: SENTON & co. compare the
  // sender's own calendar day (RFC 9051 6.4.4). Appended: older summaries read 0.
  int64_t date_offset = 0;
  // The top-level header block as stored (up to the body): HEADER.FIELDS and
  // SEARCH on header keys read it instead of the whole message. Empty in
  // summaries written before it existed.
  std::string header;
  MAIL_FIELDS(version, size, envelope, bodystructure, body, root, date, sort_from, sort_to, sort_cc,
              subject_base, subject, message_id, in_reply_to, references, preview, display_from,
              display_to, date_offset, header)
};

// Parses `raw` (a whole message, CRLF or LF line ends) and returns the encoded
// Summary for ContentMeta/DeliverReq::summary. Never fails: broken MIME gives a
// best-effort tree (nesting depth and part counts are limited).
std::string summarize(std::string_view raw);
Summary parse(std::string_view raw);
Result<Summary> decode_summary(std::string_view encoded);

// The SORT keys of an address header value (From, To, Cc): the first
// address's mailbox (a group's name for a group), lower case; `display` gets
// RFC 5957's display name (RFC 2047 decoded), else "mailbox@host".
std::string sort_address(std::string_view value, std::string* display = nullptr);

// The RFC 5256 base subject of a decoded subject, upper-cased (ASCII) for the
// i;ascii-casemap comparison of SORT and THREAD; `reply_or_forward` tells
// whether a "Re:", "Fwd:", "(fwd)" or "[fwd: ...]" was removed.
std::string base_subject(std::string_view subject, bool* reply_or_forward = nullptr);

// Finds the part for an IMAP section part number ("1.2.3"); nullptr if none.
// An empty path is the whole message.
const Part* find_part(const Part& root, const std::vector<uint32_t>& path);

// Decodes a body with its Content-Transfer-Encoding (base64, quoted-printable;
// others pass through). invalid for an unknown encoding (IMAP BINARY's
// UNKNOWN-CTE).
Result<std::string> decode_transfer(std::string_view encoding, std::string_view data);

// The header fields of a header block whose names are (or, with `exclude`, are
// not) in `names` (case-insensitive), followed by the blank line (RFC 3501
// HEADER.FIELDS).
std::string header_fields(std::string_view header, const std::vector<std::string>& names, bool exclude);

// All values of a header field, unfolded, in order.
std::vector<std::string> header_values(std::string_view header, std::string_view name);

// RFC 2047 decoded header text, UTF-8.
std::string decode_header_text(std::string_view value);

// Appends an IMAP nstring: NIL for nullptr-like empty when `nil_if_empty`,
// a quoted string when safe, else a literal.
void append_imap_string(std::string& out, std::string_view s);
void append_imap_nstring(std::string& out, std::string_view s, bool present);

}  // namespace mail::mime
