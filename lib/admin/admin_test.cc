#include "admin/admin.h"

#include <gtest/gtest.h>

#include <set>

namespace mail::admin {
namespace {

TEST(AdminSize, ParsesSuffixesAndUnlimited) {
  EXPECT_EQ(*parse_size("0"), 0u);
  EXPECT_EQ(*parse_size("unlimited"), 0u);
  EXPECT_EQ(*parse_size("Unlimited"), 0u);
  EXPECT_EQ(*parse_size("1536"), 1536u);
  EXPECT_EQ(*parse_size("10K"), 10u << 10);
  EXPECT_EQ(*parse_size("10kb"), 10u << 10);
  EXPECT_EQ(*parse_size("500M"), 500ull << 20);
  EXPECT_EQ(*parse_size("3MiB"), 3ull << 20);
  EXPECT_EQ(*parse_size("2G"), 2ull << 30);
  EXPECT_EQ(*parse_size("1T"), 1ull << 40);
  EXPECT_EQ(*parse_size(" 7 "), 7u);
  for (const char* bad : {"", "M", "5X", "5MM", "-1", "1.5G", "lots", "99999999999999999999",
                          "20000000000000000T"})
    EXPECT_EQ(parse_size(bad).code(), Code::invalid) << bad;
}

TEST(AdminSize, Counts) {
  EXPECT_EQ(*parse_count("1000"), 1000u);
  EXPECT_EQ(*parse_count("unlimited"), 0u);
  for (const char* bad : {"", "1K", "-1", "x"}) EXPECT_EQ(parse_count(bad).code(), Code::invalid) << bad;
}

TEST(AdminSize, FormatsExactMultiples) {
  EXPECT_EQ(format_size(0), "unlimited");
  EXPECT_EQ(format_size(0, false), "0");
  EXPECT_EQ(format_size(1536), "1536");
  EXPECT_EQ(format_size(2048), "2K");
  EXPECT_EQ(format_size(500ull << 20), "500M");
  EXPECT_EQ(format_size(3ull << 30), "3G");
  EXPECT_EQ(format_size(1ull << 40), "1T");
  for (const char* text : {"7K", "500M", "3G", "2T"}) EXPECT_EQ(format_size(*parse_size(text)), text);
}

TEST(AdminRender, AlignsColumnsByCharactersNotBytes) {
  Output out{{"domain", "unicode"}, {{"xn--bcher-kva.example", "bücher.example"}, {"a.test", "a.test"}}, "[]"};
  EXPECT_EQ(render(out, Format::table),
            "DOMAIN                 UNICODE\n"
            "xn--bcher-kva.example  bücher.example\n"
            "a.test                 a.test\n");
  EXPECT_EQ(render(out, Format::json), "[]\n");
}

TEST(AdminRender, EmptyOutputs) {
  Output quiet{{}, {}, "{\"removed\": true}"};
  EXPECT_EQ(render(quiet, Format::table), "");
  EXPECT_EQ(render(quiet, Format::json), "{\"removed\": true}\n");
  Output header_only{{"source", "targets"}, {}, "[]"};
  EXPECT_EQ(render(header_only, Format::table), "SOURCE  TARGETS\n");
}

TEST(AdminFormat, Names) {
  EXPECT_EQ(*parse_format("table"), Format::table);
  EXPECT_EQ(*parse_format("json"), Format::json);
  EXPECT_EQ(parse_format("xml").code(), Code::invalid);
}

TEST(AdminTable, EveryOperationIsWellFormed) {
  std::set<std::string> names;
  std::set<std::string> group_names;
  for (const auto& g : groups()) group_names.insert(g.name);
  for (const auto& op : operations()) {
    EXPECT_EQ(op.path.size(), 2u) << op.name();
    EXPECT_TRUE(group_names.count(op.path.front())) << op.name();
    EXPECT_TRUE(names.insert(op.name()).second) << "duplicate " << op.name();
    EXPECT_FALSE(op.help.empty()) << op.name();
    EXPECT_TRUE(op.handler) << op.name();
    EXPECT_EQ(find_operation(op.name()), &op);
    bool optional_positional_seen = false;
    for (const auto& arg : op.args) {
      EXPECT_FALSE(arg.help.empty()) << op.name() << " " << arg.name;
      if (arg.positional) {
        // a required positional after an optional one could never be filled
        EXPECT_FALSE(optional_positional_seen && arg.required) << op.name();
        if (!arg.required || arg.multiple) optional_positional_seen = true;
      }
    }
  }
  for (const char* name : {"domain add", "domain remove", "domain list", "account add", "account remove",
                           "account list", "account show", "account passwd", "quota set", "quota show",
                           "alias add", "alias remove", "alias list"})
    EXPECT_TRUE(names.count(name)) << name;
  EXPECT_EQ(find_operation("domain frobnicate"), nullptr);
}

}  // namespace
}  // namespace mail::admin
