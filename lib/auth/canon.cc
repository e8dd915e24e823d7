#include "auth/canon.h"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mail::auth {

namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t'; }
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// 0x80 in each byte of x that equals b, exactly (no borrow between bytes).
uint64_t byte_is(uint64_t x, char b) {
  constexpr uint64_t k7f = 0x7f7f7f7f7f7f7f7fULL;
  uint64_t y = x ^ (0x0101010101010101ULL * static_cast<unsigned char>(b));
  return ~(((y & k7f) + k7f) | y | k7f);
}

}  // namespace

namespace {

// Whether `in` has a LF without a CR before it: sixteen bytes at a time, the
// LFs of one load against the CRs of a load one byte earlier (mail has a
// line end every 70-odd bytes, too often for a memchr per line to pay).
// Without a branch per load (where a line ends is unpredictable): the bare
// ones gathered and looked at every 64 bytes.
bool has_bare_lf(std::string_view in) {
  const char* p = in.data();
  size_t n = in.size(), i = 1;
  if (n == 0) return false;
  if (p[0] == '\n') return true;
#if defined(__SSE2__)
  const __m128i lf16 = _mm_set1_epi8('\n'), cr16 = _mm_set1_epi8('\r');
  auto bare = [p, lf16, cr16](size_t at) {
    __m128i lf = _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + at)), lf16);
    __m128i cr = _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + at - 1)), cr16);
    return _mm_andnot_si128(cr, lf);
  };
  for (; i + 64 <= n; i += 64) {
    __m128i any = _mm_or_si128(_mm_or_si128(bare(i), bare(i + 16)), _mm_or_si128(bare(i + 32), bare(i + 48)));
    if (_mm_movemask_epi8(any)) return true;
  }
  for (; i + 16 <= n; i += 16) {
    if (_mm_movemask_epi8(bare(i))) return true;
  }
#endif
  for (; i < n; ++i) {
    if (p[i] == '\n' && p[i - 1] != '\r') return true;
  }
  return false;
}

}  // namespace

bool to_crlf(std::string_view in, std::string& out) {
  if (!has_bare_lf(in)) return false;
  out.clear();
  out.reserve(in.size() + in.size() / 32);
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r')) out.push_back('\r');
    out.push_back(in[i]);
  }
  return true;
}

MailMessage::MailMessage(std::string_view message) {
  text_ = to_crlf(message, storage_) ? std::string_view(storage_) : message;
  std::string_view t = text_;
  headers_.reserve(32);  // one allocation for most messages
  size_t pos = 0;
  while (pos < t.size()) {
    size_t eol = t.find("\r\n", pos);
    size_t line_end = eol == std::string_view::npos ? t.size() : eol + 2;
    if (eol == pos) {  // the empty line: the body follows
      body_ = t.substr(line_end);
      return;
    }
    if (is_wsp(t[pos]) && !headers_.empty()) {
      // A continuation line: extend the previous field.
      auto& prev = headers_.back();
      prev.raw = t.substr(prev.raw.data() - t.data(), line_end - static_cast<size_t>(prev.raw.data() - t.data()));
    } else {
      std::string_view line = t.substr(pos, line_end - pos);
      size_t colon = line.find(':');
      std::string_view name = colon == std::string_view::npos ? std::string_view() : line.substr(0, colon);
      while (!name.empty() && is_wsp(name.back())) name.remove_suffix(1);
      headers_.push_back({name, line});
    }
    pos = line_end;
  }
  body_ = t.substr(t.size());
}

bool header_name_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

namespace {

// The relaxed body rule for WSP (RFC 6376 3.4.4) over [q, end), written at w
// (never more bytes than read): a WSP run becomes one SP, a WSP byte right
// after a WSP byte dropped. `prev` says the byte before q was WSP, and on
// return whether the last one was. Returns the new end of output. Bytes up
// to `readable` may be loaded (not used), and 16 bytes past the output's end
// may be written over: a line's last bytes go sixteen at a time too.
char* relax_run(const char* q, const char* const end, const char* const readable, char* w, bool& prev) {
#if defined(__SSE2__)
  // Sixteen bytes at a time: tabs turned into spaces and all sixteen
  // stored; at a dropped byte the output stops short of it and the next
  // load starts after it (drops are few: text has single spaces).
  const __m128i tab16 = _mm_set1_epi8('\t'), space16 = _mm_set1_epi8(' ');
  const __m128i tab_to_space16 = _mm_set1_epi8('\t' ^ ' ');
  while (end - q >= 16 && readable - q >= 32) {
    __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
    __m128i tab = _mm_cmpeq_epi8(x, tab16);
    unsigned wsp = static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(tab, _mm_cmpeq_epi8(x, space16))));
    unsigned drop = wsp & ((wsp << 1) | (prev ? 1u : 0u));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(w), _mm_xor_si128(x, _mm_and_si128(tab, tab_to_space16)));
    // One dropped byte without a branch (text makes one unpredictable): the
    // bytes after it stored over it; with none, that store lands past the
    // output (and loads the bytes after the first).
    unsigned k = static_cast<unsigned>(__builtin_ctz(drop | 0x10000u));
    __m128i x1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + (k & 15) + 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(w + k),
                     _mm_xor_si128(x1, _mm_and_si128(_mm_cmpeq_epi8(x1, tab16), tab_to_space16)));
    unsigned more = drop & (drop - 1);
    if (more) {  // a second one (a WSP run of three, two runs close): the step ends before it
      unsigned k2 = static_cast<unsigned>(__builtin_ctz(more));
      w += k2 - 1;
      q += k2 + 1;
      prev = true;  // the dropped byte was WSP
      continue;
    }
    w += 16 - (drop != 0);
    q += 16;
    prev = (wsp >> 15) != 0;
  }
  // The last bytes (up to 31, for the second load above) the old way, a
  // load reaching past them.
  while (q < end && readable - q >= 16) {
    unsigned n = static_cast<unsigned>(std::min<std::ptrdiff_t>(end - q, 16));
    __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
    __m128i tab = _mm_cmpeq_epi8(x, tab16);
    unsigned wsp =
        static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(tab, _mm_cmpeq_epi8(x, space16)))) & ((1u << n) - 1);
    unsigned drop = wsp & ((wsp << 1) | (prev ? 1u : 0u));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(w), _mm_xor_si128(x, _mm_and_si128(tab, tab_to_space16)));
    if (!drop) {
      w += n;
      q += n;
      prev = ((wsp >> (n - 1)) & 1) != 0;
      continue;
    }
    unsigned k = static_cast<unsigned>(__builtin_ctz(drop));
    w += k;
    q += k + 1;
    prev = true;
  }
#endif
  if constexpr (std::endian::native == std::endian::little) {
    // Eight bytes at a time (SWAR): tabs turned into spaces, then the
    // dropped bytes (seldom more than one) squeezed out.
    constexpr uint64_t kTabToSpace = '\t' ^ ' ';
    for (; end - q >= 8; q += 8) {
      uint64_t x;
      std::memcpy(&x, q, 8);
      uint64_t tab = byte_is(x, '\t'), wsp = tab | byte_is(x, ' ');
      uint64_t drop = wsp & ((wsp << 8) | (prev ? 0x80 : 0));
      x ^= (tab >> 7) * kTabToSpace;
      size_t n = 8;
      while (drop) {
        unsigned k = static_cast<unsigned>(__builtin_ctzll(drop)) / 8;  // the lowest dropped byte
        uint64_t below = (uint64_t{1} << (8 * k)) - 1;
        x = (x & below) | ((x >> 8) & ~below);
        drop = (drop >> 8) & ~below;
        --n;
      }
      std::memcpy(w, &x, 8);
      w += n;
      prev = (wsp >> 63) != 0;
    }
  }
  for (; q < end; ++q) {
    bool wsp = is_wsp(*q);
    *w = wsp ? ' ' : *q;
    w += !(wsp && prev);
    prev = wsp;
  }
  return w;
}

// The first CR or LF in [p, end), or end; bytes up to `readable` may be loaded.
const char* find_break(const char* p, const char* const end, const char* const readable) {
#if defined(__SSE2__)
  const __m128i cr16 = _mm_set1_epi8('\r'), lf16 = _mm_set1_epi8('\n');
  while (p < end && readable - p >= 16) {
    __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    unsigned hit = static_cast<unsigned>(
        _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(x, cr16), _mm_cmpeq_epi8(x, lf16))));
    if (end - p < 16) hit &= (1u << (end - p)) - 1;
    if (hit) return p + __builtin_ctz(hit);
    if (end - p <= 16) return end;
    p += 16;
  }
#endif
  while (p < end && *p != '\r' && *p != '\n') ++p;
  return p;
}

}  // namespace

void canon_header(const HeaderField& field, Canon canon, std::string& out) {
  if (canon == Canon::simple) {
    out.append(field.raw);
    if (field.raw.size() < 2 || field.raw.substr(field.raw.size() - 2) != "\r\n") out.append("\r\n");
    return;
  }
  std::string_view raw = field.raw;
  size_t colon = raw.find(':');
  std::string_view value = colon == std::string_view::npos ? std::string_view() : raw.substr(colon + 1);
  // Written through a pointer into room for the longest result (and the
  // 16-byte stores of relax_run).
  size_t base = out.size();
  out.resize(base + field.name.size() + 1 + value.size() + 2 + 16);
  char* w = out.data() + base;
  for (char c : field.name) *w++ = lower(c);
  *w++ = ':';
  // Unfold (every CR and LF goes), WSP runs as one SP, none at either end:
  // the body's WSP rule over the runs between line breaks, a run carried
  // across a fold.
  auto is_space = [](char c) { return is_wsp(c) || c == '\r' || c == '\n'; };
  const char* p = value.data();
  const char* e = p + value.size();
  const char* const readable = raw.data() + raw.size();
  while (p < e && is_space(*p)) ++p;
  while (e > p && is_space(e[-1])) --e;
  bool prev = false;
  while (p < e) {
    const char* brk = find_break(p, e, readable);
    w = relax_run(p, brk, readable, w, prev);
    p = brk;
    while (p < e && (*p == '\r' || *p == '\n')) ++p;
  }
  *w++ = '\r';
  *w++ = '\n';
  out.resize(static_cast<size_t>(w - out.data()));
}

void canon_body(std::string_view body, Canon canon, std::string& out) {
  canon_body_pieces(body, canon, [&out](std::string_view piece) { out.append(piece); });
}

void canon_body_pieces(std::string_view body, Canon canon, const std::function<void(std::string_view)>& sink) {
  if (canon == Canon::simple) {
    size_t end = body.size();
    while (end >= 2 && body[end - 2] == '\r' && body[end - 1] == '\n') end -= 2;
    if (end > 0) sink(body.substr(0, end));
    sink("\r\n");
    return;
  }
  // Made in a buffer handed on whenever it fills: memory stays bounded, and
  // the body stays in cache between canonicalizing and hashing.
  constexpr size_t kBuffer = 16384;
  char buf[kBuffer];
  char* const buf_end = buf + kBuffer;
  char* w = buf;
  // Empty lines are only counted: those at the end of the body go (3.4.4 b),
  // the others are written before the next non-empty line.
  size_t empty_lines = 0;
  const char* p = body.data();
  const char* const end = p + body.size();
  while (p < end) {
    // The line's content ends at the next CRLF (a lone CR or LF is content).
    const char* eol = p;
    while (true) {
      eol = static_cast<const char*>(std::memchr(eol, '\n', static_cast<size_t>(end - eol)));
      if (!eol || (eol > p && eol[-1] == '\r')) break;
      ++eol;
    }
    const char* content_end = eol ? eol - 1 : end;
    const char* next = eol ? eol + 1 : end;
    const char* text = p;
    while (text < content_end && is_wsp(*text)) ++text;
    if (text == content_end) {  // nothing but WSP: an empty line
      ++empty_lines;
      p = next;
      continue;
    }
    for (; empty_lines > 0; --empty_lines) {
      if (buf_end - w < 2) {
        sink(std::string_view(buf, static_cast<size_t>(w - buf)));
        w = buf;
      }
      *w++ = '\r';
      *w++ = '\n';
    }
    bool prev = false;
    const char* q = p;
    while (true) {
      if (buf_end - w < 64) {
        // Full: handed on but for a trailing SP, which goes if the line ends with it.
        char* keep = prev ? w - 1 : w;
        sink(std::string_view(buf, static_cast<size_t>(keep - buf)));
        w = buf;
        if (prev) *w++ = ' ';
      }
      // Room for the run (output is never longer), a 16-byte store past
      // its end, and the CRLF.
      size_t take = std::min(static_cast<size_t>(content_end - q), static_cast<size_t>(buf_end - w) - 18);
      w = relax_run(q, q + take, end, w, prev);
      q += take;
      if (q == content_end) break;
    }
    if (prev) --w;  // the run at the end of the line goes
    *w++ = '\r';
    *w++ = '\n';
    p = next;
  }
  if (w > buf) sink(std::string_view(buf, static_cast<size_t>(w - buf)));
}

}  // namespace mail::auth
