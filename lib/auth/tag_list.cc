#include "auth/tag_list.h"

#include <array>
#include <string>

namespace mail::auth {

namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
// VALCHAR (%x21-3A / %x3C-7E) and whitespace: what a value may hold.
constexpr std::array<bool, 256> kValueByte = [] {
  std::array<bool, 256> t{};
  for (unsigned c = 0x21; c <= 0x7e; ++c) t[c] = c != ';';
  t[' '] = t['\t'] = t['\r'] = t['\n'] = true;
  return t;
}();

}  // namespace

const Tag* TagList::find(std::string_view name) const {
  for (const auto& t : tags) {
    // Names are a letter or two: the first byte and the size settle most.
    if (t.name.size() == name.size() && (name.empty() || t.name[0] == name[0]) && t.name == name) return &t;
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
    // One pass to the ';' through a table of the bytes a value may hold.
    size_t end = pos;
    while (end < n && kValueByte[static_cast<unsigned char>(text[end])]) ++end;
    if (end < n && text[end] != ';') {
      return error(Code::invalid, "tag list: bad character in the value of " + std::string(name));
    }
    tag.end = end;
    size_t vb = pos, ve = end;
    while (vb < ve && is_ws(text[vb])) ++vb;
    while (ve > vb && is_ws(text[ve - 1])) --ve;
    tag.value = text.substr(vb, ve - vb);
    if (list.find(name)) return error(Code::invalid, "tag list: " + std::string(name) + " appears twice");
    list.tags.push_back(tag);
    if (end == n) break;
    pos = end + 1;
  }
  return list;
}

std::string strip_whitespace(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  // Runs copied whole: b= is base64 folded every seventy-odd characters.
  const char* p = value.data();
  const char* const end = p + value.size();
  while (p < end) {
    const char* run = p;
    while (p < end && !is_ws(*p)) ++p;
    out.append(run, static_cast<size_t>(p - run));
    while (p < end && is_ws(*p)) ++p;
  }
  return out;
}

}  // namespace mail::auth
