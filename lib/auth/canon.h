// A message as DKIM and ARC see it (RFC 6376 3.4, 5.3): CRLF lines, header
// fields in order, the body; and the simple/relaxed canonicalizations.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace mail::auth {

enum class Canon { simple, relaxed };

struct HeaderField {
  std::string_view name;  // as written, without trailing whitespace
  std::string_view raw;   // the whole field, name to final CRLF (included)
};

// A message split into header fields and body. Input with bare LF line ends
// is converted to CRLF first (so LF-only files sign and verify as mail); the
// views point into text().
class MailMessage {
 public:
  explicit MailMessage(std::string_view message);
  MailMessage(const MailMessage&) = delete;
  MailMessage& operator=(const MailMessage&) = delete;

  std::string_view text() const { return text_; }
  const std::vector<HeaderField>& headers() const { return headers_; }
  std::string_view body() const { return body_; }

 private:
  std::string storage_;  // only when the input needed CRLF conversion
  std::string_view text_;
  std::vector<HeaderField> headers_;
  std::string_view body_;
};

// True when `a` and `b` are the same header name (ASCII case-insensitive).
bool header_name_equal(std::string_view a, std::string_view b);

// Appends the canonical form of a header field (with its CRLF).
void canon_header(const HeaderField& field, Canon canon, std::string& out);
// Appends the canonical form of a body.
void canon_body(std::string_view body, Canon canon, std::string& out);
// Hands the canonical form of a body to `sink` in order, in pieces: runs of
// the body itself (simple) or at most 16 KiB made on the stack (relaxed), so
// hashing a big body never needs a canonical copy of it.
void canon_body_pieces(std::string_view body, Canon canon, const std::function<void(std::string_view)>& sink);

// Converts bare LF to CRLF; returns false (and leaves `out` alone) when there is none.
bool to_crlf(std::string_view in, std::string& out);

}  // namespace mail::auth
