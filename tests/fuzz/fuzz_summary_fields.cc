// Fuzzes mime::project_summary, which mail-stored runs on stored summary
// records for summary_fields (op 95): any bytes and any field mask must give
// "" or an encoding that decodes as a Summary.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "mime/summary.h"
#include "mime/summary_fields.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  uint32_t fields = static_cast<uint32_t>(data[0]) | static_cast<uint32_t>(data[1]) << 8 |
                    static_cast<uint32_t>(data[2]) << 16 | static_cast<uint32_t>(data[3]) << 24;
  std::string_view encoded(reinterpret_cast<const char*>(data + 4), size - 4);
  std::string out = mail::mime::project_summary(encoded, fields);
  if (!out.empty() && !mail::mime::decode_summary(out).is_ok()) std::abort();
  return 0;
}
