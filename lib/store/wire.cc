#include "store/wire.h"

#include <fmt/format.h>

#include "store/ops.h"

namespace mail::store::wire {

bool known_frame_type(uint8_t type) {
  return type >= static_cast<uint8_t>(FrameType::hello) &&
         type <= static_cast<uint8_t>(FrameType::unsubscribe);
}

std::string_view frame_type_name(FrameType type) {
  switch (type) {
    case FrameType::hello: return "hello";
    case FrameType::hello_ok: return "hello_ok";
    case FrameType::request: return "request";
    case FrameType::ok: return "ok";
    case FrameType::error: return "error";
    case FrameType::event: return "event";
    case FrameType::subscribe: return "subscribe";
    case FrameType::unsubscribe: return "unsubscribe";
  }
  return "unknown";
}

void append_frame(std::string& out, FrameType type, uint64_t id, uint16_t opcode,
                  std::string_view body) {
  out.reserve(out.size() + kHeaderBytes + body.size());
  put_be32(out, static_cast<uint32_t>(kHeaderRest + body.size()));
  out.push_back(static_cast<char>(type));
  put_be64(out, id);
  out.push_back(static_cast<char>(opcode >> 8));
  out.push_back(static_cast<char>(opcode & 0xff));
  out.append(body);
}

std::string frame_bytes(FrameType type, uint64_t id, uint16_t opcode, std::string_view body) {
  std::string out;
  append_frame(out, type, id, opcode, body);
  return out;
}

std::string_view op_name(uint16_t opcode) {
  switch (opcode) {
#define MAIL_OP_NAME(code, name, Req, Resp) \
  case code: return #name;
    MAIL_STORE_OPS(MAIL_OP_NAME)
#undef MAIL_OP_NAME
  }
  return {};
}

void FrameDecoder::feed(std::string_view bytes) {
  if (!failed_.is_ok()) return;
  // Drop consumed bytes before growing, so the buffer holds at most one frame
  // plus whatever arrived behind it.
  if (pos_ > 0 && (pos_ >= buf_.size() / 2 || pos_ > (1u << 20))) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes);
}

Result<std::optional<Frame>> FrameDecoder::next() {
  if (!failed_.is_ok()) return failed_;
  std::string_view in(buf_);
  in.remove_prefix(pos_);
  if (in.size() < 4) return std::optional<Frame>();
  uint32_t length = get_be32(in);
  if (length < kHeaderRest) {
    failed_ = error(Code::protocol, fmt::format("short header: frame length {} < {}", length, kHeaderRest));
    return failed_;
  }
  if (length > max_frame_bytes_) {
    failed_ = error(Code::protocol,
                    fmt::format("frame of {} bytes over the limit of {}", length, max_frame_bytes_));
    return failed_;
  }
  // The type is checked as soon as it arrives: garbage fails at once rather
  // than after the peer sent however many bytes its "length" claims.
  if (in.size() >= 5 && !known_frame_type(static_cast<uint8_t>(in[4]))) {
    failed_ = error(Code::protocol,
                    fmt::format("unknown frame type {}", static_cast<uint8_t>(in[4])));
    return failed_;
  }
  if (in.size() - 4 < length) return std::optional<Frame>();
  Frame f;
  f.type = static_cast<FrameType>(in[4]);
  f.id = get_be64(in.substr(5));
  f.opcode = static_cast<uint16_t>((static_cast<uint8_t>(in[13]) << 8) | static_cast<uint8_t>(in[14]));
  f.body.assign(in.substr(kHeaderBytes, length - kHeaderRest));
  pos_ += 4 + static_cast<size_t>(length);
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  return std::optional<Frame>(std::move(f));
}

Status FrameDecoder::finish() const {
  if (!failed_.is_ok()) return failed_;
  size_t left = buf_.size() - pos_;
  if (left == 0) return Status::ok();
  return error(Code::protocol, fmt::format("truncated frame: stream ended {} bytes into a frame", left));
}

}  // namespace mail::store::wire
