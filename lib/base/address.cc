#include "base/address.h"

#include <idn2.h>

#include <cstdlib>

namespace mail {
namespace {

bool is_ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c >= 0x80) return false;
  return true;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool is_ldh(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

// RFC 5322 atext, plus UTF-8 (RFC 6531); the caller lower-cases ASCII.
bool is_atext(unsigned char c) {
  if (c >= 0x80) return true;
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '/': case '=': case '?': case '^': case '_': case '`': case '{':
    case '|': case '}': case '~':
      return true;
    default:
      return false;
  }
}

bool is_dot_atom(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  char prev = 0;
  for (char c : s) {
    if (c == '.') {
      if (prev == '.') return false;
    } else if (!is_atext(static_cast<unsigned char>(c))) {
      return false;
    }
    prev = c;
  }
  return true;
}

// Checks UTF-8 well-formedness: an address must never carry invalid bytes.
bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    if (n == 2 && c < 0xc2) return false;  // overlong
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    i += n;
  }
  return true;
}

Status check_ascii_domain(std::string_view d) {
  if (d.empty()) return error(Code::invalid, "empty domain");
  if (d.size() > 253) return error(Code::invalid, "domain longer than 253 characters");
  size_t start = 0;
  int labels = 0;
  while (start <= d.size()) {
    size_t dot = d.find('.', start);
    if (dot == std::string_view::npos) dot = d.size();
    std::string_view label = d.substr(start, dot - start);
    if (label.empty()) return error(Code::invalid, "empty label in domain");
    if (label.size() > 63) return error(Code::invalid, "domain label longer than 63 characters");
    if (label.front() == '-' || label.back() == '-')
      return error(Code::invalid, "domain label starts or ends with '-'");
    for (char c : label)
      if (!is_ldh(c)) return error(Code::invalid, "invalid character in domain");
    ++labels;
    start = dot + 1;
    if (dot == d.size()) break;
  }
  if (labels < 1) return error(Code::invalid, "empty domain");
  return Status::ok();
}

}  // namespace

Result<std::string> canonical_domain(std::string_view domain) {
  if (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
  if (domain.empty()) return error(Code::invalid, "empty domain");
  if (domain.front() == '[') return error(Code::invalid, "address literals are not domains");
  std::string out;
  if (is_ascii(domain)) {
    out.reserve(domain.size());
    for (char c : domain) out.push_back(lower(c));
  } else {
    if (!valid_utf8(domain)) return error(Code::invalid, "domain is not valid UTF-8");
    std::string in(domain);
    char* ascii = nullptr;
    int rc = idn2_lookup_u8(reinterpret_cast<const uint8_t*>(in.c_str()),
                            reinterpret_cast<uint8_t**>(&ascii), IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    if (rc != IDN2_OK) {
      return error(Code::invalid, std::string("invalid internationalised domain: ") + idn2_strerror(rc));
    }
    out = ascii;
    idn2_free(ascii);
    for (char& c : out) c = lower(c);
  }
  MAIL_TRY(check_ascii_domain(out));
  // An A-label must decode: catches "xn--" garbage typed by hand.
  size_t pos = 0;
  while ((pos = out.find("xn--", pos)) != std::string::npos) {
    if (pos == 0 || out[pos - 1] == '.') {
      char* u = nullptr;
      int rc = idn2_to_unicode_8z8z(out.c_str(), &u, 0);
      if (rc != IDN2_OK) return error(Code::invalid, "invalid A-label in domain");
      idn2_free(u);
      break;
    }
    pos += 4;
  }
  return out;
}

std::string display_domain(std::string_view canonical) {
  if (canonical.find("xn--") == std::string_view::npos) return std::string(canonical);
  std::string in(canonical);
  char* u = nullptr;
  if (idn2_to_unicode_8z8z(in.c_str(), &u, 0) != IDN2_OK) return in;
  std::string out(u);
  idn2_free(u);
  return out;
}

Result<Address> parse_address(std::string_view text) {
  if (text.size() > 254 * 4) return error(Code::invalid, "address too long");
  if (!valid_utf8(text)) return error(Code::invalid, "address is not valid UTF-8");
  Address a;
  size_t at;
  if (!text.empty() && text.front() == '"') {
    // Quoted local part: "..."@domain with \-escapes.
    size_t i = 1;
    std::string local;
    bool closed = false;
    while (i < text.size()) {
      char c = text[i];
      if (c == '\\') {
        if (i + 1 >= text.size()) break;
        char escaped = text[i + 1];  // RFC 5321 quoted-pairSMTP: %d92 %d32-126
        if (escaped < 32 || escaped > 126) return error(Code::invalid, "control character in address");
        local.push_back(escaped);
        i += 2;
        continue;
      }
      if (c == '"') {
        closed = true;
        ++i;
        break;
      }
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        return error(Code::invalid, "control character in address");
      local.push_back(c);
      ++i;
    }
    if (!closed) return error(Code::invalid, "unterminated quoted local part");
    if (i >= text.size() || text[i] != '@') return error(Code::invalid, "missing '@' in address");
    at = i;
    for (char& c : local) c = lower(c);
    a.local = std::move(local);
  } else {
    at = text.rfind('@');
    if (at == std::string_view::npos) return error(Code::invalid, "missing '@' in address");
    std::string_view local = text.substr(0, at);
    if (!is_dot_atom(local)) {
      return error(Code::invalid, local.empty() ? "empty local part" : "invalid character in local part");
    }
    a.local.reserve(local.size());
    for (char c : local) a.local.push_back(lower(c));
  }
  if (a.local.empty()) return error(Code::invalid, "empty local part");
  if (a.local.size() > 64) return error(Code::invalid, "local part longer than 64 octets");
  auto dom = canonical_domain(text.substr(at + 1));
  if (!dom) return error(Code::invalid, dom.status().message());
  a.domain = std::move(dom).value();
  if (a.str().size() > 254) return error(Code::invalid, "address longer than 254 octets");
  return a;
}

std::string Address::str() const {
  if (is_dot_atom(local)) return local + "@" + domain;
  std::string q = "\"";
  for (char c : local) {
    if (c == '"' || c == '\\') q.push_back('\\');
    q.push_back(c);
  }
  q += "\"@";
  q += domain;
  return q;
}

LocalPart split_detail(std::string_view local, char separator) {
  size_t p = local.find(separator);
  if (p == std::string_view::npos || p == 0) return {std::string(local), {}};
  return {std::string(local.substr(0, p)), std::string(local.substr(p + 1))};
}

}  // namespace mail
