// Modified UTF-7 (RFC 3501 5.1.3), the mailbox name encoding of IMAP4rev1 and Maildir++.
#include "base/mutf7.h"

#include <cstdint>
#include <cstring>
#include <vector>

namespace mail {

namespace {
const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

int b64_value(char c) {
  const char* p = std::strchr(kB64, c);
  return (p && c) ? static_cast<int>(p - kB64) : -1;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// Decodes one UTF-8 sequence at s[i]; advances i. Invalid bytes give U+FFFD.
uint32_t next_code_point(std::string_view s, size_t& i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + len > s.size()) {
    ++i;
    return 0xfffd;
  }
  uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
  for (int k = 1; k < len; ++k) {
    unsigned char d = static_cast<unsigned char>(s[i + k]);
    if ((d >> 6) != 2) {
      ++i;
      return 0xfffd;
    }
    cp = (cp << 6) | (d & 0x3f);
  }
  i += len;
  return cp;
}
}  // namespace

std::string mutf7_decode(std::string_view in) {
  std::string out;
  size_t i = 0;
  while (i < in.size()) {
    if (in[i] != '&') {
      out.push_back(in[i++]);
      continue;
    }
    size_t end = in.find('-', i + 1);
    if (end == std::string_view::npos) {
      out.append(in.substr(i));
      break;
    }
    if (end == i + 1) {  // "&-" is '&'
      out.push_back('&');
      i = end + 1;
      continue;
    }
    // Base64 of UTF-16BE.
    std::string decoded;
    uint32_t bits = 0;
    int nbits = 0;
    std::vector<uint16_t> units;
    bool bad = false;
    for (size_t k = i + 1; k < end; ++k) {
      int v = b64_value(in[k]);
      if (v < 0) {
        bad = true;
        break;
      }
      bits = (bits << 6) | static_cast<uint32_t>(v);
      nbits += 6;
      if (nbits >= 16) {
        nbits -= 16;
        units.push_back(static_cast<uint16_t>((bits >> nbits) & 0xffff));
      }
    }
    for (size_t k = 0; !bad && k < units.size(); ++k) {
      uint32_t u = units[k];
      if (u >= 0xd800 && u < 0xdc00 && k + 1 < units.size() && units[k + 1] >= 0xdc00 && units[k + 1] < 0xe000) {
        append_utf8(decoded, 0x10000 + ((u - 0xd800) << 10) + (units[k + 1] - 0xdc00));
        ++k;
      } else if (u >= 0xd800 && u < 0xe000) {
        bad = true;
      } else {
        append_utf8(decoded, u);
      }
    }
    if (bad) {
      out.append(in.substr(i, end + 1 - i));
    } else {
      out += decoded;
    }
    i = end + 1;
  }
  return out;
}

std::string mutf7_encode(std::string_view utf8) {
  std::string out;
  std::vector<uint16_t> pending;
  auto flush = [&] {
    if (pending.empty()) return;
    out.push_back('&');
    uint32_t bits = 0;
    int nbits = 0;
    for (uint16_t u : pending) {
      bits = (bits << 16) | u;
      nbits += 16;
      while (nbits >= 6) {
        nbits -= 6;
        out.push_back(kB64[(bits >> nbits) & 0x3f]);
      }
    }
    if (nbits > 0) out.push_back(kB64[(bits << (6 - nbits)) & 0x3f]);
    out.push_back('-');
    pending.clear();
  };
  size_t i = 0;
  while (i < utf8.size()) {
    unsigned char c = static_cast<unsigned char>(utf8[i]);
    if (c >= 0x20 && c < 0x7f) {
      flush();
      out += c == '&' ? "&-" : std::string(1, static_cast<char>(c));
      ++i;
      continue;
    }
    uint32_t cp = next_code_point(utf8, i);
    if (cp >= 0x10000) {
      cp -= 0x10000;
      pending.push_back(static_cast<uint16_t>(0xd800 + (cp >> 10)));
      pending.push_back(static_cast<uint16_t>(0xdc00 + (cp & 0x3ff)));
    } else {
      pending.push_back(static_cast<uint16_t>(cp));
    }
  }
  flush();
  return out;
}

}  // namespace mail
