#include "transfer/message.h"

#include <cctype>
#include <cstring>
#include <ctime>

#include "base/ascii.h"

namespace mail::transfer {
namespace {

int month_index(std::string_view m) {
  static const char* kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
  if (m.size() < 3) return -1;
  for (int i = 0; i < 12; ++i)
    if (ascii_iequals(m.substr(0, 3), kMonths[i])) return i;
  return -1;
}

std::vector<std::string_view> tokens(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == ',' || s[i] == '\r' || s[i] == '\n')) ++i;
    size_t b = i;
    while (i < s.size() && !(s[i] == ' ' || s[i] == '\t' || s[i] == ',' || s[i] == '\r' || s[i] == '\n')) ++i;
    if (i > b) out.push_back(s.substr(b, i - b));
  }
  return out;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

int to_int(std::string_view s) {
  int v = 0;
  for (char c : s) {
    v = v * 10 + (c - '0');
    if (v > 100000) return v;
  }
  return v;
}

// "hh:mm[:ss]"
bool parse_time(std::string_view s, int& h, int& m, int& sec) {
  size_t c1 = s.find(':');
  if (c1 == std::string_view::npos) return false;
  size_t c2 = s.find(':', c1 + 1);
  std::string_view hs = s.substr(0, c1);
  std::string_view ms = s.substr(c1 + 1, c2 == std::string_view::npos ? std::string_view::npos : c2 - c1 - 1);
  std::string_view ss = c2 == std::string_view::npos ? std::string_view("0") : s.substr(c2 + 1);
  if (!all_digits(hs) || !all_digits(ms) || !all_digits(ss) || hs.size() > 2 || ms.size() != 2 || ss.size() > 2)
    return false;
  h = to_int(hs);
  m = to_int(ms);
  sec = to_int(ss);
  return h < 24 && m < 60 && sec <= 60;
}

// Zone offset in seconds east of UTC; false when `s` is not a zone.
bool parse_zone(std::string_view s, int64_t& offset) {
  if (s.size() == 5 && (s[0] == '+' || s[0] == '-') && all_digits(s.substr(1))) {
    int v = to_int(s.substr(1));
    offset = (v / 100) * 3600 + (v % 100) * 60;
    if (s[0] == '-') offset = -offset;
    return true;
  }
  struct Named {
    const char* name;
    int hours;
  };
  static const Named kZones[] = {{"UT", 0},   {"UTC", 0},  {"GMT", 0},  {"Z", 0},    {"EST", -5}, {"EDT", -4},
                                 {"CST", -6}, {"CDT", -5}, {"MST", -7}, {"MDT", -6}, {"PST", -8}, {"PDT", -7}};
  for (const auto& z : kZones)
    if (ascii_iequals(s, z.name)) {
      offset = z.hours * 3600;
      return true;
    }
  return false;
}

store::UnixTime make_time(int year, int month, int day, int h, int m, int s, int64_t offset) {
  if (year < 100) year += year < 50 ? 2000 : 1900;
  if (year < 1970 || year > 9999 || month < 0 || month > 11 || day < 1 || day > 31) return 0;
  struct tm tm {};
  tm.tm_year = year - 1900;
  tm.tm_mon = month;
  tm.tm_mday = day;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = s;
  time_t t = timegm(&tm);
  if (t == static_cast<time_t>(-1)) return 0;
  store::UnixTime r = static_cast<store::UnixTime>(t) - offset;
  return r > 0 ? r : 0;
}

}  // namespace

std::string to_crlf(std::string_view in) {
  std::string out;
  out.reserve(in.size() + in.size() / 32 + 16);
  size_t pos = 0;
  while (pos < in.size()) {
    const void* p = std::memchr(in.data() + pos, '\n', in.size() - pos);
    if (!p) {
      out.append(in.substr(pos));
      break;
    }
    size_t nl = static_cast<const char*>(p) - in.data();
    out.append(in.data() + pos, nl - pos);
    if (nl == 0 || in[nl - 1] != '\r') out.push_back('\r');
    out.push_back('\n');
    pos = nl + 1;
  }
  return out;
}

std::string to_lf(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  size_t pos = 0;
  while (pos < in.size()) {
    const void* p = std::memchr(in.data() + pos, '\n', in.size() - pos);
    if (!p) {
      out.append(in.substr(pos));
      break;
    }
    size_t nl = static_cast<const char*>(p) - in.data();
    size_t end = (nl > pos && in[nl - 1] == '\r') ? nl - 1 : nl;
    out.append(in.data() + pos, end - pos);
    out.push_back('\n');
    pos = nl + 1;
  }
  return out;
}

bool looks_like_message(std::string_view content) {
  // An empty header (the blank line first) is a message too, if an odd one.
  if (content.starts_with("\n") || content.starts_with("\r\n")) return true;
  size_t i = 0;
  while (i < content.size()) {
    unsigned char c = static_cast<unsigned char>(content[i]);
    if (c == ':') return i > 0;
    if (c <= 32 || c >= 127) return false;
    ++i;
  }
  return false;
}

store::UnixTime parse_from_line_date(std::string_view line) { return from_line_date(line).value_or(0); }

std::optional<store::UnixTime> from_line_date(std::string_view line) {
  // "From sender Wed Nov 25 14:39:16 2026 [zone]": find "Mon DD HH:MM[:SS] YYYY"
  // anywhere after the sender (senders may contain spaces when quoted).
  auto t = tokens(line);
  for (size_t i = 0; i + 3 < t.size(); ++i) {
    int month = month_index(t[i]);
    if (month < 0 || t[i].size() > 9) continue;
    if (!all_digits(t[i + 1]) || t[i + 1].size() > 2) continue;
    int h, m, s;
    // Usual order: time then year; some writers put the year first.
    std::string_view a = t[i + 2], b = t[i + 3];
    std::string_view time_tok, year_tok;
    size_t next = i + 4;
    if (parse_time(a, h, m, s) && all_digits(b) && b.size() == 4) {
      time_tok = a;
      year_tok = b;
    } else if (all_digits(a) && a.size() == 4 && parse_time(b, h, m, s)) {
      time_tok = b;
      year_tok = a;
    } else {
      continue;
    }
    int64_t offset = 0;
    if (next < t.size()) {
      int64_t z;
      if (parse_zone(t[next], z)) offset = z;
    }
    return make_time(to_int(year_tok), month, to_int(t[i + 1]), h, m, s, offset);
  }
  return std::nullopt;
}

store::UnixTime parse_rfc5322_date(std::string_view text) {
  // Comments are dropped; then [weekday,] DD Mon YYYY HH:MM[:SS] zone.
  std::string clean;
  int depth = 0;
  for (char c : text) {
    if (c == '(') ++depth;
    else if (c == ')' && depth > 0) --depth;
    else if (depth == 0) clean.push_back(c);
  }
  auto t = tokens(clean);
  for (size_t i = 0; i + 3 < t.size(); ++i) {
    if (!all_digits(t[i]) || t[i].size() > 2) continue;
    int month = month_index(t[i + 1]);
    if (month < 0 || !all_digits(t[i + 2])) continue;
    int h, m, s;
    if (!parse_time(t[i + 3], h, m, s)) continue;
    int64_t offset = 0;
    if (i + 4 < t.size()) {
      int64_t z;
      if (parse_zone(t[i + 4], z)) offset = z;
    }
    return make_time(to_int(t[i + 2]), month, to_int(t[i]), h, m, s, offset);
  }
  return 0;
}

std::string format_asctime(store::UnixTime t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm {};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a %b %e %H:%M:%S %Y", &tm);
  return buf;
}

std::string_view header_block(std::string_view content) {
  for (size_t pos = 0; pos < content.size();) {
    size_t nl = content.find('\n', pos);
    if (nl == std::string_view::npos) return content;
    std::string_view line = content.substr(pos, nl - pos);
    if (line.empty() || line == "\r") return content.substr(0, nl + 1);
    pos = nl + 1;
  }
  return content;
}

store::UnixTime date_from_headers(std::string_view content) {
  std::string_view header = header_block(content);
  std::string_view received_value, date_value;
  // Walk fields (with their continuation lines).
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = pos;
    do {
      size_t nl = header.find('\n', end);
      end = nl == std::string_view::npos ? header.size() : nl + 1;
    } while (end < header.size() && (header[end] == ' ' || header[end] == '\t'));
    std::string_view field = header.substr(pos, end - pos);
    size_t colon = field.find(':');
    if (colon != std::string_view::npos) {
      std::string_view name = field.substr(0, colon);
      while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
      if (received_value.empty() && ascii_iequals(name, "Received")) received_value = field.substr(colon + 1);
      if (date_value.empty() && ascii_iequals(name, "Date")) date_value = field.substr(colon + 1);
    }
    pos = end;
  }
  if (!received_value.empty()) {
    size_t semi = received_value.rfind(';');
    if (semi != std::string_view::npos)
      if (auto t = parse_rfc5322_date(received_value.substr(semi + 1))) return t;
  }
  if (!date_value.empty()) return parse_rfc5322_date(date_value);
  return 0;
}

store::SpecialUse special_use_for(std::string_view name) {
  using store::SpecialUse;
  if (name.find('/') != std::string_view::npos) return SpecialUse::none;
  struct Known {
    const char* name;
    SpecialUse use;
  };
  static const Known kKnown[] = {
      {"Sent", SpecialUse::sent},           {"Sent Items", SpecialUse::sent},   {"Sent Messages", SpecialUse::sent},
      {"Sent Mail", SpecialUse::sent},      {"Drafts", SpecialUse::drafts},     {"Draft", SpecialUse::drafts},
      {"Trash", SpecialUse::trash},         {"Deleted Items", SpecialUse::trash}, {"Deleted Messages", SpecialUse::trash},
      {"Junk", SpecialUse::junk},           {"Spam", SpecialUse::junk},         {"Junk E-mail", SpecialUse::junk},
      {"Archive", SpecialUse::archive},     {"Archives", SpecialUse::archive},
  };
  for (const auto& k : kKnown)
    if (ascii_iequals(name, k.name)) return k.use;
  return SpecialUse::none;
}

std::string canonical_mailbox_name(std::string_view name) {
  if (ascii_iequals(name, "INBOX")) return "INBOX";
  if (name.size() > 6 && ascii_iequals(name.substr(0, 6), "INBOX/")) return "INBOX" + std::string(name.substr(5));
  return std::string(name);
}

}  // namespace mail::transfer
