#include "store/wire.h"

#include <gtest/gtest.h>

#include "store/ops.h"

namespace mail::store::wire {
namespace {

TEST(Wire, FrameLayoutIsBigEndianHeaderThenBody) {
  std::string f = frame_bytes(FrameType::request, 0x0102030405060708ull, 0x0a0b, "xyz");
  ASSERT_EQ(f.size(), kHeaderBytes + 3);
  EXPECT_EQ(f.substr(0, 4), std::string("\0\0\0\x0e", 4));  // 11 + 3
  EXPECT_EQ(f[4], static_cast<char>(FrameType::request));
  EXPECT_EQ(f.substr(5, 8), "\x01\x02\x03\x04\x05\x06\x07\x08");
  EXPECT_EQ(f.substr(13, 2), "\x0a\x0b");
  EXPECT_EQ(f.substr(15), "xyz");
}

TEST(Wire, DecoderReassemblesFramesFedByteByByte) {
  std::string stream;
  append_frame(stream, FrameType::hello, 0, 0, encode(Hello{std::string(kMagic), 1, "test"}));
  append_frame(stream, FrameType::request, 7, 40, std::string(1000, 'a'));
  append_frame(stream, FrameType::ok, 8, 0, "");
  FrameDecoder d;
  std::vector<Frame> frames;
  for (char c : stream) {
    d.feed(std::string_view(&c, 1));
    for (;;) {
      auto r = d.next();
      ASSERT_TRUE(r.is_ok()) << r.status().to_string();
      if (!r->has_value()) break;
      frames.push_back(std::move(**r));
    }
  }
  ASSERT_EQ(frames.size(), 3u);
  Hello h;
  ASSERT_TRUE(decode(frames[0].body, h));
  EXPECT_EQ(h.magic, kMagic);
  EXPECT_EQ(h.client_name, "test");
  EXPECT_EQ(frames[1].type, FrameType::request);
  EXPECT_EQ(frames[1].id, 7u);
  EXPECT_EQ(frames[1].opcode, 40);
  EXPECT_EQ(frames[1].body, std::string(1000, 'a'));
  EXPECT_EQ(frames[2].type, FrameType::ok);
  EXPECT_TRUE(frames[2].body.empty());
  EXPECT_EQ(d.buffered(), 0u);
  EXPECT_TRUE(d.finish().is_ok());
}

TEST(Wire, DecoderReturnsManyFramesFromOneFeed) {
  std::string stream;
  for (uint64_t i = 1; i <= 100; ++i) append_frame(stream, FrameType::request, i, 70, "");
  FrameDecoder d;
  d.feed(stream);
  uint64_t expect = 1;
  for (;;) {
    auto r = d.next();
    ASSERT_TRUE(r.is_ok());
    if (!r->has_value()) break;
    EXPECT_EQ((*r)->id, expect++);
  }
  EXPECT_EQ(expect, 101u);
}

Code first_error(std::string_view bytes, uint32_t max = kDefaultMaxFrameBytes) {
  FrameDecoder d(max);
  d.feed(bytes);
  for (;;) {
    auto r = d.next();
    if (!r.is_ok()) return r.code();
    if (!r->has_value()) return Code::ok;
  }
}

TEST(Wire, DecoderRejectsOversizedFrames) {
  std::string f = frame_bytes(FrameType::request, 1, 1, std::string(100, 'x'));
  EXPECT_EQ(first_error(f, 200), Code::ok);
  EXPECT_EQ(first_error(f, 50), Code::protocol);
  // Only the header is needed to refuse: the body never has to arrive.
  FrameDecoder d(1024);
  d.feed(std::string("\x7f\xff\xff\xff", 4));
  auto r = d.next();
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("limit"), std::string::npos);
}

TEST(Wire, DecoderRejectsShortHeaderAndUnknownType) {
  EXPECT_EQ(first_error(std::string("\0\0\0\x05\x03\0\0\0\0", 9)), Code::protocol);
  std::string f = frame_bytes(FrameType::request, 1, 1, "");
  f[4] = 99;
  EXPECT_EQ(first_error(f), Code::protocol);
  f[4] = 0;
  EXPECT_EQ(first_error(f), Code::protocol);
  // Text where a frame should be ("GET / HTTP/1.1") is refused, not waited for.
  EXPECT_EQ(first_error("GET / HTTP/1.1\r\n"), Code::protocol);
}

TEST(Wire, ErrorIsSticky) {
  FrameDecoder d;
  d.feed(std::string("\0\0\0\x01", 4));
  EXPECT_FALSE(d.next().is_ok());
  d.feed(frame_bytes(FrameType::ok, 1, 0, ""));
  EXPECT_FALSE(d.next().is_ok());
  EXPECT_EQ(d.status().code(), Code::protocol);
}

TEST(Wire, FinishReportsTruncatedFrame) {
  std::string f = frame_bytes(FrameType::request, 1, 1, "body");
  FrameDecoder d;
  d.feed(std::string_view(f).substr(0, f.size() - 1));
  auto r = d.next();
  ASSERT_TRUE(r.is_ok());
  EXPECT_FALSE(r->has_value());
  EXPECT_EQ(d.finish().code(), Code::protocol);
  d.feed(std::string_view(f).substr(f.size() - 1));
  ASSERT_TRUE(d.next().is_ok());
  EXPECT_TRUE(d.finish().is_ok());
}

TEST(Wire, OpNamesComeFromTheOpTable) {
  EXPECT_EQ(op_name(40), "deliver");
  EXPECT_EQ(op_name(70), "stats");
  EXPECT_TRUE(known_opcode(1));
  EXPECT_FALSE(known_opcode(0));
  EXPECT_FALSE(known_opcode(9999));
}

TEST(Wire, BodiesRoundTrip) {
  ErrorBody e{Code::quota, "over quota"};
  ErrorBody e2;
  ASSERT_TRUE(decode(encode(e), e2));
  EXPECT_EQ(e2.code, Code::quota);
  EXPECT_EQ(e2.message, "over quota");
  EventBody ev;
  ev.events.push_back(ChangeEvent{3, 4, ChangeKind::flags, 9, {1, 2}});
  EventBody ev2;
  ASSERT_TRUE(decode(encode(ev), ev2));
  ASSERT_EQ(ev2.events.size(), 1u);
  EXPECT_EQ(ev2.events[0].uids, (std::vector<Uid>{1, 2}));
}

}  // namespace
}  // namespace mail::store::wire
