#include "imap/parser.h"

#include <gtest/gtest.h>

#include "imap/session.h"
#include "imap/util.h"

namespace mail::imap {
namespace {

TEST(ImapParser, TagCommandAndStrings) {
  Parser p("a1 LOGIN \"jo\\\"e\" {3}\r\npw!\r\n");
  EXPECT_EQ(*p.tag(), "a1");
  EXPECT_TRUE(p.space());
  EXPECT_EQ(*p.atom(), "LOGIN");
  EXPECT_TRUE(p.space());
  EXPECT_EQ(*p.astring(), "jo\"e");
  EXPECT_TRUE(p.space());
  EXPECT_EQ(*p.astring(), "pw!");
  EXPECT_TRUE(p.at_end());
  EXPECT_TRUE(p.ok());
}

TEST(ImapParser, LiteralShorterThanAnnouncedFails) {
  Parser p("{10}\r\nabc");
  EXPECT_FALSE(p.string());
  EXPECT_FALSE(p.ok());
}

TEST(ImapParser, Literal8AllowsNul) {
  std::string in("~{3}\r\na\0b", 9);
  Parser p(in);
  bool binary = false;
  auto s = p.literal(&binary);
  ASSERT_TRUE(s);
  EXPECT_TRUE(binary);
  EXPECT_EQ(s->size(), 3u);
  std::string plain("{3}\r\na\0b", 8);
  Parser q(plain);
  EXPECT_FALSE(q.literal());
}

TEST(ImapParser, SequenceSets) {
  Parser p("1:3,7,*:5,9");
  auto s = p.sequence_set();
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->contains(2, 10));
  EXPECT_TRUE(s->contains(7, 10));
  EXPECT_FALSE(s->contains(4, 10));
  EXPECT_TRUE(s->contains(6, 10));   // *:5 with * = 10
  EXPECT_TRUE(s->contains(10, 10));
  Parser zero("0:3");
  EXPECT_FALSE(zero.sequence_set());
  Parser saved("$");
  auto d = saved.sequence_set();
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->saved);
}

TEST(ImapParser, FlagListsAndItemNames) {
  Parser p("(\\Seen $Work \\Flagged)");
  auto f = p.flag_list();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->size(), 3u);
  EXPECT_EQ((*f)[1], "$Work");
  Parser q("BODY.PEEK[HEADER]");
  EXPECT_EQ(*q.item_name(), "BODY.PEEK");
  EXPECT_EQ(q.peek(), '[');
}

TEST(ImapParser, SkipValueLimitsNesting) {
  std::string deep(200, '(');
  Parser p(deep);
  EXPECT_FALSE(p.skip_value());
  Parser ok("(\"a\" (b c) NIL {1}\r\nx)");
  EXPECT_TRUE(ok.skip_value());
  EXPECT_TRUE(ok.at_end());
}

TEST(ImapParser, LiteralAtEnd) {
  auto m = literal_at_end("a APPEND INBOX {12+}");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->size, 12u);
  EXPECT_TRUE(m->non_sync);
  EXPECT_FALSE(m->binary);
  auto b = literal_at_end("a APPEND INBOX ~{5}");
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->binary);
  EXPECT_FALSE(literal_at_end("a NOOP"));
  EXPECT_FALSE(literal_at_end("a {x}"));
  EXPECT_FALSE(literal_at_end("a {99999999999999999999}"));
}

TEST(ImapUtil, UidSets) {
  EXPECT_EQ(uid_set_string({5, 1, 2, 3, 9, 10}), "1:3,5,9:10");
  EXPECT_EQ(uid_set_string({}), "");
}

TEST(ImapDates, InternalDateRoundTrip) {
  auto t = parse_internal_date(" 7-Feb-1994 21:52:25 -0800");
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, 760686745);
  EXPECT_EQ(format_internal_date(*t), "08-Feb-1994 05:52:25 +0000");
  EXPECT_FALSE(parse_internal_date("7-Foo-1994 21:52:25 -0800"));
  EXPECT_EQ(*parse_search_date("1-Feb-1994"), 760060800);
  EXPECT_FALSE(parse_search_date("1-Feb-94x"));
}

TEST(ParseReturnOptions, EsearchAndEsortOptions) {
  ReturnOptions r;
  Parser none("ALL");
  EXPECT_FALSE(parse_return_options(none, r));
  EXPECT_FALSE(r.given);
  Parser some("RETURN (min COUNT save) ALL");
  ReturnOptions s;
  EXPECT_FALSE(parse_return_options(some, s));
  EXPECT_TRUE(s.given && s.min && s.count && s.save);
  EXPECT_FALSE(s.all || s.max);
  Parser empty("RETURN () ALL");
  ReturnOptions e;
  EXPECT_FALSE(parse_return_options(empty, e));
  EXPECT_TRUE(e.all);  // RETURN () means ALL
  Parser unknown("RETURN (PARTIAL 1:5) ALL");
  ReturnOptions u;
  EXPECT_EQ(parse_return_options(unknown, u).value_or(""), "unknown RETURN option PARTIAL");
  Parser glued("RETURN (MINMAX) ALL");
  EXPECT_TRUE(parse_return_options(glued, u).has_value());
}

TEST(ImapParser, QresyncSelectParameter) {
  Parser a("(67890007 20050715194045000 41,43:211,214:541)");
  auto q = parse_qresync_params(a);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->uidvalidity, 67890007u);
  EXPECT_EQ(q->modseq, 20050715194045000ull);
  ASSERT_TRUE(q->known_uids);
  EXPECT_TRUE(q->known_uids->contains(300, 0));
  EXPECT_FALSE(q->match_seqs);
  Parser b("(1 2 (1:3 4,8,9))");
  q = parse_qresync_params(b);
  ASSERT_TRUE(q);
  EXPECT_FALSE(q->known_uids);
  ASSERT_TRUE(q->match_uids);
  Parser c("(1 2 5:9 (1:3 4,8,9))");
  ASSERT_TRUE(parse_qresync_params(c));
  for (const char* bad : {"(1)", "(0 5)", "1 5", "(1 5", "(1 5 $)", "(1 5 (1:3))", "(1 5 1:2 (1 2)", "(1 x)"}) {
    Parser p(bad);
    EXPECT_FALSE(parse_qresync_params(p)) << bad;
  }
}

}  // namespace
}  // namespace mail::imap
