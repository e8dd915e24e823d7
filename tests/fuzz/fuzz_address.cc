// Fuzzes the address and domain canonicaliser that every protocol parser uses.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/address.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto a = mail::parse_address(in);
  if (a.is_ok()) {
    // Canonical form is a fixed point.
    auto again = mail::parse_address(a->str());
    if (!again.is_ok() || again->str() != a->str()) __builtin_trap();
  }
  (void)mail::canonical_domain(in);
  return 0;
}
