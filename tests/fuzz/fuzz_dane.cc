// Fuzzes what DANE and TLS reporting take off the network: TLSA rdata and the
// _smtp._tls TXT record; and the TLS-RPT counts record read back from the
// store. Nothing may crash; a parsed TLSA record keeps its data.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "admin/tls_report.h"
#include "queue/dane.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto t = mail::queue::parse_tlsa(in)) {
    (void)mail::queue::usable_tlsa(*t);
    if (t->data.size() + 3 != in.size()) __builtin_trap();
  }
  (void)mail::admin::parse_tlsrpt_record(in);
  mail::admin::TlsRptCounts counts;
  if (mail::decode(in, counts)) (void)mail::admin::tls_report_json({}, "example.com", counts);
  return 0;
}
