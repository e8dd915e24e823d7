// Parts of a stored Summary (summary.h), cut from its encoding without
// decoding it: what crosses the store socket when a command needs a few
// fields (IMAP ENVELOPE, header fields, SORT/THREAD keys) instead of ~1 KB
// per message. Header-only on purpose: the store's engine uses it without
// linking the mime library (and GMime).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/codec.h"

namespace mail::mime {

// One bit per Summary field, in its declaration order (the encoding's).
namespace summary_field {
enum : uint32_t {
  version = 1u << 0,
  size = 1u << 1,
  envelope = 1u << 2,
  bodystructure = 1u << 3,
  body = 1u << 4,
  root = 1u << 5,
  date = 1u << 6,
  sort_from = 1u << 7,
  sort_to = 1u << 8,
  sort_cc = 1u << 9,
  subject_base = 1u << 10,
  subject = 1u << 11,
  message_id = 1u << 12,
  in_reply_to = 1u << 13,
  references = 1u << 14,
  preview = 1u << 15,
  display_from = 1u << 16,
  display_to = 1u << 17,
  date_offset = 1u << 18,
  header = 1u << 19,
  all = (1u << 20) - 1,
};
}  // namespace summary_field

// The encoding of `encoded` with every string field outside `fields` empty
// (integers are always kept: they cost a byte or two). A summary without a
// header copy keeps `root` when `header` is asked, so the header can still be
// cut from the message. "" for an empty or undecodable summary.
inline std::string project_summary(std::string_view encoded, uint32_t fields) {
  // Which fields are varints (the rest are length-prefixed: strings, `root`).
  constexpr uint32_t kVarints = summary_field::version | summary_field::size | summary_field::date |
                                summary_field::date_offset;
  constexpr int kFields = 20;
  std::array<uint64_t, kFields> nums{};
  std::array<std::string_view, kFields> strs{};
  Reader r(encoded);
  int n = 0;
  for (; n < kFields && !r.at_end(); ++n) {
    bool ok = (kVarints >> n) & 1 ? r.varint(nums[n]) : r.bytes(strs[n]);
    if (!ok) return {};
  }
  if (n == 0) return {};
  if ((fields & summary_field::header) && strs[19].empty()) fields |= summary_field::root;
  size_t need = 4 * 10;  // the integers (varints of at most 10 bytes)
  for (int i = 0; i < n; ++i)
    if ((fields >> i) & 1) need += strs[i].size() + 10;
  std::string out;
  out.reserve(need + kFields);
  Writer w(out);
  for (int i = 0; i < n; ++i) {
    if ((kVarints >> i) & 1) w.varint(nums[i]);
    else w.bytes((fields >> i) & 1 ? strs[i] : std::string_view());
  }
  return out;
}

}  // namespace mail::mime
