#include "mime/summary.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace mail::mime {
namespace {

const char* kMultipart =
    "From: \"Joe Q. Public\" <john.q.public@example.com>\r\n"
    "To: Mary Smith <mary@x.test>, jdoe@example.org\r\n"
    "Subject: Re: [list] Fwd: hello (fwd)\r\n"
    "Date: Fri, 21 Nov 1997 09:55:06 -0600\r\n"
    "Message-ID: <1234@local.machine.example>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--XX\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "Hello   world\r\n"
    "second line\r\n"
    "--XX\r\n"
    "Content-Type: message/rfc822\r\n"
    "\r\n"
    "Subject: inner\r\n"
    "\r\n"
    "inner body\r\n"
    "--XX\r\n"
    "Content-Type: application/octet-stream\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "Content-Disposition: attachment; filename=\"a.bin\"\r\n"
    "\r\n"
    "aGVsbG8=\r\n"
    "--XX--\r\n"
    "epilogue\r\n";

TEST(MimeSummary, ParsesTreeAndOffsets) {
  std::string raw = kMultipart;
  Summary s = parse(raw);
  ASSERT_TRUE(s.root.is_multipart());
  ASSERT_EQ(s.root.children.size(), 3u);
  const Part* p1 = find_part(s.root, {1});
  ASSERT_NE(p1, nullptr);
  EXPECT_EQ(raw.substr(p1->body_begin, p1->body_end - p1->body_begin), "Hello   world\r\nsecond line");
  const Part* p21 = find_part(s.root, {2, 1});
  ASSERT_NE(p21, nullptr);
  EXPECT_EQ(raw.substr(p21->body_begin, p21->body_end - p21->body_begin), "inner body");
  const Part* p3 = find_part(s.root, {3});
  ASSERT_NE(p3, nullptr);
  auto dec = decode_transfer(p3->encoding, raw.substr(p3->body_begin, p3->body_end - p3->body_begin));
  ASSERT_TRUE(dec);
  EXPECT_EQ(*dec, "hello");
  EXPECT_EQ(find_part(s.root, {4}), nullptr);
  EXPECT_EQ(s.subject_base, "HELLO");
  EXPECT_EQ(s.sort_from, "john.q.public");
  EXPECT_EQ(s.preview, "Hello world second line");
  EXPECT_EQ(s.date, 880127706);
  EXPECT_NE(s.envelope.find("(\"Joe Q. Public\" NIL \"john.q.public\" \"example.com\")"), std::string::npos)
      << s.envelope;
  EXPECT_NE(s.bodystructure.find("\"mixed\" (\"boundary\" \"XX\") NIL NIL NIL)"), std::string::npos)
      << s.bodystructure;
  EXPECT_NE(s.bodystructure.find("(\"attachment\" (\"filename\" \"a.bin\"))"), std::string::npos);
}

TEST(MimeSummary, EncodeDecodeRoundTrip) {
  std::string enc = summarize(kMultipart);
  auto s = decode_summary(enc);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->root.children.size(), 3u);
  EXPECT_FALSE(decode_summary("").is_ok());
}

TEST(MimeSummary, HeaderFields) {
  std::string h = "A: 1\r\nB: 2\r\n x\r\nC: 3\r\n\r\n";
  EXPECT_EQ(header_fields(h, {"b"}, false), "B: 2\r\n x\r\n\r\n");
  EXPECT_EQ(header_fields(h, {"b"}, true), "A: 1\r\nC: 3\r\n\r\n");
}

TEST(MimeSummary, BrokenInputDoesNotCrash) {
  std::string deep;
  for (int i = 0; i < 200; ++i) deep += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) + "\r\n\r\n--b" + std::to_string(i) + "\r\n";
  parse(deep);
  parse("");
  parse("\r\n");
  parse("no header at all");
  parse("Content-Type: multipart/mixed\r\n\r\nx");
  parse("From: <<<@@@>>> ,,, ;:\r\nTo: g: a@b, ;\r\n\r\n");
}

// A ')' outside a comment once made the address tokenizer loop for ever (found by
// fuzz_spam_tokenizer); NUL bytes are ordinary characters.
TEST(MimeSummary, StrayParenthesisAndNulInAddresses) {
  Summary s = parse(std::string("From: \"Pay\" < a)b@example.com>\r\nTo: x)\0y@example.org\r\n\r\nbody\r\n", 62));
  EXPECT_NE(s.envelope.find("\"example.com\""), std::string::npos) << s.envelope;
}

// Every sample message we can find parses, and its part offsets stay in range.
void check_tree(const Part& p, uint64_t size) {
  EXPECT_LE(p.header_begin, p.body_begin);
  EXPECT_LE(p.body_begin, p.body_end);
  EXPECT_LE(p.body_end, size);
  for (const auto& c : p.children) check_tree(c, size);
}

TEST(MimeSummary, SampleMessages) {
  int n = 0;
  for (const char* dir : {"/usr/lib/python3.11/test/test_email/data", "/work/shared/testsuites/imaptest/tests"}) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) continue;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      std::ifstream f(e.path(), std::ios::binary);
      std::stringstream ss;
      ss << f.rdbuf();
      std::string raw = ss.str();
      Summary s = parse(raw);
      check_tree(s.root, raw.size());
      auto d = decode_summary(encode(s));
      EXPECT_TRUE(d.is_ok());
      ++n;
    }
  }
  if (n == 0) GTEST_SKIP() << "no sample messages on this machine";
}

// RFC 5256 2.1, step by step.
TEST(BaseSubject, Rfc5256Rules) {
  bool reply = false;
  EXPECT_EQ(base_subject("hello", &reply), "HELLO");
  EXPECT_FALSE(reply);
  EXPECT_EQ(base_subject("Re: hello", &reply), "HELLO");
  EXPECT_TRUE(reply);
  EXPECT_EQ(base_subject("  RE:  re : Fwd:FW: hello \t world  "), "HELLO WORLD");  // (1)(3)(5)
  EXPECT_EQ(base_subject("hello (fwd) (FWD)", &reply), "HELLO");                  // (2)
  EXPECT_TRUE(reply);
  EXPECT_EQ(base_subject("[list] Re: hello"), "HELLO");       // *subj-blob subj-refwd
  EXPECT_EQ(base_subject("Re [list]: hello"), "HELLO");       // a blob inside subj-refwd
  EXPECT_EQ(base_subject("[list] [other] Re: hello"), "HELLO");
  EXPECT_EQ(base_subject("[list] hello", &reply), "HELLO");   // (4)
  EXPECT_FALSE(reply);
  EXPECT_EQ(base_subject("[list]"), "[LIST]");                // (4) leaves nothing: kept
  EXPECT_EQ(base_subject("[list]   "), "[LIST]");
  EXPECT_EQ(base_subject("[Fwd: Re: hello]", &reply), "HELLO");  // (6), then again from (2)
  EXPECT_TRUE(reply);
  EXPECT_EQ(base_subject("[fwd: [list] hello (fwd)]"), "HELLO");
  EXPECT_EQ(base_subject("Ref: hello"), "REF: HELLO");        // not "re" + ":"
  EXPECT_EQ(base_subject("Fwdx: hello"), "FWDX: HELLO");
  EXPECT_EQ(base_subject("[a[b] hello"), "[A[B] HELLO");      // '[' is no BLOBCHAR
  EXPECT_EQ(base_subject("Re:"), "");
  EXPECT_EQ(base_subject(""), "");
  EXPECT_EQ(base_subject("caf\xc3\xa9"), "CAF\xc3\xa9");  // only ASCII is case-mapped
}

}  // namespace
}  // namespace mail::mime
