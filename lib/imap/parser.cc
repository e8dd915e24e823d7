#include "imap/parser.h"

#include <cctype>
#include <cstring>

namespace mail::imap {

bool is_atom_char(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u <= 0x20 || u >= 0x7f) return false;
  return !strchr("(){%*\"\\]", c);
}

bool SeqSet::contains(uint32_t n, uint32_t max) const {
  for (const auto& r : ranges) {
    uint32_t lo = r.lo ? r.lo : max, hi = r.hi ? r.hi : max;
    if (lo > hi) std::swap(lo, hi);
    if (n >= lo && n <= hi) return true;
  }
  return false;
}

std::optional<LiteralMarker> literal_at_end(std::string_view line) {
  if (line.empty() || line.back() != '}') return std::nullopt;
  size_t open = line.rfind('{');
  if (open == std::string_view::npos) return std::nullopt;
  std::string_view inner = line.substr(open + 1, line.size() - open - 2);
  LiteralMarker m;
  if (!inner.empty() && inner.back() == '+') {
    m.non_sync = true;
    inner.remove_suffix(1);
  }
  if (inner.empty() || inner.size() > 18) return std::nullopt;
  for (char c : inner) {
    if (!isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    m.size = m.size * 10 + static_cast<uint64_t>(c - '0');
  }
  m.binary = open > 0 && line[open - 1] == '~';
  return m;
}

bool Parser::rest_is_crlf() const {
  std::string_view r = in_.substr(pos_);
  return r == "\r\n" || r == "\n";
}

bool Parser::consume(char c) {
  if (pos_ < in_.size() && in_[pos_] == c) {
    ++pos_;
    return true;
  }
  return false;
}

bool Parser::consume_ci(std::string_view word) {
  if (in_.size() - pos_ < word.size()) return false;
  for (size_t i = 0; i < word.size(); ++i)
    if (toupper(static_cast<unsigned char>(in_[pos_ + i])) != toupper(static_cast<unsigned char>(word[i])))
      return false;
  pos_ += word.size();
  return true;
}

bool Parser::fail(std::string why) {
  if (error_.empty()) error_ = std::move(why);
  return false;
}

std::optional<std::string> Parser::tag() {
  size_t start = pos_;
  while (pos_ < in_.size() && is_atom_char(in_[pos_]) && in_[pos_] != '+') ++pos_;
  if (pos_ == start) {
    fail("missing tag");
    return std::nullopt;
  }
  return std::string(in_.substr(start, pos_ - start));
}

std::optional<std::string> Parser::atom() {
  size_t start = pos_;
  while (pos_ < in_.size() && is_atom_char(in_[pos_])) ++pos_;
  if (pos_ == start) {
    fail("expected an atom");
    return std::nullopt;
  }
  return std::string(in_.substr(start, pos_ - start));
}

std::optional<std::string> Parser::item_name() {
  size_t start = pos_;
  while (pos_ < in_.size() && is_atom_char(in_[pos_]) && in_[pos_] != '[') ++pos_;
  if (pos_ == start) {
    fail("expected an item name");
    return std::nullopt;
  }
  return std::string(in_.substr(start, pos_ - start));
}

std::optional<std::string> Parser::literal(bool* binary) {
  bool bin = consume('~');
  if (binary) *binary = bin;
  if (!consume('{')) {
    fail("expected a literal");
    return std::nullopt;
  }
  uint64_t n = 0;
  size_t digits = 0;
  while (pos_ < in_.size() && isdigit(static_cast<unsigned char>(in_[pos_]))) {
    if (++digits > 18) {
      fail("literal too large");
      return std::nullopt;
    }
    n = n * 10 + static_cast<uint64_t>(in_[pos_++] - '0');
  }
  if (digits == 0) {
    fail("bad literal size");
    return std::nullopt;
  }
  consume('+');
  if (!consume('}')) {
    fail("bad literal");
    return std::nullopt;
  }
  consume('\r');
  if (!consume('\n')) {
    fail("literal marker not at end of line");
    return std::nullopt;
  }
  if (in_.size() - pos_ < n) {
    fail("literal shorter than announced");
    return std::nullopt;
  }
  std::string s(in_.substr(pos_, n));
  pos_ += n;
  if (!bin && s.find('\0') != std::string::npos) {
    fail("NUL in literal");
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> Parser::string() {
  if (peek() == '"') {
    ++pos_;
    std::string s;
    while (pos_ < in_.size()) {
      char c = in_[pos_++];
      if (c == '"') return s;
      if (c == '\\') {
        if (pos_ >= in_.size()) break;
        c = in_[pos_++];
        if (c != '"' && c != '\\') {
          fail("bad escape in quoted string");
          return std::nullopt;
        }
      } else if (c == '\r' || c == '\n' || c == '\0') {
        break;
      }
      s.push_back(c);
    }
    fail("unterminated quoted string");
    return std::nullopt;
  }
  if (at_literal()) return literal();
  fail("expected a string");
  return std::nullopt;
}

std::optional<std::string> Parser::astring() {
  char c = peek();
  if (c == '"' || at_literal()) return string();
  size_t start = pos_;
  while (pos_ < in_.size() && (is_atom_char(in_[pos_]) || in_[pos_] == ']')) ++pos_;
  if (pos_ == start) {
    fail("expected a string or atom");
    return std::nullopt;
  }
  return std::string(in_.substr(start, pos_ - start));
}

std::optional<std::string> Parser::nstring() {
  if (consume_ci("NIL")) return std::string();
  return string();
}

std::optional<std::string> Parser::flag() {
  size_t start = pos_;
  if (consume('\\')) {
    if (consume('*')) return std::string("\\*");
  }
  while (pos_ < in_.size() && is_atom_char(in_[pos_])) ++pos_;
  if (pos_ == start || (pos_ == start + 1 && in_[start] == '\\')) {
    fail("expected a flag");
    return std::nullopt;
  }
  return std::string(in_.substr(start, pos_ - start));
}

std::optional<std::vector<std::string>> Parser::flag_list() {
  std::vector<std::string> out;
  if (!consume('(')) {
    auto f = flag();
    if (!f) return std::nullopt;
    out.push_back(*f);
    while (space()) {
      auto g = flag();
      if (!g) return std::nullopt;
      out.push_back(*g);
    }
    return out;
  }
  if (consume(')')) return out;
  while (true) {
    auto f = flag();
    if (!f) return std::nullopt;
    out.push_back(*f);
    if (consume(')')) return out;
    if (!space()) {
      fail("bad flag list");
      return std::nullopt;
    }
  }
}

std::optional<uint64_t> Parser::number() {
  uint64_t n = 0;
  size_t digits = 0;
  while (pos_ < in_.size() && isdigit(static_cast<unsigned char>(in_[pos_]))) {
    if (++digits > 19) {
      fail("number too large");
      return std::nullopt;
    }
    n = n * 10 + static_cast<uint64_t>(in_[pos_++] - '0');
  }
  if (digits == 0) {
    fail("expected a number");
    return std::nullopt;
  }
  return n;
}

std::optional<uint32_t> Parser::nz_number() {
  auto n = number();
  if (!n) return std::nullopt;
  if (*n == 0 || *n > 0xffffffffull) {
    fail("invalid number");
    return std::nullopt;
  }
  return static_cast<uint32_t>(*n);
}

std::optional<SeqSet> Parser::sequence_set() {
  SeqSet set;
  if (consume('$')) {
    set.saved = true;
    return set;
  }
  auto one = [&]() -> std::optional<uint32_t> {
    if (consume('*')) return 0u;
    return nz_number();
  };
  while (true) {
    auto lo = one();
    if (!lo) {
      fail("invalid sequence set");
      return std::nullopt;
    }
    SeqRange r{*lo, *lo};
    if (consume(':')) {
      auto hi = one();
      if (!hi) {
        fail("invalid sequence set");
        return std::nullopt;
      }
      r.hi = *hi;
      // normalise so lo <= hi unless one is '*'
      if (r.lo && r.hi && r.lo > r.hi) std::swap(r.lo, r.hi);
    }
    set.ranges.push_back(r);
    if (set.ranges.size() > 100000) {
      fail("sequence set too long");
      return std::nullopt;
    }
    if (!consume(',')) return set;
  }
}

bool Parser::skip_value() {
  if (++depth_ > 50) return fail("nesting too deep");
  bool r;
  if (consume('(')) {
    r = true;
    if (!consume(')')) {
      while (true) {
        if (!skip_value()) {
          r = false;
          break;
        }
        if (consume(')')) break;
        if (!space()) {
          r = fail("bad list");
          break;
        }
      }
    }
  } else if (peek() == '"' || at_literal()) {
    r = string().has_value();
  } else {
    size_t start = pos_;
    while (pos_ < in_.size() && (is_atom_char(in_[pos_]) || in_[pos_] == ']' || in_[pos_] == '*' ||
                                 in_[pos_] == '%' || in_[pos_] == '\\'))
      ++pos_;
    r = pos_ > start || fail("expected a value");
  }
  --depth_;
  return r;
}

std::string_view Parser::rest() const {
  std::string_view r = in_.substr(pos_);
  while (!r.empty() && (r.back() == '\n' || r.back() == '\r')) r.remove_suffix(1);
  return r;
}

std::optional<std::string> parse_return_options(Parser& p, ReturnOptions& r) {
  if (!p.consume_ci("RETURN ")) return std::nullopt;
  r.given = true;
  if (!p.consume('(')) return "bad RETURN options";
  while (!p.consume(')')) {
    auto a = p.atom();
    if (!a) return "bad RETURN options";
    std::string u(*a);
    for (auto& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (u == "MIN") r.min = true;
    else if (u == "MAX") r.max = true;
    else if (u == "ALL") r.all = true;
    else if (u == "COUNT") r.count = true;
    else if (u == "SAVE") r.save = true;
    else return "unknown RETURN option " + std::string(*a);
    if (p.peek() != ')' && !p.space()) return "bad RETURN options";
  }
  if (!r.min && !r.max && !r.count && !r.save) r.all = true;
  return std::nullopt;
}

std::optional<QresyncParams> parse_qresync_params(Parser& p) {
  QresyncParams q;
  if (!p.consume('(')) return std::nullopt;
  auto v = p.nz_number();
  auto m = v && p.space() ? p.number() : std::nullopt;
  if (!m) return std::nullopt;
  q.uidvalidity = *v;
  q.modseq = *m;
  bool more = p.space();
  if (more && p.peek() != '(') {
    if (!(q.known_uids = p.sequence_set()) || q.known_uids->saved) return std::nullopt;
    more = p.space();
  }
  if (more) {
    if (!p.consume('(') || !(q.match_seqs = p.sequence_set()) || !p.space() || !(q.match_uids = p.sequence_set()) ||
        !p.consume(')'))
      return std::nullopt;
  }
  if (!p.consume(')')) return std::nullopt;
  return q;
}

}  // namespace mail::imap
