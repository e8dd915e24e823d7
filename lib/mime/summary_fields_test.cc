#include "mime/summary_fields.h"

#include <gtest/gtest.h>

#include "mime/summary.h"

namespace mail::mime {
namespace {

const char kMessage[] =
    "From: Ann <ann@example.org>\r\nTo: bob@example.com\r\nSubject: Re: hello\r\n"
    "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <1@x>\r\nIn-Reply-To: <0@x>\r\n"
    "References: <0@x>\r\n\r\nbody\r\n";

// Each field alone comes through as stored; every other string is empty and
// the integers always come.
TEST(SummaryFields, EachFieldAlone) {
  std::string enc = summarize(kMessage);
  Summary whole = *decode_summary(enc);
  namespace f = summary_field;
  auto only = [&](uint32_t bits) {
    auto s = decode_summary(project_summary(enc, bits));
    EXPECT_TRUE(s.is_ok());
    return s.is_ok() ? *s : Summary{};
  };
  Summary e = only(f::envelope);
  EXPECT_EQ(e.envelope, whole.envelope);
  EXPECT_EQ(e.date, whole.date);
  EXPECT_EQ(e.date_offset, whole.date_offset);
  EXPECT_EQ(e.size, whole.size);
  EXPECT_TRUE(e.header.empty() && e.subject.empty() && e.bodystructure.empty() && e.root.type.empty());
  EXPECT_EQ(only(f::subject).subject, whole.subject);
  EXPECT_EQ(only(f::message_id).message_id, whole.message_id);
  EXPECT_EQ(only(f::references).references, whole.references);
  EXPECT_EQ(only(f::in_reply_to).in_reply_to, whole.in_reply_to);
  EXPECT_EQ(only(f::sort_from).sort_from, whole.sort_from);
  EXPECT_EQ(only(f::display_to).display_to, whole.display_to);
  EXPECT_EQ(only(f::preview).preview, whole.preview);
  Summary h = only(f::header);
  EXPECT_EQ(h.header, whole.header);
  EXPECT_TRUE(h.root.type.empty());  // the header copy is there: no part tree
  Summary r = only(f::root);
  EXPECT_EQ(r.root.body_begin, whole.root.body_begin);
  EXPECT_EQ(r.root.subtype, whole.root.subtype);
  EXPECT_EQ(encode(*decode_summary(project_summary(enc, f::all))), enc);
}

// A summary from before the header copy existed keeps its part tree when the
// header is asked for: the header is then cut from the message.
TEST(SummaryFields, OldSummaryWithoutHeaderKeepsRoot) {
  Summary s = parse(kMessage);
  s.header.clear();
  auto p = decode_summary(project_summary(encode(s), summary_field::header));
  ASSERT_TRUE(p.is_ok());
  EXPECT_EQ(p->root.body_begin, s.root.body_begin);
  EXPECT_TRUE(p->envelope.empty());
}

TEST(SummaryFields, BrokenInput) {
  EXPECT_EQ(project_summary("", summary_field::all), "");
  std::string enc = summarize(kMessage);
  for (size_t n = 1; n < enc.size(); n += 7) project_summary(enc.substr(0, n), summary_field::all);  // no crash
  EXPECT_EQ(project_summary("\x01\x02\xff", summary_field::all), "");  // a length past the end
}

}  // namespace
}  // namespace mail::mime
