// Fuzzes the streaming mbox reader (every variant) and checks that what it
// reads survives the mboxrd writer: writing a message and reading it back gives
// the same bytes (in CRLF form), flags, keywords and date.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "transfer/mbox.h"
#include "transfer/message.h"

using namespace mail::transfer;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  auto variant = static_cast<MboxVariant>(data[0] % 5);
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  // A small read size and message limit reach the buffer-refill and oversize paths.
  size_t chunk = 1 + data[0] % 64;
  std::string_view rest = in;
  ReadFn read = [&rest, chunk](char* buf, size_t cap) -> mail::Result<size_t> {
    size_t n = std::min({cap, chunk, rest.size()});
    std::copy(rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(n), buf);
    rest.remove_prefix(n);
    return n;
  };
  MboxReader reader(read, "fuzz", {variant, 4096});
  for (int i = 0; i < 10000; ++i) {
    auto m = reader.next();
    if (!m.is_ok() || !*m) break;
    const SourceMessage& msg = **m;
    if (msg.content.size() > in.size()) __builtin_trap();
    (void)reader.take_warnings();
    // Round trip through the writer, for messages the writer can keep exactly:
    // a header block of fields and no CR of their own.
    std::string stored = to_crlf(msg.content);
    if (!looks_like_message(msg.content) || msg.content.find('\r') != std::string::npos ||
        !msg.content.ends_with('\n'))
      continue;
    std::string entry = mbox_entry(stored, msg.internal_date, msg.flags, msg.keywords);
    MboxReader again(memory_reader(entry), "again");
    auto back = again.next();
    if (!back.is_ok() || !*back) __builtin_trap();
    const SourceMessage& b = **back;
    if (to_crlf(b.content) != stored || b.flags != msg.flags || b.keywords != msg.keywords ||
        b.internal_date != msg.internal_date)
      __builtin_trap();
    (void)mail::transfer::date_from_headers(stored);
  }
  return 0;
}
