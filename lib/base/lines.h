// Walking text line by line without copies.
#pragma once

#include <string_view>

namespace mail {

// The first line of `text` without its LF or CRLF; `text` moves past it (to
// empty after the last line, which may lack a line end).
inline std::string_view next_line(std::string_view& text) {
  size_t nl = text.find('\n');
  std::string_view line = text.substr(0, nl);
  text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace mail
