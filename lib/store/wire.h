// The local store protocol's framing (docs/PROTOCOL.md): what mail-stored and
// its clients put on the Unix socket. Bodies are base/codec.h encodings of the
// structs below and of the Req/Resp structs of MAIL_STORE_OPS.
//
//   frame = [u32 BE length of the rest][u8 type][u64 BE id][u16 BE opcode] body
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/codec.h"
#include "base/status.h"
#include "store/model.h"

namespace mail::store::wire {

// Bumped only for a change old peers cannot ignore; new ops and appended fields
// need no bump (docs/PROTOCOL.md, "Versioning").
constexpr uint32_t kProtocolVersion = 1;
constexpr uint32_t kMinProtocolVersion = 1;
constexpr std::string_view kMagic = "MAILSTORE";

// Bytes after the length field that every frame has: type, id, opcode.
constexpr uint32_t kHeaderRest = 1 + 8 + 2;
// The whole fixed header, length field included.
constexpr size_t kHeaderBytes = 4 + kHeaderRest;
// Largest accepted value of the length field.
constexpr uint32_t kDefaultMaxFrameBytes = 128u << 20;

enum class FrameType : uint8_t {
  hello = 1,        // client -> server, first frame: Hello
  hello_ok = 2,     // server -> client: HelloOk
  request = 3,      // client -> server: opcode + encoded Req
  ok = 4,           // server -> client: encoded Resp of request `id`
  error = 5,        // server -> client: ErrorBody for request `id` (0: the connection)
  event = 6,        // server -> client: EventBody for subscription `id`
  subscribe = 7,    // client -> server: SubscribeBody; answered ok/error with the same id
  unsubscribe = 8,  // client -> server: ends subscription `id`; answered ok
};
bool known_frame_type(uint8_t type);
std::string_view frame_type_name(FrameType type);

struct Frame {
  FrameType type = FrameType::request;
  uint64_t id = 0;
  uint16_t opcode = 0;
  std::string body;
};

// Appends one frame to `out`.
void append_frame(std::string& out, FrameType type, uint64_t id, uint16_t opcode,
                  std::string_view body);
std::string frame_bytes(FrameType type, uint64_t id, uint16_t opcode, std::string_view body);

// ---- bodies ---------------------------------------------------------------------
struct Hello {
  std::string magic;  // kMagic
  uint32_t version = 0;
  std::string client_name;  // for the server's log ("mail-imapd", "mailctl")
  MAIL_FIELDS(magic, version, client_name)
};
struct HelloOk {
  uint32_t version = 0;  // the version both sides now speak
  std::string backend;   // the server's Store::backend_name()
  uint32_t format_version = 0;
  MAIL_FIELDS(version, backend, format_version)
};
struct ErrorBody {
  Code code = Code::internal;
  std::string message;
  MAIL_FIELDS(code, message)
};
struct SubscribeBody {
  AccountId account = 0;  // 0: all accounts
  MAIL_FIELDS(account)
};
struct EventBody {
  std::vector<ChangeEvent> events;
  MAIL_FIELDS(events)
};

// ---- opcodes ----------------------------------------------------------------------
// The method name of an opcode of MAIL_STORE_OPS; empty when unknown.
std::string_view op_name(uint16_t opcode);
inline bool known_opcode(uint16_t opcode) { return !op_name(opcode).empty(); }

// ---- decoding a byte stream ---------------------------------------------------------
// Feed it whatever the socket gives; pop complete frames. The first malformed
// frame makes it fail for good (Code::protocol with the reason): a stream that
// lost its framing cannot be resynchronised.
class FrameDecoder {
 public:
  explicit FrameDecoder(uint32_t max_frame_bytes = kDefaultMaxFrameBytes)
      : max_frame_bytes_(max_frame_bytes) {}

  void feed(std::string_view bytes);
  // A complete frame, nullopt when more bytes are needed, or the error.
  Result<std::optional<Frame>> next();

  // Bytes fed but not yet returned as frames.
  size_t buffered() const { return buf_.size() - pos_; }
  // The stream ended: fine between frames, a truncated frame otherwise.
  Status finish() const;
  const Status& status() const { return failed_; }

 private:
  uint32_t max_frame_bytes_;
  std::string buf_;
  size_t pos_ = 0;
  Status failed_;
};

}  // namespace mail::store::wire
