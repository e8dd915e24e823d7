// Fuzzes what mail-stored reads from a socket: the frame decoder, fed in
// pieces as a socket would deliver them, and the body decoders of every frame
// type and of every op's request.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "store/ops.h"
#include "store/wire.h"

namespace {

using namespace mail::store;

void decode_body(const wire::Frame& f) {
  switch (f.type) {
    case wire::FrameType::hello: {
      wire::Hello h;
      (void)mail::decode(f.body, h);
      return;
    }
    case wire::FrameType::hello_ok: {
      wire::HelloOk h;
      (void)mail::decode(f.body, h);
      return;
    }
    case wire::FrameType::error: {
      wire::ErrorBody e;
      (void)mail::decode(f.body, e);
      return;
    }
    case wire::FrameType::event: {
      wire::EventBody e;
      (void)mail::decode(f.body, e);
      return;
    }
    case wire::FrameType::subscribe: {
      wire::SubscribeBody s;
      (void)mail::decode(f.body, s);
      return;
    }
    default:
      break;
  }
  switch (f.opcode) {
#define MAIL_FUZZ_OP(code, name, Req, Resp) \
  case code: {                              \
    Req req;                                \
    if (mail::decode(f.body, req)) {        \
      /* What decodes re-encodes and decodes to the same bytes. */ \
      std::string again = mail::encode(req);                         \
      Req back;                                                      \
      if (!mail::decode(again, back) || mail::encode(back) != again) __builtin_trap(); \
    }                                       \
    Resp resp;                              \
    (void)mail::decode(f.body, resp);       \
    return;                                 \
  }
    MAIL_STORE_OPS(MAIL_FUZZ_OP)
#undef MAIL_FUZZ_OP
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  // The first byte picks the piece size, so frames split at every boundary.
  size_t piece = in.empty() ? 1 : (static_cast<uint8_t>(in[0]) % 64) + 1;
  if (!in.empty()) in.remove_prefix(1);
  wire::FrameDecoder decoder(1u << 20);
  size_t consumed = 0;
  for (size_t pos = 0; pos < in.size(); pos += piece) {
    decoder.feed(in.substr(pos, piece));
    for (;;) {
      auto f = decoder.next();
      if (!f.is_ok()) return 0;
      if (!f->has_value()) break;
      const wire::Frame& frame = **f;
      // A decoded frame re-encodes to exactly the bytes it came from.
      std::string bytes = wire::frame_bytes(frame.type, frame.id, frame.opcode, frame.body);
      if (in.substr(consumed, bytes.size()) != bytes) __builtin_trap();
      consumed += bytes.size();
      decode_body(frame);
    }
  }
  if (decoder.buffered() != in.size() - consumed) __builtin_trap();
  return 0;
}
