// Fuzzes what mail-queued reads from remote SMTP servers: replies (multi-line,
// malformed, split anywhere) and the EHLO extension list.
#include <cstddef>
#include <cstdint>
#include <string>

#include "queue/smtp_client.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  for (int i = 0; i < 64; ++i) {
    auto r = mail::queue::take_reply(in);
    if (!r || !*r) break;
    const mail::queue::SmtpReply& reply = **r;
    if (reply.code < 200 || reply.code > 599) __builtin_trap();
    std::string status = reply.status();
    // an enhanced code never contradicts the reply's class (3xx replies have none)
    if (reply.code / 100 != 3 && status[0] != static_cast<char>('0' + reply.code / 100)) __builtin_trap();
    (void)reply.str();
    (void)mail::queue::parse_ehlo(reply);
  }
  return 0;
}
