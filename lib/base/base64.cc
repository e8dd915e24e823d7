#include "base/base64.h"

#include <sodium.h>

#include <array>
#include <cstdint>

namespace mail {

std::string base64_encode(std::string_view data) {
  constexpr int variant = sodium_base64_VARIANT_ORIGINAL;
  std::string out(sodium_base64_encoded_len(data.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(data.data()),
                    data.size(), variant);
  out.resize(out.size() - 1);  // the encoder writes a terminating NUL
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  if (text.empty()) return std::string();
  if (text.size() % 4 != 0) return error(Code::invalid, "invalid base64: length");
  // libsodium 1.0.18 maps some bytes >= 0x80 to base64 digits: check the
  // alphabet first (padding placement is left to libsodium).
  for (char c : text) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || c == '=';
    if (!ok) return error(Code::invalid, "invalid base64: bad character");
  }
  std::string out(text.size() / 4 * 3, '\0');
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size()) {
    return error(Code::invalid, "invalid base64");
  }
  out.resize(len);
  return out;
}

namespace {

// Digit values by byte; 64 for '=', 255 for a byte outside the alphabet.
constexpr std::array<unsigned char, 256> kDigit = [] {
  std::array<unsigned char, 256> t{};
  t.fill(255);
  const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (unsigned i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<unsigned char>(i);
  t['='] = 64;
  return t;
}();

}  // namespace

Result<std::string> base64_decode_public(std::string_view text) {
  if (text.empty()) return std::string();
  if (text.size() % 4 != 0) return error(Code::invalid, "invalid base64: length");
  const auto* in = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size();
  size_t pad = in[n - 1] == '=' ? (in[n - 2] == '=' ? 2 : 1) : 0;
  std::string out(n / 4 * 3 - pad, '\0');
  char* w = out.data();
  // Whole quanta but the last; any '=' in them is an error (64 sets bit 6).
  unsigned bad = 0;
  size_t body = n - 4;
  for (size_t i = 0; i < body; i += 4) {
    unsigned a = kDigit[in[i]], b = kDigit[in[i + 1]], c = kDigit[in[i + 2]], d = kDigit[in[i + 3]];
    bad |= a | b | c | d;
    uint32_t v = (a << 18) | (b << 12) | (c << 6) | d;
    w[0] = static_cast<char>(v >> 16);
    w[1] = static_cast<char>(v >> 8);
    w[2] = static_cast<char>(v);
    w += 3;
  }
  if (bad & 0xc0) return error(Code::invalid, "invalid base64");
  // The last quantum: padding only at its end, and no bits left over under it.
  unsigned a = kDigit[in[body]], b = kDigit[in[body + 1]], c = kDigit[in[body + 2]], d = kDigit[in[body + 3]];
  if ((a | b) >= 64 || (pad < 2 && c >= 64) || (pad == 0 && d >= 64) || (pad == 2 && c != 64)) {
    return error(Code::invalid, "invalid base64");
  }
  if ((pad == 2 && (b & 0x0f)) || (pad == 1 && (c & 0x03))) return error(Code::invalid, "invalid base64");
  uint32_t v = (a << 18) | (b << 12) | ((c & 63) << 6) | (d & 63);
  w[0] = static_cast<char>(v >> 16);
  if (pad < 2) w[1] = static_cast<char>(v >> 8);
  if (pad < 1) w[2] = static_cast<char>(v);
  return out;
}

}  // namespace mail
