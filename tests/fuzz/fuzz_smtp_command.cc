// Fuzzes the SMTP command line parser (MAIL/RCPT paths, ESMTP parameters, xtext)
// and the address canonicaliser it feeds.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/address.h"
#include "smtp/command.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = mail::smtp::parse_command(in);
  if (r.command) {
    const auto& c = *r.command;
    if (!c.path.empty()) (void)mail::parse_address(c.path);
    // A decoded ENVID re-encodes to xtext that decodes to the same bytes.
    auto again = mail::smtp::xtext_decode(mail::smtp::xtext_encode(c.mail.envid));
    if (!again || *again != c.mail.envid) __builtin_trap();
  } else {
    if (r.error.code < 500 || r.error.code > 555) __builtin_trap();
    (void)r.error.render();
  }
  (void)mail::smtp::parse_rfc3339(in);
  return 0;
}
