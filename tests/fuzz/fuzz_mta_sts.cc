// Fuzzes what MTA-STS takes off the network: the HTTP answer of the policy
// host, the policy file in it, and the TXT record. Nothing may crash; a parsed
// policy must survive its cached form.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "queue/mta_sts.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)mail::queue::parse_sts_record(in);
  (void)mail::queue::parse_sts_http_response(in);
  auto p = mail::queue::parse_sts_policy(in);
  if (p) {
    (void)p->allows("mx.example.com");
    mail::queue::StsPolicy q;
    if (!mail::decode(mail::encode(*p), q) || q.mx != p->mx) __builtin_trap();
  }
  return 0;
}
