#include "smtp/command.h"

#include <array>
#include <charconv>

namespace mail::smtp {

namespace {

char upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = upper(c);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (upper(a[i]) != upper(b[i])) return false;
  return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

ParseResult fail(int code, std::string enhanced, std::string text) {
  ParseResult r;
  r.error = Reply{code, std::move(enhanced), std::move(text)};
  return r;
}

ParseResult syntax(std::string text) { return fail(501, "5.5.4", std::move(text)); }

// Unsigned decimal with at most `max_digits` digits.
std::optional<uint64_t> parse_uint(std::string_view s, size_t max_digits = 20) {
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<int64_t> parse_int(std::string_view s, size_t max_digits) {
  bool neg = false;
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) {
    neg = s.front() == '-';
    s.remove_prefix(1);
  }
  auto v = parse_uint(s, max_digits);
  if (!v) return std::nullopt;
  return neg ? -static_cast<int64_t>(*v) : static_cast<int64_t>(*v);
}

struct VerbName {
  std::string_view name;
  Verb verb;
};
constexpr std::array<VerbName, 15> kVerbs{{
    {"HELO", Verb::helo},   {"EHLO", Verb::ehlo},     {"LHLO", Verb::lhlo}, {"MAIL", Verb::mail},
    {"RCPT", Verb::rcpt},   {"DATA", Verb::data},     {"BDAT", Verb::bdat}, {"RSET", Verb::rset},
    {"NOOP", Verb::noop},   {"QUIT", Verb::quit},     {"VRFY", Verb::vrfy}, {"EXPN", Verb::expn},
    {"HELP", Verb::help},   {"STARTTLS", Verb::starttls}, {"AUTH", Verb::auth},
}};

// Splits "<path> params" after "FROM:"/"TO:". The path may hold quoted strings
// with spaces and '>' inside; a source route ("@a,@b:") is dropped.
bool split_path(std::string_view rest, std::string& path, std::string_view& params) {
  rest = trim(rest);
  if (rest.empty()) return false;
  size_t end;
  std::string_view inner;
  if (rest.front() == '<') {
    bool quoted = false;
    size_t i = 1;
    for (; i < rest.size(); ++i) {
      char c = rest[i];
      if (quoted && c == '\\') {
        ++i;
        continue;
      }
      if (c == '"') quoted = !quoted;
      else if (!quoted && c == '>') break;
      else if (!quoted && c == '<') return false;
    }
    if (i >= rest.size()) return false;
    inner = rest.substr(1, i - 1);
    end = i + 1;
    if (end < rest.size() && rest[end] != ' ') return false;
  } else {
    // Lenient: a bare address without brackets (common in old clients).
    end = rest.find(' ');
    if (end == std::string_view::npos) end = rest.size();
    inner = rest.substr(0, end);
    if (inner.find('<') != std::string_view::npos || inner.find('>') != std::string_view::npos) return false;
  }
  if (!inner.empty() && inner.front() == '@') {
    // A-d-l ":" Mailbox; the route is ignored (RFC 5321 4.1.1.3, C).
    size_t colon = inner.find(':');
    if (colon == std::string_view::npos) return false;
    inner.remove_prefix(colon + 1);
    if (inner.empty()) return false;
  }
  path.assign(inner);
  params = end < rest.size() ? rest.substr(end) : std::string_view();
  return true;
}

bool valid_keyword(std::string_view k) {
  if (k.empty()) return false;
  for (size_t i = 0; i < k.size(); ++i) {
    char c = k[i];
    bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && !(i > 0 && c == '-')) return false;
  }
  return true;
}

bool valid_value(std::string_view v) {
  if (v.empty()) return false;
  for (unsigned char c : v)
    if (c < 33 || c == '=' || c == 127) return false;  // esmtp-value: %d33-60 / %d62-126, UTF-8 allowed
  return true;
}

struct Param {
  std::string keyword;  // upper case
  std::string value;
  bool has_value = false;
};

std::optional<std::vector<Param>> split_params(std::string_view s, std::string& why) {
  std::vector<Param> out;
  while (true) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    if (s.empty()) break;
    size_t sp = s.find(' ');
    std::string_view word = s.substr(0, sp);
    s = sp == std::string_view::npos ? std::string_view() : s.substr(sp);
    Param p;
    size_t eq = word.find('=');
    std::string_view key = word.substr(0, eq);
    if (!valid_keyword(key)) {
      why = "Syntax error in parameters";
      return std::nullopt;
    }
    p.keyword = upper(key);
    if (eq != std::string_view::npos) {
      std::string_view value = word.substr(eq + 1);
      if (!valid_value(value)) {
        why = "Syntax error in parameter " + p.keyword;
        return std::nullopt;
      }
      p.value.assign(value);
      p.has_value = true;
    }
    for (const auto& q : out) {
      if (q.keyword == p.keyword) {
        why = "Duplicate parameter " + p.keyword;
        return std::nullopt;
      }
    }
    out.push_back(std::move(p));
  }
  return out;
}

ParseResult parse_mail_params(Command cmd, std::string_view text) {
  std::string why;
  auto params = split_params(text, why);
  if (!params) return syntax(why);
  MailParams& m = cmd.mail;
  for (const auto& p : *params) {
    const std::string& k = p.keyword;
    auto need_value = [&]() { return p.has_value; };
    if (k == "SIZE") {
      auto v = need_value() ? parse_uint(p.value) : std::nullopt;
      if (!v) return syntax("Bad SIZE parameter");
      m.size = *v;
    } else if (k == "BODY") {
      std::string v = upper(p.value);
      if (v == "7BIT") m.body = BodyType::seven_bit;
      else if (v == "8BITMIME") m.body = BodyType::eight_bit_mime;
      else if (v == "BINARYMIME") m.body = BodyType::binary_mime;
      else return syntax("Bad BODY parameter");
    } else if (k == "SMTPUTF8") {
      if (p.has_value) return syntax("SMTPUTF8 takes no value");
      m.smtputf8 = true;
    } else if (k == "REQUIRETLS") {
      if (p.has_value) return syntax("REQUIRETLS takes no value");
      m.requiretls = true;
    } else if (k == "RET") {
      std::string v = upper(p.value);
      if (v == "FULL") m.ret = 1;
      else if (v == "HDRS") m.ret = 2;
      else return syntax("Bad RET parameter");
    } else if (k == "ENVID") {
      auto v = need_value() ? xtext_decode(p.value) : std::nullopt;
      if (!v || v->size() > 100) return syntax("Bad ENVID parameter");
      m.envid = std::move(*v);
    } else if (k == "AUTH") {
      auto v = need_value() ? xtext_decode(p.value) : std::nullopt;
      if (!v) return syntax("Bad AUTH parameter");
      m.auth = std::move(*v);
    } else if (k == "HOLDFOR") {
      auto v = need_value() ? parse_uint(p.value, 9) : std::nullopt;
      if (!v) return syntax("Bad HOLDFOR parameter");
      m.hold_for = static_cast<int64_t>(*v);
    } else if (k == "HOLDUNTIL") {
      auto v = need_value() ? parse_rfc3339(p.value) : std::nullopt;
      if (!v) return syntax("Bad HOLDUNTIL parameter");
      m.hold_until = *v;
    } else if (k == "BY") {
      std::string_view v = p.value;
      size_t semi = v.find(';');
      if (!p.has_value || semi == std::string_view::npos) return syntax("Bad BY parameter");
      auto secs = parse_int(v.substr(0, semi), 9);
      std::string mode = upper(v.substr(semi + 1));
      DeliverBy by;
      if (!secs || mode.empty() || mode.size() > 2 || (mode[0] != 'N' && mode[0] != 'R') ||
          (mode.size() == 2 && mode[1] != 'T'))
        return syntax("Bad BY parameter");
      by.seconds = *secs;
      by.mode = mode[0];
      by.trace = mode.size() == 2;
      // RFC 2852: with N the time must be positive; with R zero is invalid too.
      if (by.seconds <= 0 && by.mode == 'N') return syntax("BY time must be positive with mode N");
      m.by = by;
    } else {
      return fail(555, "5.5.4", "Unsupported parameter " + k);
    }
  }
  ParseResult r;
  r.command = std::move(cmd);
  return r;
}

ParseResult parse_rcpt_params(Command cmd, std::string_view text) {
  std::string why;
  auto params = split_params(text, why);
  if (!params) return syntax(why);
  RcptParams& rp = cmd.rcpt;
  for (const auto& p : *params) {
    if (p.keyword == "NOTIFY") {
      if (!p.has_value) return syntax("Bad NOTIFY parameter");
      std::string_view v = p.value;
      uint8_t bits = 0;
      while (true) {
        size_t comma = v.find(',');
        std::string item = upper(v.substr(0, comma));
        uint8_t bit = 0;
        if (item == "NEVER") bit = 1u << 0;
        else if (item == "SUCCESS") bit = 1u << 1;
        else if (item == "FAILURE") bit = 1u << 2;
        else if (item == "DELAY") bit = 1u << 3;
        else return syntax("Bad NOTIFY parameter");
        if (bits & bit) return syntax("Bad NOTIFY parameter");
        bits |= bit;
        if (comma == std::string_view::npos) break;
        v.remove_prefix(comma + 1);
      }
      // NEVER stands alone.
      if ((bits & 1u) && bits != 1u) return syntax("NOTIFY=NEVER cannot be combined");
      rp.notify = bits;
    } else if (p.keyword == "ORCPT") {
      size_t semi = p.value.find(';');
      if (!p.has_value || semi == 0 || semi == std::string::npos || !valid_keyword(p.value.substr(0, semi)))
        return syntax("Bad ORCPT parameter");
      auto addr = xtext_decode(std::string_view(p.value).substr(semi + 1));
      if (!addr || addr->empty() || addr->size() > 500) return syntax("Bad ORCPT parameter");
      rp.orcpt = p.value;
      rp.orcpt_address = std::move(*addr);
    } else {
      return fail(555, "5.5.4", "Unsupported parameter " + p.keyword);
    }
  }
  ParseResult r;
  r.command = std::move(cmd);
  return r;
}

int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  // Howard Hinnant's public-domain algorithm (days since 1970-01-01).
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

}  // namespace

std::string Reply::render() const {
  std::string out;
  std::string_view rest = text;
  std::string code_str = std::to_string(code);
  while (true) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    bool last = nl == std::string_view::npos;
    out += code_str;
    out += last ? ' ' : '-';
    if (!enhanced.empty()) {
      out += enhanced;
      out += ' ';
    }
    out += line;
    out += "\r\n";
    if (last) break;
    rest.remove_prefix(nl + 1);
  }
  return out;
}

std::optional<int64_t> parse_rfc3339(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  auto num = [&](size_t pos, size_t len) -> std::optional<unsigned> {
    if (pos + len > s.size()) return std::nullopt;
    auto v = parse_uint(s.substr(pos, len), len);
    if (!v || s.substr(pos, len).find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
    return static_cast<unsigned>(*v);
  };
  if (s.size() < 20) return std::nullopt;
  auto y = num(0, 4), mo = num(5, 2), d = num(8, 2), h = num(11, 2), mi = num(14, 2), sec = num(17, 2);
  if (!y || !mo || !d || !h || !mi || !sec) return std::nullopt;
  if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':')
    return std::nullopt;
  static constexpr unsigned kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (*mo < 1 || *mo > 12 || *d < 1 || *d > kDays[*mo - 1] || *h > 23 || *mi > 59 || *sec > 60)
    return std::nullopt;
  size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) return std::nullopt;
  }
  int64_t offset = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    auto oh = num(i + 1, 2), om = num(i + 4, 2);
    if (!oh || !om || i + 3 >= s.size() || s[i + 3] != ':' || *oh > 23 || *om > 59) return std::nullopt;
    offset = (s[i] == '+' ? 1 : -1) * static_cast<int64_t>(*oh * 3600 + *om * 60);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  int64_t days = days_from_civil(*y, *mo, *d);
  return days * 86400 + *h * 3600 + *mi * 60 + std::min<unsigned>(*sec, 59) - offset;
}

ParseResult parse_command(std::string_view line) {
  for (unsigned char c : line) {
    if (c < 0x20 && c != '\t') return fail(500, "5.5.2", "Syntax error: control character in command");
    if (c == 0x7f) return fail(500, "5.5.2", "Syntax error: control character in command");
  }
  size_t sp = line.find(' ');
  std::string_view word = line.substr(0, sp);
  std::string_view rest = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
  Command cmd;
  cmd.keyword = upper(word.substr(0, 16));
  for (const auto& v : kVerbs) {
    if (iequals(word, v.name)) cmd.verb = v.verb;
  }
  if (cmd.verb == Verb::unknown) return fail(500, "5.5.1", "Command unrecognized");

  auto done = [&]() {
    ParseResult r;
    r.command = std::move(cmd);
    return r;
  };
  rest = trim(rest);
  switch (cmd.verb) {
    case Verb::helo:
    case Verb::ehlo:
    case Verb::lhlo: {
      if (rest.empty()) return syntax(cmd.keyword + " requires a domain or address literal");
      size_t end = rest.find_first_of(" \t");
      cmd.arg.assign(rest.substr(0, end));  // trailing text after the domain is ignored
      return done();
    }
    case Verb::data:
    case Verb::rset:
    case Verb::quit:
    case Verb::starttls:
      if (!rest.empty()) return syntax(cmd.keyword + " takes no arguments");
      return done();
    case Verb::noop:
    case Verb::help:
      cmd.arg.assign(rest);
      return done();
    case Verb::vrfy:
    case Verb::expn:
    case Verb::auth:
      if (rest.empty()) return syntax(cmd.keyword + " requires an argument");
      cmd.arg.assign(rest);
      return done();
    case Verb::bdat: {
      size_t s2 = rest.find(' ');
      auto size = parse_uint(rest.substr(0, s2));
      if (!size) return syntax("BDAT requires a chunk size");
      cmd.chunk_size = *size;
      if (s2 != std::string_view::npos) {
        if (!iequals(trim(rest.substr(s2)), "LAST")) return syntax("Syntax: BDAT <size> [LAST]");
        cmd.last = true;
      }
      return done();
    }
    case Verb::mail:
    case Verb::rcpt: {
      std::string_view prefix = cmd.verb == Verb::mail ? "FROM:" : "TO:";
      if (!istarts_with(rest, prefix))
        return syntax(cmd.verb == Verb::mail ? "Syntax: MAIL FROM:<address>" : "Syntax: RCPT TO:<address>");
      std::string_view params;
      if (!split_path(rest.substr(prefix.size()), cmd.path, params))
        return fail(501, cmd.verb == Verb::mail ? "5.1.7" : "5.1.3", "Bad address syntax");
      if (cmd.verb == Verb::rcpt && cmd.path.empty()) return fail(501, "5.1.3", "Empty recipient address");
      return cmd.verb == Verb::mail ? parse_mail_params(std::move(cmd), params)
                                    : parse_rcpt_params(std::move(cmd), params);
    }
    case Verb::unknown:
      break;
  }
  return fail(500, "5.5.1", "Command unrecognized");
}

}  // namespace mail::smtp
