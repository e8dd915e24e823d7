#include "base/base64.h"

#include <gtest/gtest.h>

#include <random>

namespace mail {
namespace {

TEST(Base64, PublicDecoderAgreesWithTheConstantTimeOne) {
  std::mt19937 rng(8);
  // Round trips of every length up to 64.
  for (size_t len = 0; len <= 64; ++len) {
    std::string data(len, '\0');
    for (char& c : data) c = static_cast<char>(rng());
    auto d = base64_decode_public(base64_encode(data));
    ASSERT_TRUE(d.is_ok()) << len;
    EXPECT_EQ(*d, data);
  }
  // Random texts of the alphabet, '=' and a few others, valid or not: the
  // same answer from both.
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const std::string extra = "==== \t\r\n-_.\x80\xff";
  for (int i = 0; i < 100000; ++i) {
    std::string text(rng() % 13, '\0');
    for (char& c : text) c = rng() % 8 ? alphabet[rng() % 64] : extra[rng() % extra.size()];
    if (rng() % 2 && !text.empty()) text.back() = '=';
    if (rng() % 4 == 0 && text.size() > 1) text[text.size() - 2] = '=';
    auto want = base64_decode(text);
    auto got = base64_decode_public(text);
    ASSERT_EQ(got.is_ok(), want.is_ok()) << text;
    if (want.is_ok()) {
      EXPECT_EQ(*got, *want) << text;
    }
  }
}

TEST(Base64, PublicDecoderIsStrict) {
  EXPECT_EQ(*base64_decode_public(""), "");
  EXPECT_EQ(*base64_decode_public("TWFu"), "Man");
  EXPECT_EQ(*base64_decode_public("TWE="), "Ma");
  EXPECT_EQ(*base64_decode_public("TQ=="), "M");
  for (const char* bad : {"TWF", "TW=u", "T===", "====", "TR==", "TWF=", "TWE=TWFu", "TW Fu", "TWFu\r\n"})
    EXPECT_EQ(base64_decode_public(bad).code(), Code::invalid) << bad;
}

}  // namespace
}  // namespace mail
