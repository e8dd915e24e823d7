#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "store/rocks_store.h"
#include "transfer/exporter.h"
#include "transfer/importer.h"
#include "transfer/maildir.h"
#include "transfer/mbox.h"
#include "transfer/message.h"

namespace mail::transfer {
namespace {
namespace fs = std::filesystem;

std::vector<SourceMessage> read_all(std::string_view data, MboxVariant v = MboxVariant::automatic,
                                    std::vector<std::string>* warnings = nullptr, MboxVariant* detected = nullptr) {
  MboxReader r(memory_reader(data), "test", {v, 1u << 20});
  std::vector<SourceMessage> out;
  for (;;) {
    auto m = r.next();
    EXPECT_TRUE(m.is_ok()) << m.status().to_string();
    if (!m.is_ok() || !*m) break;
    out.push_back(std::move(**m));
  }
  if (warnings) *warnings = r.take_warnings();
  if (detected) *detected = r.detected();
  return out;
}

TEST(TransferText, LineEnds) {
  EXPECT_EQ(to_crlf("a\nb\r\nc"), "a\r\nb\r\nc");
  EXPECT_EQ(to_crlf("\n\n"), "\r\n\r\n");
  EXPECT_EQ(to_lf("a\r\nb\r\n\r\nc\rd"), "a\nb\n\nc\rd");
  EXPECT_EQ(to_crlf(to_lf("x\r\ny\r\n")), "x\r\ny\r\n");
}

TEST(TransferText, Dates) {
  EXPECT_EQ(parse_from_line_date("From MAILER-DAEMON Thu Jan  1 00:00:10 1970\n"), 10);
  EXPECT_EQ(parse_from_line_date("From a@b.c Wed Nov 25 14:39:16 2026"), 1795617556);
  EXPECT_EQ(parse_from_line_date("From a@b.c Wed Nov 25 14:39:16 2026 +0100"), 1795617556 - 3600);
  EXPECT_EQ(parse_from_line_date("From a@b.c Wed Nov 25 2026 14:39:16"), 1795617556);
  EXPECT_EQ(parse_from_line_date("From here on we talk"), 0);
  EXPECT_EQ(parse_rfc5322_date("Wed, 25 Nov 2026 15:39:16 +0100 (CET)"), 1795617556);
  EXPECT_EQ(parse_rfc5322_date("25 Nov 2026 14:39 GMT"), 1795617540);
  EXPECT_EQ(parse_rfc5322_date("garbage"), 0);
  EXPECT_EQ(format_asctime(1795617556), "Wed Nov 25 14:39:16 2026");
  EXPECT_EQ(parse_from_line_date("From x " + format_asctime(1795617556)), 1795617556);
  std::string msg = "Received: from a by b; Wed, 25 Nov 2026 14:39:16 +0000\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nx";
  EXPECT_EQ(date_from_headers(msg), 1795617556);
  EXPECT_EQ(date_from_headers("Date: Mon, 1 Jan 2024 00:00:00 +0000\n\nbody"), 1704067200);
}

TEST(TransferText, ModifiedUtf7AndNames) {
  EXPECT_EQ(mutf7_decode("Entw&APw-rfe"), "Entwürfe");
  EXPECT_EQ(mutf7_encode("Entwürfe"), "Entw&APw-rfe");
  EXPECT_EQ(mutf7_decode("a&-b"), "a&b");
  EXPECT_EQ(mutf7_encode("a&b"), "a&-b");
  EXPECT_EQ(mutf7_decode(mutf7_encode("日本語 😀")), "日本語 😀");
  EXPECT_EQ(mutf7_decode("&AC4-"), ".");
  EXPECT_EQ(special_use_for("Sent"), store::SpecialUse::sent);
  EXPECT_EQ(special_use_for("junk"), store::SpecialUse::junk);
  EXPECT_EQ(special_use_for("Work/Sent"), store::SpecialUse::none);
  EXPECT_EQ(canonical_mailbox_name("inbox"), "INBOX");
  EXPECT_EQ(canonical_mailbox_name("Inbox/x"), "INBOX/x");
  EXPECT_TRUE(looks_like_message("Subject: x\n\nbody"));
  EXPECT_FALSE(looks_like_message("From x@y Wed Nov 25 14:39:16 2026\n"));
  EXPECT_FALSE(looks_like_message(""));
  EXPECT_TRUE(looks_like_message("\nbody without header\n"));
  EXPECT_FALSE(looks_like_message("just text\n"));
}

TEST(Mbox, ReadsMboxrdWithFlagsAndDates) {
  std::string data =
      "From a@example.test Wed Nov 25 14:39:16 2026\n"
      "Subject: one\n"
      "Status: RO\n"
      "X-Status: AF\n"
      "X-Keywords: $Label1 work,home\n"
      "X-UID: 7\n"
      "\n"
      ">From the start\n"
      ">>From quoted\n"
      "body\n"
      "\n"
      "From b@example.test Thu Nov 26 10:00:00 2026\n"
      "Subject: two\n"
      "\n"
      "second\n"
      "\n";
  MboxVariant detected;
  auto msgs = read_all(data, MboxVariant::automatic, nullptr, &detected);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].content, "Subject: one\n\nFrom the start\n>From quoted\nbody\n");
  EXPECT_EQ(msgs[0].flags, store::flag::seen | store::flag::answered | store::flag::flagged);
  EXPECT_EQ(msgs[0].keywords, (std::vector<std::string>{"$Label1", "work", "home"}));
  EXPECT_EQ(msgs[0].internal_date, 1795617556);
  EXPECT_EQ(msgs[0].offset, 0u);
  EXPECT_EQ(msgs[1].content, "Subject: two\n\nsecond\n");
  EXPECT_EQ(msgs[1].flags, 0u);
  EXPECT_EQ(data.substr(msgs[1].offset, 7), "From b@");
  EXPECT_EQ(detected, MboxVariant::mboxrd);
}

TEST(Mbox, MboxoKeepsDoubleQuotedLines) {
  std::string data = "From x Wed Nov 25 14:39:16 2026\nA: b\n\n>From x\n>>From y\n";
  auto msgs = read_all(data, MboxVariant::mboxo);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].content, "A: b\n\nFrom x\n>>From y\n");
}

TEST(Mbox, ContentLengthVariants) {
  // mboxcl2: a bare "From " line inside the body, delimited by Content-Length.
  std::string body = "line\n\nFrom inside Wed Nov 25 14:39:16 2026\nend\n";
  std::string data = "From x Wed Nov 25 14:39:16 2026\nSubject: cl2\nContent-Length: " + std::to_string(body.size()) +
                     "\n\n" + body + "\nFrom y Wed Nov 25 14:39:17 2026\nSubject: next\n\nz\n";
  MboxVariant detected;
  auto msgs = read_all(data, MboxVariant::automatic, nullptr, &detected);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].content, "Subject: cl2\n\n" + body);
  EXPECT_EQ(msgs[1].content, "Subject: next\n\nz\n");
  EXPECT_EQ(detected, MboxVariant::mboxcl2);

  // A wrong Content-Length is ignored (and kept in the message).
  std::string bad = "From x Wed Nov 25 14:39:16 2026\nContent-Length: 3\n\nhello world\n\nFrom y Wed Nov 25 14:39:17 2026\nA: b\n\nc\n";
  msgs = read_all(bad);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].content, "Content-Length: 3\n\nhello world\n");

  // mboxcl: escaped body, Content-Length counts the escaped bytes.
  std::string esc = ">From quoted\nx\n";
  std::string cl = "From x Wed Nov 25 14:39:16 2026\nContent-Length: " + std::to_string(esc.size()) + "\n\n" + esc;
  msgs = read_all(cl, MboxVariant::automatic, nullptr, &detected);
  ASSERT_EQ(msgs.size(), 1u);
  // Lines and Content-Length agree here: the field stays, lines are unquoted as mboxrd.
  EXPECT_EQ(msgs[0].content, "Content-Length: " + std::to_string(esc.size()) + "\n\nFrom quoted\nx\n");
  EXPECT_EQ(detected, MboxVariant::mboxcl);
  msgs = read_all(cl, MboxVariant::mboxcl);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].content, "\nFrom quoted\nx\n");
}

TEST(Mbox, TruncatedAndBadInput) {
  std::vector<std::string> warnings;
  auto msgs = read_all("From x Wed Nov 25 14:39:16 2026\nSubject: cut\n\nhalf a li", MboxVariant::automatic, &warnings);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].content, "Subject: cut\n\nhalf a li");
  ASSERT_EQ(msgs[0].warnings.size(), 1u);

  msgs = read_all("From x Wed Nov 25 14:39:16 2026\nSubject: header only", MboxVariant::automatic, &warnings);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_FALSE(msgs[0].warnings.empty());

  MboxReader r(memory_reader("Subject: not an mbox\n\n"), "x");
  auto m = r.next();
  EXPECT_EQ(m.code(), Code::invalid);

  // Oversized messages are skipped with a warning; the next one is read.
  std::string big = "From x Wed Nov 25 14:39:16 2026\nA: b\n\n" + std::string(3000, 'x') + "\n\nFrom y Wed Nov 25 14:39:17 2026\nA: c\n\nd\n";
  MboxReader small(memory_reader(big), "big", {MboxVariant::automatic, 1000});
  auto first = small.next();
  ASSERT_TRUE(first.is_ok());
  ASSERT_TRUE(*first);
  EXPECT_EQ((*first)->content, "A: c\n\nd\n");
  EXPECT_EQ(small.skipped(), 1u);
  EXPECT_EQ(small.take_warnings().size(), 1u);
}

TEST(Mbox, CrlfFileAndEmptyInput) {
  auto msgs = read_all("From x Wed Nov 25 14:39:16 2026\r\nA: b\r\n\r\nc\r\n\r\nFrom y Wed Nov 25 14:39:17 2026\r\nA: d\r\n\r\ne\r\n");
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].content, "A: b\r\n\r\nc\r\n");
  EXPECT_TRUE(read_all("").empty());
  EXPECT_TRUE(read_all("\n\n").empty());
}

TEST(Mbox, WriterRoundTrip) {
  std::string stored = "Subject: x\r\nFrom: a@b\r\n\r\nFrom the start\r\n>From quoted\r\nend\r\n";
  std::string entry = mbox_entry(stored, 1795617556, store::flag::seen | store::flag::draft | store::flag::deleted,
                                 {"$Junk", "work"});
  EXPECT_EQ(entry.substr(0, entry.find('\n')), "From MAILER-DAEMON Wed Nov 25 14:39:16 2026");
  EXPECT_NE(entry.find("\n>From the start\n>>From quoted\n"), std::string::npos);
  std::string two = entry + mbox_entry("A: b\r\n\r\n", 5, 0, {});
  auto msgs = read_all(two);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(to_crlf(msgs[0].content), stored);
  EXPECT_EQ(msgs[0].flags, store::flag::seen | store::flag::draft | store::flag::deleted);
  EXPECT_EQ(msgs[0].keywords, (std::vector<std::string>{"$Junk", "work"}));
  EXPECT_EQ(msgs[0].internal_date, 1795617556);
  EXPECT_EQ(to_crlf(msgs[1].content), "A: b\r\n\r\n");
  EXPECT_EQ(msgs[1].internal_date, 5);
}

class TransferDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("transfer_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  void open_store() {
    auto s = store::RocksStore::open({(dir_ / "data").string(), 8, false});
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    store_ = std::move(s).value();
    ASSERT_TRUE(store_->domain_add({"example.test"}).is_ok());
    auto a = store_->account_add({"user@example.test", {}, {}, ""});
    ASSERT_TRUE(a.is_ok()) << a.status().to_string();
    account_ = *a;
  }
  void write(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
  }
  ImportStats import(const std::string& path, ImportOptions options = {}) {
    Importer importer(*store_, account_, options);
    auto plan = plan_sources(path, "auto");
    EXPECT_TRUE(plan.is_ok()) << plan.status().to_string();
    for (const auto& e : *plan) {
      auto src = open_source(e, MboxVariant::automatic, 1u << 20);
      EXPECT_TRUE(src.is_ok()) << src.status().to_string();
      EXPECT_TRUE(importer.import(e, **src).is_ok());
    }
    EXPECT_TRUE(importer.finish().is_ok());
    return importer.stats();
  }
  std::vector<store::MessageEntry> messages(const std::string& mailbox) {
    auto mb = store_->mailbox_get({account_.id, mailbox});
    EXPECT_TRUE(mb.is_ok()) << mailbox;
    if (!mb) return {};
    return store_->message_list({mb->id})->messages;
  }
  std::string content(const store::MessageEntry& e) { return store_->content_get({e.content})->bytes; }

  fs::path dir_;
  std::unique_ptr<store::RocksStore> store_;
  store::AccountInfo account_;
};

TEST_F(TransferDir, MaildirImportKeepsFlagsKeywordsDatesAndFolders) {
  open_store();
  fs::path md = dir_ / "Maildir";
  write(md / "cur" / "1000.M1.host:2,FRS", "Subject: a\n\nbody a\n");
  write(md / "new" / "1001.M2.host", "Subject: b\n\nbody b\n");
  write(md / ".Sent" / "cur" / "1002.M3.host:2,Sab", "Subject: c\n\nbody c\n");
  write(md / ".Sent" / "dovecot-keywords", "0 $Label1\n1 work\n");
  write(md / ".Work.Entw&APw-rfe" / "cur" / "1003.M4.host:2,T", "Subject: d\n\nbody d\n");
  fs::create_directories(md / ".Empty" / "cur");
  struct timespec t[2] = {{123456789, 0}, {123456789, 0}};
  utimensat(AT_FDCWD, (md / "cur" / "1000.M1.host:2,FRS").c_str(), t, 0);

  auto stats = import(md.string());
  EXPECT_EQ(stats.imported, 4u);
  auto inbox = messages("INBOX");
  ASSERT_EQ(inbox.size(), 2u);
  EXPECT_EQ(content(inbox[0]), "Subject: a\r\n\r\nbody a\r\n");
  EXPECT_EQ(inbox[0].flags, store::flag::flagged | store::flag::answered | store::flag::seen);
  EXPECT_EQ(inbox[0].internal_date, 123456789);
  EXPECT_EQ(inbox[1].flags, 0u);
  auto sent = messages("Sent");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].keywords, (std::vector<std::string>{"$Label1", "work"}));
  EXPECT_EQ(store_->mailbox_get({account_.id, "Sent"})->special_use, store::SpecialUse::sent);
  auto drafts = messages("Work/Entwürfe");
  ASSERT_EQ(drafts.size(), 1u);
  EXPECT_EQ(drafts[0].flags, store::flag::deleted);
  EXPECT_TRUE(store_->mailbox_get({account_.id, "Empty"}).is_ok());

  // A second import adds nothing.
  auto again = import(md.string());
  EXPECT_EQ(again.imported, 0u);
  EXPECT_EQ(again.duplicates, 4u);
  EXPECT_EQ(messages("INBOX").size(), 2u);
}

TEST_F(TransferDir, MaildirFollowsDovecotUidlistOrder) {
  open_store();
  fs::path md = dir_ / "md";
  write(md / "cur" / "100.a:2,S", "Subject: third\n\n3\n");
  write(md / "cur" / "200.b:2,", "Subject: first\n\n1\n");
  write(md / "new" / "300.c", "Subject: second\n\n2\n");
  write(md / "new" / "050.d", "Subject: unlisted\n\n4\n");
  write(md / "dovecot-uidlist", "3 V1 N4 Gabc\n1 :200.b\n2 W20 :300.c\n5 :100.a:2,S\n");
  ImportOptions o;
  o.jobs = 8;  // the order holds at any -j
  EXPECT_EQ(import(md.string(), o).imported, 4u);
  std::vector<std::string> subjects;
  for (const auto& e : messages("INBOX")) subjects.push_back(content(e).substr(9, content(e).find('\r') - 9));
  EXPECT_EQ(subjects, (std::vector<std::string>{"first", "second", "third", "unlisted"}));
}

TEST_F(TransferDir, DuplicatesSurviveRestartAndExpungedMessagesComeBack) {
  open_store();
  std::string mbox;
  for (int i = 0; i < 700; ++i)
    mbox += mbox_entry("Subject: " + std::to_string(i) + "\r\n\r\nbody\r\n", 1000 + i, i % 2 ? store::flag::seen : 0, {});
  mbox += mbox_entry("Subject: 0\r\n\r\nbody\r\n", 5, 0, {});  // the same bytes twice in one file
  write(dir_ / "in.mbox", mbox);
  ImportOptions o;
  o.jobs = 8;
  auto s = import((dir_ / "in.mbox").string(), o);
  EXPECT_EQ(s.imported, 700u);
  EXPECT_EQ(s.duplicates, 1u);
  // UIDs follow the file across batches; the first copy of the duplicate is kept.
  auto listed = messages("INBOX");
  ASSERT_EQ(listed.size(), 700u);
  for (int i = 0; i < 700; ++i) {
    ASSERT_EQ(content(listed[i]), "Subject: " + std::to_string(i) + "\r\n\r\nbody\r\n") << i;
    ASSERT_EQ(listed[i].internal_date, 1000 + i) << i;
  }

  // A message delivered another way is recognised too.
  store::DeliverReq req;
  req.content = "Subject: smtp\r\n\r\nx\r\n";
  req.targets.push_back({account_.id});
  ASSERT_TRUE(store_->deliver(req).is_ok());
  write(dir_ / "one.eml", "Subject: smtp\n\nx\n");
  EXPECT_EQ(import((dir_ / "one.eml").string()).duplicates, 1u);

  // Expunge one: it is imported again; the others are not.
  auto inbox = messages("INBOX");
  ASSERT_EQ(inbox.size(), 701u);
  ASSERT_TRUE(store_->expunge({store_->mailbox_get({account_.id, "INBOX"})->id, {inbox[3].uid}}).is_ok());
  store_.reset();
  auto st = store::RocksStore::open({(dir_ / "data").string(), 8, false});
  ASSERT_TRUE(st.is_ok());
  store_ = std::move(st).value();
  s = import((dir_ / "in.mbox").string());
  EXPECT_EQ(s.imported, 1u);
  EXPECT_EQ(s.duplicates, 700u);
}

TEST_F(TransferDir, ExportImportRoundTrip) {
  open_store();
  std::string mbox;
  mbox += mbox_entry("Subject: a\r\n\r\nFrom the start\r\n>From x\r\n", 1700000000,
                     store::flag::seen | store::flag::flagged, {"$Forwarded", "work"});
  mbox += mbox_entry("Subject: b\r\n\r\nno final newline", 1700000001, store::flag::draft, {});
  write(dir_ / "src" / "INBOX.mbox", mbox);
  write(dir_ / "src" / "Work" / "Project.mbox", mbox_entry("Subject: c\r\n\r\nc\r\n", 1700000002, 0, {"x"}));
  auto s = import((dir_ / "src").string());
  EXPECT_EQ(s.imported, 3u);

  auto snapshot = [&] {
    std::vector<std::tuple<std::string, std::string, uint32_t, std::vector<std::string>, int64_t>> out;
    auto boxes = store_->mailbox_list({account_.id});
    for (const auto& box : boxes->mailboxes)
      for (const auto& e : messages(box.name)) out.emplace_back(box.name, content(e), e.flags, e.keywords, e.internal_date);
    std::sort(out.begin(), out.end());
    return out;
  };
  auto before = snapshot();
  for (auto kind : {ExportKind::mbox, ExportKind::maildir}) {
    ExportOptions eo;
    eo.kind = kind;
    eo.path = (dir_ / (kind == ExportKind::mbox ? "out-mbox" : "out-maildir")).string();
    auto ex = export_mail(*store_, account_, eo);
    ASSERT_TRUE(ex.is_ok()) << ex.status().to_string();
    EXPECT_EQ(ex->messages, 3u);
    // Importing the export into the same account adds nothing...
    auto again = import(eo.path);
    EXPECT_EQ(again.imported, 0u) << eo.path;
    EXPECT_EQ(again.duplicates, 3u);
  }
  // ... and into a fresh store gives the same messages.
  for (const char* out : {"out-mbox", "out-maildir"}) {
    store_.reset();
    fs::remove_all(dir_ / "data");
    open_store();
    auto s2 = import((dir_ / out).string());
    EXPECT_EQ(s2.imported, 3u) << out;
    auto after = snapshot();
    // The message without a final newline gains one in mbox (the format needs it).
    for (auto* v : {&before, &after})
      for (auto& m : *v)
        if (!std::get<1>(m).ends_with("\r\n")) std::get<1>(m) += "\r\n";
    EXPECT_EQ(before, after) << out;
  }
}

}  // namespace
}  // namespace mail::transfer
