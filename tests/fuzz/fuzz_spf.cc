// Fuzzes the SPF record parser and the evaluator: the input is served as the
// record of example.com (and of the names it includes or redirects to), so
// macros, limits and recursion all run on made-up records. Nothing may crash
// or loop; the DNS-lookup limit must hold.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "auth/spf.h"

namespace {

// Answers every TXT lookup with the input and every other lookup with one
// address, counting lookups.
class EchoResolver : public mail::auth::Resolver {
 public:
  explicit EchoResolver(std::string record) : record_(std::move(record)) {}
  mail::Result<std::vector<std::string>> lookup(std::string_view name, mail::auth::DnsType type) override {
    ++lookups;
    switch (type) {
      case mail::auth::DnsType::txt: return std::vector<std::string>{record_};
      case mail::auth::DnsType::a: return std::vector<std::string>{"192.0.2.1"};
      case mail::auth::DnsType::aaaa: return std::vector<std::string>{"2001:db8::1"};
      case mail::auth::DnsType::mx: return std::vector<std::string>{"10 mx.example.com"};
      case mail::auth::DnsType::ptr: return std::vector<std::string>{"mx.example.com"};
    }
    return std::vector<std::string>{};
  }
  size_t lookups = 0;

 private:
  std::string record_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)mail::auth::parse_spf_record(in);
  EchoResolver dns{std::string(in)};
  mail::auth::SpfRequest req;
  req.ip = (size & 1) ? "192.0.2.1" : "2001:db8::7";
  req.mail_from = "a-b.c@example.com";
  req.helo = "mx.example.com";
  mail::auth::SpfOptions opt;
  opt.now = 1700000000;
  (void)mail::auth::spf_check(req, dns, opt);
  // 10 mechanisms, each with at most 10 MX/PTR names and one address lookup
  // per name, plus the record and explanation lookups: a generous bound.
  if (dns.lookups > 400) __builtin_trap();
  return 0;
}
