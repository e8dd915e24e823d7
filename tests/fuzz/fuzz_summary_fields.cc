// Fuzzes mime::project_summary, which mail-stored runs on stored summary
// records for summary_fields (op 95): any bytes and any field mask run
// without a crash, and the projection of a valid summary is a valid summary
// with the asked fields as they were (a damaged one may stay damaged: IMAP
// then parses the message).
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
  auto whole = mail::mime::decode_summary(encoded);
  if (!whole.is_ok()) return 0;
  auto part = mail::mime::decode_summary(out);
  if (!part.is_ok()) std::abort();
  namespace f = mail::mime::summary_field;
  if ((fields & f::envelope) && part->envelope != whole->envelope) std::abort();
  if ((fields & f::header) && part->header != whole->header) std::abort();
  if (part->date != whole->date || part->date_offset != whole->date_offset) std::abort();
  return 0;
}
