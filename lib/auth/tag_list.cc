#include "auth/tag_list.h"

#include <string>

namespace mail::auth {

namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_valchar(char c) {
  auto u = static_cast<unsigned char>(c);
  return u >= 0x21 && u <= 0x7e && c != ';';
}

}  // namespace

const Tag* TagList::find(std::string_view name) const {
  for (const auto& t : tags) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Result<TagList> parse_tag_list(std::string_view text) {
  TagList list;
  list.tags.reserve(16);  // a signature has about a dozen: one allocation
  size_t pos = 0, n = text.size();
  while (true) {
    while (pos < n && is_ws(text[pos])) ++pos;
    if (pos == n) break;
    size_t name_start = pos;
    if (!is_alpha(text[pos])) return error(Code::invalid, "tag list: bad tag name");
    while (pos < n && (is_alpha(text[pos]) || is_digit(text[pos]) || text[pos] == '_')) ++pos;
    std::string_view name = text.substr(name_start, pos - name_start);
    while (pos < n && is_ws(text[pos])) ++pos;
    if (pos == n || text[pos] != '=') {
      return error(Code::invalid, "tag list: '=' missing after " + std::string(name));
    }
    ++pos;
    Tag tag;
    tag.name = name;
    tag.value_start = pos;
    size_t end = text.find(';', pos);
    if (end == std::string_view::npos) end = n;
    tag.end = end;
    size_t vb = pos, ve = end;
    while (vb < ve && is_ws(text[vb])) ++vb;
    while (ve > vb && is_ws(text[ve - 1])) --ve;
    for (size_t i = vb; i < ve; ++i) {
      if (!is_valchar(text[i]) && !is_ws(text[i])) {
        return error(Code::invalid, "tag list: bad character in the value of " + std::string(name));
      }
    }
    tag.value = text.substr(vb, ve - vb);
    if (list.find(name)) return error(Code::invalid, "tag list: " + std::string(name) + " appears twice");
    list.tags.push_back(tag);
    if (end == n) break;
    pos = end + 1;
  }
  return list;
}

std::string strip_whitespace(std::string_view value) {
  std::string out(value.size(), '\0');
  size_t n = 0;
  for (char c : value) {
    out[n] = c;
    n += !is_ws(c);  // no branch: b= is mostly long runs of base64
  }
  out.resize(n);
  return out;
}

}  // namespace mail::auth
