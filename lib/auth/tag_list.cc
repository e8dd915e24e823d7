#include "auth/tag_list.h"

#include <array>
#include <string>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

#if defined(__SSE2__)
// Bit i set where byte i of x is SP, HTAB, CR or LF.
unsigned ws_mask(__m128i x) {
  __m128i ws = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(' ')), _mm_cmpeq_epi8(x, _mm_set1_epi8('\t'))),
                            _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('\r')), _mm_cmpeq_epi8(x, _mm_set1_epi8('\n'))));
  return static_cast<unsigned>(_mm_movemask_epi8(ws));
}
#endif

// The first byte from `pos` on that a value may not hold (its ';', or a bad
// byte), or the end: sixteen bytes at a time (b= is hundreds of bytes).
size_t value_end(std::string_view text, size_t pos) {
  size_t n = text.size();
#if defined(__SSE2__)
  for (; pos + 16 <= n; pos += 16) {
    __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(text.data() + pos));
    // %x20-7E but ';' (a signed compare: bytes from 0x80 on are negative), or HTAB, CR, LF.
    __m128i printable = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8(0x1f)), _mm_cmplt_epi8(x, _mm_set1_epi8(0x7f)));
    unsigned ok = static_cast<unsigned>(
                      _mm_movemask_epi8(_mm_andnot_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(';')), printable))) |
                  ws_mask(x);
    if (ok != 0xffff) return pos + static_cast<size_t>(__builtin_ctz(~ok));
  }
#endif
  while (pos < n && kValueByte[static_cast<unsigned char>(text[pos])]) ++pos;
  return pos;
}

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
    size_t end = value_end(text, pos);
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
  // Written through a pointer, sixteen bytes at a time between whitespace
  // (b= is base64 folded every seventy-odd characters); room for one store past.
  std::string out(value.size() + 16, '\0');
  char* w = out.data();
  const char* p = value.data();
  const char* const end = p + value.size();
#if defined(__SSE2__)
  while (end - p >= 16) {
    __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(w), x);
    unsigned ws = ws_mask(x);
    if (!ws) {
      w += 16;
      p += 16;
      continue;
    }
    unsigned k = static_cast<unsigned>(__builtin_ctz(ws));  // bytes before it are kept
    w += k;
    p += k + 1;
  }
#endif
  for (; p < end; ++p) {
    *w = *p;
    w += !is_ws(*p);
  }
  out.resize(static_cast<size_t>(w - out.data()));
  return out;
}

}  // namespace mail::auth
