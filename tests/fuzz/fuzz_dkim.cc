// Fuzzes the DKIM tag-list parser, the key-record parser, and DKIM and ARC
// verification of a message whose signatures and body are the input, and the
// Authentication-Results reader: nothing may crash, a parsed
// tag's offsets stay inside the text, and an input the fuzzer made up never
// passes (the stub publishes a key whose private half it does not have).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "auth/arc.h"
#include "auth/auth_results.h"
#include "auth/dkim.h"
#include "auth/tag_list.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  using namespace mail::auth;

  auto tags = parse_tag_list(in);
  if (tags.is_ok()) {
    for (const auto& t : tags->tags) {
      if (t.value_start > t.end || t.end > in.size()) __builtin_trap();
      if (t.value.data() < in.data() || t.value.data() + t.value.size() > in.data() + in.size()) __builtin_trap();
    }
  }
  (void)parse_dkim_key_record(in);

  static StubResolver* dns = [] {
    auto* r = new StubResolver;
    r->add("s._domainkey.example.org", DnsType::txt,
           "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    r->add("r._domainkey.example.org", DnsType::txt,
           "v=DKIM1; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOK"
           "b2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVY"
           "LzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB");
    r->fail("t._domainkey.example.org");
    return r;
  }();
  DkimVerifyOptions options;
  options.now = 1700000000;
  MailMessage msg(in);
  for (const auto& r : dkim_verify(msg, *dns, options)) {
    if (r.status == DkimStatus::pass) __builtin_trap();
  }
  if (arc_validate(msg, *dns, options).status == ArcStatus::pass) __builtin_trap();
  // The inbound filter's test for forged Authentication-Results of ours.
  for (const auto& h : msg.headers()) {
    (void)is_our_auth_results(h, "mx.example.org");
    (void)ar_parts(header_value(h));
  }
  return 0;
}
