// Fuzzes the SCRAM-SHA-256 server (two client messages separated by '\n') and
// the strict base64 decoder it relies on: neither may crash, and an exchange
// with an unknown proof never succeeds.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/base64.h"
#include "base/password.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  auto decoded = mail::base64_decode(in);
  // Strict decoding: whatever decodes re-encodes to the same text.
  if (decoded.is_ok() && mail::base64_encode(*decoded) != in) __builtin_trap();

  static const mail::ScramKeys keys = mail::derive_scram_keys("pencil", "fixed salt", 1);
  mail::ScramServer server([](std::string_view user) -> std::optional<mail::ScramKeys> {
    if (user == "user") return keys;
    return std::nullopt;
  });
  size_t nl = in.find('\n');
  auto first = server.step(in.substr(0, nl));
  if (first.is_ok() && nl != std::string_view::npos) {
    auto final = server.step(in.substr(nl + 1));
    // A random server nonce: the fuzzer cannot have guessed it.
    if (final.is_ok() || server.done()) __builtin_trap();
  }
  return 0;
}
