#include "base/codec.h"

#include <gtest/gtest.h>

#include <optional>

namespace {
struct Inner {
  uint32_t a = 0;
  std::string b;
  MAIL_FIELDS(a, b)
};
struct V1 {
  uint64_t x = 0;
  std::vector<Inner> items;
  MAIL_FIELDS(x, items)
};
// V2 appends a field: V1 readers skip it, V2 readers of V1 data get the default.
struct V2 {
  uint64_t x = 0;
  std::vector<Inner> items;
  std::optional<int64_t> extra;
  MAIL_FIELDS(x, items, extra)
};
}  // namespace

TEST(Codec, RoundTrip) {
  V2 v{7, {{1, "one"}, {2, "two"}}, -42};
  V2 back;
  ASSERT_TRUE(mail::decode(mail::encode(v), back));
  EXPECT_EQ(back.x, 7u);
  ASSERT_EQ(back.items.size(), 2u);
  EXPECT_EQ(back.items[1].b, "two");
  EXPECT_EQ(back.extra, -42);
}

TEST(Codec, AppendedFieldsAreCompatibleBothWays) {
  V2 v2{1, {{3, "x"}}, 5};
  V1 old;
  ASSERT_TRUE(mail::decode(mail::encode(v2), old));
  EXPECT_EQ(old.items[0].b, "x");
  V1 v1{2, {}};
  V2 now;
  now.extra = 9;
  ASSERT_TRUE(mail::decode(mail::encode(v1), now));
  EXPECT_EQ(now.x, 2u);
  EXPECT_EQ(now.extra, 9);  // untouched default
}

TEST(Codec, TruncatedOrLyingInputFailsCleanly) {
  V2 v{300, {{1, std::string(100, 'z')}}, 1};
  std::string s = mail::encode(v);
  for (size_t n = 1; n < s.size(); ++n) {
    V2 out;
    (void)mail::decode(std::string_view(s).substr(0, n), out);  // must not crash
  }
  // A count of 2^40 elements in a 3-byte input is rejected, not allocated.
  std::string lie;
  mail::Writer w(lie);
  w.varint(1);
  w.varint(1ull << 40);
  V1 out;
  EXPECT_FALSE(mail::decode(lie, out));
}

TEST(Codec, BigEndianKeysSortNumerically) {
  std::string a, b;
  mail::put_be64(a, 255);
  mail::put_be64(b, 256);
  EXPECT_LT(a, b);
  EXPECT_EQ(mail::get_be64(b), 256u);
}
