#include "auth/dkim.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>

#include "auth/canon.h"
#include "auth/tag_list.h"

namespace mail::auth {
namespace {

// ---- tag lists ------------------------------------------------------------------

TEST(TagList, ParsesWithFoldingAndTrailingSemicolon) {
  auto t = parse_tag_list(" v=1; a = rsa-sha256 ;\r\n\th=from : to;");
  ASSERT_TRUE(t) << t.status().message();
  ASSERT_EQ(t->tags.size(), 3u);
  EXPECT_EQ(t->find("a")->value, "rsa-sha256");
  EXPECT_EQ(t->find("h")->value, "from : to");
  EXPECT_EQ(t->find("z"), nullptr);
}

TEST(TagList, RejectsMalformed) {
  EXPECT_FALSE(parse_tag_list("v=1; v=2"));        // duplicate
  EXPECT_FALSE(parse_tag_list("1v=1"));            // name must start with a letter
  EXPECT_FALSE(parse_tag_list("v"));               // no '='
  EXPECT_FALSE(parse_tag_list("v=1;;a=b"));        // empty tag-spec
  EXPECT_FALSE(parse_tag_list("v=\x80"));          // 8-bit value
  EXPECT_TRUE(parse_tag_list(""));
  EXPECT_TRUE(parse_tag_list("v="));               // empty value is allowed
}

TEST(TagList, OffsetsCoverTheValueToTheSeparator) {
  std::string_view text = "a=1; b= abc def ;c=2";
  auto t = parse_tag_list(text);
  ASSERT_TRUE(t);
  const Tag* b = t->find("b");
  EXPECT_EQ(text.substr(b->value_start, b->end - b->value_start), " abc def ");
}

// Values are scanned sixteen bytes at a time: every byte value, at every
// place of a long value, is taken or refused (or ends it, ';') as RFC 6376
// 3.2 says, and whitespace is stripped wherever it falls.
TEST(TagList, EveryByteAtEveryPlaceOfALongValue) {
  for (int b = 0; b < 256; ++b) {
    char c = static_cast<char>(b);
    bool ws = c == ' ' || c == '\t' || c == '\r' || c == '\n';
    bool allowed = ws || (b >= 0x21 && b <= 0x7e && c != ';');
    for (size_t at = 0; at < 40; ++at) {
      std::string value(40, 'x');
      value[at] = c;
      std::string text = "b=" + value;
      auto t = parse_tag_list(text);
      if (c == ';') {
        // The value ends there; what follows ("x...") is not a tag.
        EXPECT_EQ(static_cast<bool>(t), at == value.size() - 1) << at;
        if (t) EXPECT_EQ(t->find("b")->value, value.substr(0, at));
        continue;
      }
      ASSERT_EQ(static_cast<bool>(t), allowed) << b << " at " << at;
      if (!t) continue;
      EXPECT_EQ(t->find("b")->end, 2 + value.size());
      std::string stripped = strip_whitespace(value);
      EXPECT_EQ(stripped, ws ? std::string(39, 'x') : value) << b << " at " << at;
    }
  }
}

// ---- canonicalization (RFC 6376 3.4.5) ------------------------------------------------

TEST(Canon, Rfc6376Example) {
  MailMessage m("A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n");
  ASSERT_EQ(m.headers().size(), 2u);
  std::string h;
  for (const auto& f : m.headers()) canon_header(f, Canon::relaxed, h);
  EXPECT_EQ(h, "a:X\r\nb:Y Z\r\n");
  std::string b;
  canon_body(m.body(), Canon::relaxed, b);
  EXPECT_EQ(b, " C\r\nD E\r\n");
  h.clear();
  for (const auto& f : m.headers()) canon_header(f, Canon::simple, h);
  EXPECT_EQ(h, "A: X\r\nB : Y\t\r\n\tZ  \r\n");
  b.clear();
  canon_body(m.body(), Canon::simple, b);
  EXPECT_EQ(b, " C \r\nD \t E\r\n");
}

TEST(Canon, EmptyBodies) {
  std::string b;
  canon_body("", Canon::simple, b);
  EXPECT_EQ(b, "\r\n");
  b.clear();
  canon_body("", Canon::relaxed, b);
  EXPECT_EQ(b, "");
  b.clear();
  canon_body("\r\n \r\n\r\n", Canon::relaxed, b);
  EXPECT_EQ(b, "");
  b.clear();
  canon_body("a\r\n\r\n \t\r\nb \r\n\r\n", Canon::relaxed, b);
  EXPECT_EQ(b, "a\r\n\r\n\r\nb\r\n");  // inner blank lines stay
  b.clear();
  canon_body("a\rb\nc\r\n", Canon::relaxed, b);
  EXPECT_EQ(b, "a\rb\nc\r\n");  // a lone CR or LF is content
  b.clear();
  canon_body("no newline", Canon::relaxed, b);
  EXPECT_EQ(b, "no newline\r\n");
  b.clear();
  canon_body("no newline", Canon::simple, b);
  EXPECT_EQ(b, "no newline\r\n");
}

// RFC 6376 3.4.4 read literally, one rule after the other: what the fast
// canon_body (sixteen and eight bytes at a time) must give on any input.
std::string relaxed_body_by_the_rules(std::string_view body) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t eol = body.find("\r\n", pos);
    lines.emplace_back(body.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos));
    pos = eol == std::string_view::npos ? body.size() : eol + 2;
  }
  std::string out;
  for (auto& line : lines) {
    std::string l;
    for (char c : line) {
      bool wsp = c == ' ' || c == '\t';
      if (wsp && !l.empty() && l.back() == ' ') continue;
      l.push_back(wsp ? ' ' : c);
    }
    if (!l.empty() && l.back() == ' ') l.pop_back();
    line = l;
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  for (const auto& line : lines) out += line + "\r\n";
  return out;
}

// A small seeded generator: the random-input tests are the same on every run.
struct Lcg {
  uint64_t seed;
  size_t operator()() {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<size_t>(seed >> 33);
  }
};

TEST(Canon, RelaxedBodyMatchesTheRulesOnRandomInput) {
  const char alphabet[] = {'a', 'b', ' ', '\t', '\r', '\n', 'x', '!', '\x08', '\xe9'};
  Lcg next{12345};
  for (int i = 0; i < 5000; ++i) {
    std::string body(next() % 200, ' ');  // lines longer than the 16-byte blocks too
    size_t spread = 2 + next() % (sizeof alphabet - 1);  // 2..all kinds of bytes: some inputs with few
    for (char& c : body) c = alphabet[next() % spread];
    std::string fast = "prefix";
    canon_body(body, Canon::relaxed, fast);
    ASSERT_EQ(fast, "prefix" + relaxed_body_by_the_rules(body)) << testing::PrintToString(body);
  }
}

// Bodies longer than canon_body_pieces' 16 KiB buffer: lines and WSP runs
// (and runs of blank lines) cut by its flushes at every kind of place.
TEST(Canon, RelaxedBodyInPiecesMatchesTheRulesOnLongInput) {
  Lcg next{4242};
  for (int i = 0; i < 300; ++i) {
    std::string body;
    size_t size = 16000 + next() % 50000;
    while (body.size() < size) {
      switch (next() % 6) {
        case 0: body.append(next() % 40, ' '); break;
        case 1: body.append(next() % 3 ? "\r\n" : "\t \r\n"); break;
        case 2: body.append(next() % 30000, 'x'); break;  // lines longer than the buffer
        case 3: for (int k = next() % 200; k > 0; --k) body.append(next() % 2 ? "\r\n" : " \r\n"); break;
        default: body.append(next() % 90, next() % 2 ? 'a' : '\t'); break;
      }
    }
    std::string whole, joined;
    canon_body(body, Canon::relaxed, whole);
    size_t biggest = 0;
    canon_body_pieces(body, Canon::relaxed, [&joined, &biggest](std::string_view piece) {
      joined.append(piece);
      biggest = std::max(biggest, piece.size());
    });
    ASSERT_EQ(whole, relaxed_body_by_the_rules(body)) << i;
    ASSERT_EQ(joined, whole);
    ASSERT_LE(biggest, 16384u);
  }
}

// RFC 6376 3.4.2 read literally: name lowered, its trailing WSP gone; the
// value unfolded (every CR and LF gone), WSP runs as one SP, none at its ends.
std::string relaxed_header_by_the_rules(std::string_view raw) {
  size_t colon = raw.find(':');
  std::string name(raw.substr(0, colon)), value(raw.substr(colon + 1)), out;
  while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.pop_back();
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string unfolded;
  for (char c : value) {
    if (c != '\r' && c != '\n') unfolded.push_back(c);
  }
  std::string v;
  for (char c : unfolded) {
    bool wsp = c == ' ' || c == '\t';
    if (wsp && (v.empty() || v.back() == ' ')) continue;
    v.push_back(wsp ? ' ' : c);
  }
  if (!v.empty() && v.back() == ' ') v.pop_back();
  return name + ":" + v + "\r\n";
}

TEST(Canon, RelaxedHeaderMatchesTheRulesOnRandomInput) {
  const char alphabet[] = {'a', ' ', '\t', '\r', '\n', 'x', ':', ';', '\xe9', 'B'};
  Lcg next{99};
  for (int i = 0; i < 5000; ++i) {
    std::string raw = next() % 2 ? "Subject" : "X-Some-Name \t";
    raw += ":";
    size_t len = next() % 300;
    size_t spread = 2 + next() % (sizeof alphabet - 1);
    for (size_t k = 0; k < len; ++k) raw.push_back(alphabet[next() % spread]);
    if (next() % 2) raw += "\r\n";
    std::string_view name(raw.data(), raw.find(':'));
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    std::string got = "prefix";
    canon_header(HeaderField{name, raw}, Canon::relaxed, got);
    ASSERT_EQ(got, "prefix" + relaxed_header_by_the_rules(raw)) << testing::PrintToString(raw);
  }
}

TEST(Canon, BareLfFoundAnywhereOnRandomInput) {
  const char alphabet[] = {'a', '\r', '\n', ' '};
  Lcg next{777};
  for (int i = 0; i < 5000; ++i) {
    std::string text(next() % 100, 'a');
    for (char& c : text) c = next() % 6 ? alphabet[next() % 2 ? 0 : 1 + next() % 3] : '\n';
    std::string want;
    bool bare = false;
    for (size_t k = 0; k < text.size(); ++k) {
      bool lone = text[k] == '\n' && (k == 0 || text[k - 1] != '\r');
      bare = bare || lone;
      if (lone) want.push_back('\r');
      want.push_back(text[k]);
    }
    std::string out = "untouched";
    ASSERT_EQ(to_crlf(text, out), bare) << testing::PrintToString(text);
    EXPECT_EQ(out, bare ? want : "untouched");
  }
}

TEST(Canon, LfInputBecomesCrlf) {
  MailMessage m("From: a@b\nSubject: x\n  y\n\nbody\n");
  ASSERT_EQ(m.headers().size(), 2u);
  EXPECT_EQ(m.headers()[1].raw, "Subject: x\r\n  y\r\n");
  EXPECT_EQ(m.body(), "body\r\n");
}

// ---- RFC 8463 example ------------------------------------------------------------

const char kRfc8463Message[] =
    "DKIM-Signature: v=1; a=ed25519-sha256; c=simple/simple; \n"
    " d=football.example.com; i=@football.example.com; \n"
    " q=dns/txt; s=brisbane; t=1518460054; h=from : to : \n"
    " subject : date : message-id : from : subject : date; \n"
    " bh=4bLNXImK9drULnmePzZNEBleUanJCX5PIsDIFoH4KTQ=; \n"
    " b=9/dsDChY0YMTtD5Eyw3wx7x22BlSJP7M5ECbJ7GWrR45nXlTCGb8l0YB\n"
    " o0wBLR++X5LqmsxXaOYLLJe46l10AQ==\n"
    "DKIM-Signature: v=1; a=rsa-sha256; c=simple/simple; \n"
    " d=football.example.com; i=@football.example.com; \n"
    " q=dns/txt; s=test; t=1527915362; h=from : to : subject : \n"
    " date : message-id : from : subject : date; \n"
    " bh=4bLNXImK9drULnmePzZNEBleUanJCX5PIsDIFoH4KTQ=; \n"
    " b=icKcLSEZYXJ95flvWE8FT6hl5iqd8MC/LEKYH0QjsqYy6MO/4pgVNCZH\n"
    " l/RAXAuADxE/40Fg7uTlxwwD1hjN2Ple6J//cJfslBdDOq6zTVbne1dqtl\n"
    " NOat7iamJ1AfRqyG+ja7a2AZsrpUuJ7VA6O+0zRYPqpwMEkEFIzI9i/Xk=\n"
    "From: Joe SixPack <joe@football.example.com>\n"
    "To: Suzie Q <suzie@shopping.example.net>\n"
    "Subject: Is dinner ready?\n"
    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\n"
    "Message-ID: <20030712040037.46341.5F8J@football.example.com>\n"
    "\n"
    "Hi.\n"
    "\n"
    "We lost the game.  Are you hungry yet?\n"
    "\n"
    "Joe.\n"
    "\n";

void add_rfc8463_keys(StubResolver& dns) {
  dns.add("brisbane._domainkey.football.example.com", DnsType::txt,
          "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
  dns.add("test._domainkey.football.example.com", DnsType::txt,
          "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOK"
          "b2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVY"
          "LzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB");
}

TEST(DkimVerify, Rfc8463Example) {
  StubResolver dns;
  add_rfc8463_keys(dns);
  auto results = dkim_verify(kRfc8463Message, dns);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].status, DkimStatus::pass) << results[0].reason;
  EXPECT_EQ(results[0].algorithm, "ed25519-sha256");
  EXPECT_EQ(results[1].status, DkimStatus::pass) << results[1].reason;
  EXPECT_EQ(results[1].key_bits, 1024);

  std::string tampered = kRfc8463Message;
  tampered.replace(tampered.find("hungry"), 6, "Hungry");
  results = dkim_verify(tampered, dns);
  EXPECT_EQ(results[0].status, DkimStatus::fail);
  EXPECT_EQ(results[0].reason, "body hash mismatch");

  tampered = kRfc8463Message;
  tampered.replace(tampered.find("dinner"), 6, "Dinner");
  results = dkim_verify(tampered, dns);
  EXPECT_EQ(results[0].status, DkimStatus::fail);
  EXPECT_EQ(results[0].reason, "signature did not verify");
  EXPECT_EQ(results[1].status, DkimStatus::fail);
}

TEST(DkimVerify, KeyProblems) {
  StubResolver dns;
  auto results = dkim_verify(kRfc8463Message, dns);
  EXPECT_EQ(results[0].status, DkimStatus::permerror);  // NXDOMAIN
  dns.fail("brisbane._domainkey.football.example.com");
  dns.add("test._domainkey.football.example.com", DnsType::txt, "v=DKIM1; p=");
  results = dkim_verify(kRfc8463Message, dns);
  EXPECT_EQ(results[0].status, DkimStatus::temperror);
  EXPECT_EQ(results[1].status, DkimStatus::permerror);
  EXPECT_EQ(results[1].reason, "key revoked");
}

// ---- sign and verify ------------------------------------------------------------

const DkimKey& rsa_key() {
  static DkimKey key = *DkimKey::generate(DkimAlgorithm::rsa_sha256, 2048);
  return key;
}
const DkimKey& ed_key() {
  static DkimKey key = *DkimKey::generate(DkimAlgorithm::ed25519_sha256);
  return key;
}

const char kMessage[] =
    "Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    "From: Alice <alice@example.org>\r\n"
    "To: bob@example.net,\r\n"
    "   carol@example.net\r\n"
    "Subject:   Hello \t world  \r\n"
    "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    "Message-ID: <1@example.org>\r\n"
    "\r\n"
    "Hi Bob,  \r\n"
    "\r\n"
    "trailing space and tabs\t \r\n"
    "\r\n"
    "\r\n";

std::string signed_message(const DkimKey& key, DkimSignOptions opt, std::string_view msg = kMessage) {
  opt.domain = "example.org";
  opt.selector = "s1";
  auto sig = dkim_sign(msg, key, opt);
  EXPECT_TRUE(sig) << sig.status().message();
  return *sig + std::string(msg);
}

StubResolver dns_for(const DkimKey& key) {
  StubResolver dns;
  dns.add("s1._domainkey.example.org", DnsType::txt, key.dns_record());
  return dns;
}

TEST(DkimSign, RoundTripsEveryAlgorithmAndCanonicalization) {
  for (const DkimKey* key : {&rsa_key(), &ed_key()}) {
    for (Canon hc : {Canon::simple, Canon::relaxed}) {
      for (Canon bc : {Canon::simple, Canon::relaxed}) {
        DkimSignOptions opt;
        opt.header_canon = hc;
        opt.body_canon = bc;
        std::string m = signed_message(*key, opt);
        auto dns = dns_for(*key);
        auto r = dkim_verify(m, dns);
        ASSERT_EQ(r.size(), 1u);
        EXPECT_EQ(r[0].status, DkimStatus::pass) << r[0].reason << "\n" << m;
        EXPECT_EQ(r[0].domain, "example.org");
      }
    }
  }
}

TEST(DkimSign, OversignsFromSoAnAddedFromFails) {
  std::string m = signed_message(ed_key(), {});
  std::string h = m.substr(m.find("h="), m.find(';', m.find("h=")) - m.find("h="));
  EXPECT_EQ(std::count(h.begin(), h.end(), 'f'), 2) << h;  // from, from
  size_t at = m.find("From:");
  std::string forged = m.substr(0, at) + "From: mallory@example.com\r\n" + m.substr(at);
  auto dns = dns_for(ed_key());
  EXPECT_EQ(dkim_verify(forged, dns)[0].status, DkimStatus::fail);
  // An added unsigned header does not matter.
  std::string extra = "X-Extra: yes\r\n" + m;
  EXPECT_EQ(dkim_verify(extra, dns)[0].status, DkimStatus::pass);
}

TEST(DkimSign, RelaxedSurvivesRewrapping) {
  DkimSignOptions opt;
  std::string m = signed_message(rsa_key(), opt);
  std::string changed = m;
  changed.replace(changed.find("Subject:   Hello"), 16, "subject : Hello");
  changed.replace(changed.find("Hi Bob,  "), 9, "Hi Bob, \t");
  auto dns = dns_for(rsa_key());
  EXPECT_EQ(dkim_verify(changed, dns)[0].status, DkimStatus::pass);
  opt.header_canon = opt.body_canon = Canon::simple;
  m = signed_message(rsa_key(), opt);
  changed = m;
  changed.replace(changed.find("Hi Bob,  "), 9, "Hi Bob, \t");
  EXPECT_EQ(dkim_verify(changed, dns)[0].status, DkimStatus::fail);
}

TEST(DkimSign, LfInputSignsLikeCrlf) {
  std::string lf;
  for (char c : std::string(kMessage)) {
    if (c != '\r') lf.push_back(c);
  }
  DkimSignOptions opt;
  opt.header_canon = opt.body_canon = Canon::simple;
  opt.domain = "example.org";
  opt.selector = "s1";
  auto sig = dkim_sign(lf, ed_key(), opt);
  ASSERT_TRUE(sig);
  auto dns = dns_for(ed_key());
  EXPECT_EQ(dkim_verify(*sig + kMessage, dns)[0].status, DkimStatus::pass);
}

TEST(DkimSign, RefusesMessageWithoutFrom) {
  DkimSignOptions opt{"example.org", "s1"};
  EXPECT_EQ(dkim_sign("To: a@b\r\n\r\nx\r\n", ed_key(), opt).code(), Code::invalid);
}

TEST(DkimVerify, ExpiryAndTimestamps) {
  DkimSignOptions opt;
  opt.timestamp = 1000;
  opt.expire_after = 100;
  std::string m = signed_message(ed_key(), opt);
  auto dns = dns_for(ed_key());
  DkimVerifyOptions vo;
  vo.now = 1050;
  EXPECT_EQ(dkim_verify(m, dns, vo)[0].status, DkimStatus::pass);
  vo.now = 1101;
  auto r = dkim_verify(m, dns, vo);
  EXPECT_EQ(r[0].status, DkimStatus::permerror);
  EXPECT_EQ(r[0].reason, "signature expired");
}

TEST(DkimVerify, KeyRecordFlags) {
  DkimSignOptions opt;
  opt.identity = "alice@mail.example.org";
  std::string m = signed_message(ed_key(), opt);
  std::string rec = ed_key().dns_record();
  StubResolver dns;
  dns.add("s1._domainkey.example.org", DnsType::txt, rec + "; t=y");
  auto r = dkim_verify(m, dns);
  EXPECT_EQ(r[0].status, DkimStatus::pass);
  EXPECT_TRUE(r[0].testing);
  EXPECT_EQ(r[0].identity, "alice@mail.example.org");
  StubResolver strict;
  strict.add("s1._domainkey.example.org", DnsType::txt, rec + "; t=s");
  EXPECT_EQ(dkim_verify(m, strict)[0].status, DkimStatus::permerror);
  StubResolver wrong_type;
  wrong_type.add("s1._domainkey.example.org", DnsType::txt, "v=DKIM1; k=rsa; p=" + rec.substr(rec.find("p=") + 2));
  EXPECT_EQ(dkim_verify(m, wrong_type)[0].status, DkimStatus::permerror);
  StubResolver service;
  service.add("s1._domainkey.example.org", DnsType::txt, rec + "; s=other");
  EXPECT_EQ(dkim_verify(m, service)[0].status, DkimStatus::permerror);
  StubResolver hashes;
  hashes.add("s1._domainkey.example.org", DnsType::txt, rec + "; h=sha1");
  EXPECT_EQ(dkim_verify(m, hashes)[0].status, DkimStatus::permerror);
}

TEST(DkimVerify, SmallRsaKeysAreRefused) {
  auto small = DkimKey::generate(DkimAlgorithm::rsa_sha256, 512);
  ASSERT_TRUE(small);
  EXPECT_FALSE(DkimKey::parse(small->private_pem()));  // refused for signing
  std::string m = signed_message(*small, {});           // signed anyway, to publish
  auto dns = dns_for(*small);
  auto r = dkim_verify(m, dns);
  EXPECT_EQ(r[0].status, DkimStatus::permerror);
  EXPECT_EQ(r[0].reason, "RSA key too small: 512");
}

// RFC 8301 3.2: keys from 1024 to 4096 bits verify; under 1024 never pass
// (1023 bits is the first refused).
TEST(DkimVerify, RsaKeySizesPerRfc8301) {
  for (int bits : {1023, 4096}) {
    auto key = DkimKey::generate(DkimAlgorithm::rsa_sha256, bits);
    ASSERT_TRUE(key);
    std::string m = signed_message(*key, {});
    auto dns = dns_for(*key);
    auto r = dkim_verify(m, dns);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].key_bits, bits);
    EXPECT_EQ(r[0].status, bits < 1024 ? DkimStatus::permerror : DkimStatus::pass) << bits << ": " << r[0].reason;
  }
}

TEST(DkimVerify, RsaSha1IsOnlyAPolicyResult) {
  DkimSignOptions opt;
  opt.algorithm = DkimAlgorithm::rsa_sha1;
  std::string m = signed_message(rsa_key(), opt);
  EXPECT_NE(m.find("a=rsa-sha1"), std::string::npos);
  auto dns = dns_for(rsa_key());
  auto r = dkim_verify(m, dns);
  EXPECT_EQ(r[0].status, DkimStatus::policy);
  m.replace(m.find("Hi Bob"), 2, "Yo");
  EXPECT_EQ(dkim_verify(m, dns)[0].status, DkimStatus::fail);
}

TEST(DkimVerify, MalformedSignaturesArePermerrors) {
  auto dns = dns_for(ed_key());
  const char* bad[] = {
      "DKIM-Signature: v=2; a=rsa-sha256; d=example.org; s=s1; h=from; bh=AA==; b=AA==\r\n",
      "DKIM-Signature: v=1; a=rsa-md5; d=example.org; s=s1; h=from; bh=AA==; b=AA==\r\n",
      "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=s1; h=to; bh=AA==; b=AA==\r\n",
      "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=s1; h=from; bh=AA==\r\n",
      "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; i=@evil.com; s=s1; h=from; bh=AA==; b=AA==\r\n",
      "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=s1; h=from; bh=A; b=AA==\r\n",
      "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=s1; h=from; l=x; bh=AA==; b=AA==\r\n",
      "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=s1; h=from; q=http; bh=AA==; b=AA==\r\n",
      "DKIM-Signature: v=1; a=rsa-sha256; c=fancy; d=example.org; s=s1; h=from; bh=AA==; b=AA==\r\n",
      "DKIM-Signature: garbage\r\n",
  };
  for (const char* sig : bad) {
    auto r = dkim_verify(std::string(sig) + kMessage, dns);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, DkimStatus::permerror) << sig;
  }
}

TEST(DkimVerify, BodyLengthLimit) {
  StubResolver dns = dns_for(ed_key());
  std::string msg = "From: a@example.org\r\n\r\nHi Bob,\r\n";
  DkimSignOptions opt{"example.org", "s1"};
  opt.body_length = 9;
  auto sig = dkim_sign(msg, ed_key(), opt);
  ASSERT_TRUE(sig);
  EXPECT_EQ(dkim_verify(*sig + msg, dns)[0].status, DkimStatus::pass);
  // Content appended after l= is unsigned: not a pass unless allowed.
  auto r = dkim_verify(*sig + msg + "Buy now\r\n", dns);
  EXPECT_EQ(r[0].status, DkimStatus::policy);
  DkimVerifyOptions vo;
  vo.allow_partial_body = true;
  EXPECT_EQ(dkim_verify(*sig + msg + "Buy now\r\n", dns, vo)[0].status, DkimStatus::pass);
  // l= beyond the body is an error.
  opt.body_length = 0;
  std::string longer = "From: a@example.org\r\n\r\nHi Bob, and more\r\n";
  opt.body_length = 18;
  sig = dkim_sign(longer, ed_key(), opt);
  ASSERT_TRUE(sig);
  EXPECT_EQ(dkim_verify(*sig + msg, dns)[0].status, DkimStatus::permerror);
  // Appending to a signature without l= breaks it.
  opt.body_length = 0;
  sig = dkim_sign(msg, ed_key(), opt);
  EXPECT_EQ(dkim_verify(*sig + msg + "more\r\n", dns)[0].status, DkimStatus::fail);
}

// l= ending at every kind of place in a body hashed in several pieces.
TEST(DkimVerify, BodyLengthLimitAcrossPieces) {
  StubResolver dns = dns_for(ed_key());
  std::string body;
  for (int i = 0; body.size() < 70000; ++i) body += "line  " + std::to_string(i) + "\t of a long body \r\n";
  std::string msg = "From: a@example.org\r\n\r\n" + body;
  std::string relaxed;
  canon_body(body, Canon::relaxed, relaxed);
  for (uint64_t l : {uint64_t{1}, uint64_t{16383}, uint64_t{16384}, uint64_t{16385}, uint64_t{40000},
                     uint64_t{relaxed.size()}}) {
    DkimSignOptions opt{"example.org", "s1"};
    opt.body_canon = Canon::relaxed;
    opt.body_length = l;
    auto sig = dkim_sign(msg, ed_key(), opt);
    ASSERT_TRUE(sig) << l;
    DkimVerifyOptions vo;
    vo.allow_partial_body = true;
    EXPECT_EQ(dkim_verify(*sig + msg, dns, vo)[0].status, DkimStatus::pass) << l;
    EXPECT_EQ(dkim_verify(*sig + msg, dns)[0].status,
              l < relaxed.size() ? DkimStatus::policy : DkimStatus::pass) << l;
    // A change inside the signed part breaks it.
    std::string changed = msg;
    size_t at = msg.size() - body.size() + (l > 8 ? l - 8 : 0);
    changed[at] = changed[at] == 'Q' ? 'R' : 'Q';
    EXPECT_EQ(dkim_verify(*sig + changed, dns, vo)[0].status, DkimStatus::fail) << l;
  }
  DkimSignOptions opt{"example.org", "s1"};
  opt.body_canon = Canon::relaxed;
  opt.body_length = relaxed.size() + 1;
  EXPECT_FALSE(dkim_sign(msg, ed_key(), opt));
}

TEST(DkimVerify, NoSignatureNoResult) {
  StubResolver dns;
  EXPECT_TRUE(dkim_verify(kMessage, dns).empty());
}

TEST(DkimKey, ParsesPemAndSeedForms) {
  auto k = DkimKey::parse(rsa_key().private_pem());
  ASSERT_TRUE(k);
  EXPECT_EQ(k->algorithm(), DkimAlgorithm::rsa_sha256);
  EXPECT_EQ(k->bits(), 2048);
  EXPECT_EQ(k->dns_record(), rsa_key().dns_record());
  auto e = DkimKey::parse(ed_key().private_pem());
  ASSERT_TRUE(e);
  EXPECT_EQ(e->algorithm(), DkimAlgorithm::ed25519_sha256);
  // RFC 8032 7.1 test 1 seed, as dknewkey writes it.
  auto seed = DkimKey::parse("nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=\n");
  ASSERT_TRUE(seed) << seed.status().message();
  EXPECT_EQ(seed->dns_record(), "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
  EXPECT_FALSE(DkimKey::parse("not a key"));
}

}  // namespace
}  // namespace mail::auth
