// The tag=value lists of DKIM signatures and key records (RFC 6376 3.2), also
// used by DMARC records and ARC headers.
#pragma once

#include <string_view>
#include <vector>

#include "base/status.h"

namespace mail::auth {

struct Tag {
  std::string_view name;
  std::string_view value;  // without surrounding whitespace; may hold folding whitespace
  // Offsets into the parsed text: just after the '=', and the end of the tag
  // (its ';' or the end of the text). Signature checks blank [value_start, end).
  size_t value_start = 0;
  size_t end = 0;
};

// The tags, in order. The views point into the text given to parse_tag_list().
struct TagList {
  std::vector<Tag> tags;
  const Tag* find(std::string_view name) const;
};

// Strict: tag names are ALPHA *(ALPHA / DIGIT / "_"), values hold only VALCHARs
// (%x21-3A / %x3C-7E) and whitespace, a tag may appear once, a trailing ';' is
// allowed. Code::invalid otherwise.
Result<TagList> parse_tag_list(std::string_view text);

// The value with every whitespace character (SP, HTAB, CR, LF) removed, as the
// base64 values of b=, bh= and p= are read.
std::string strip_whitespace(std::string_view value);

}  // namespace mail::auth
