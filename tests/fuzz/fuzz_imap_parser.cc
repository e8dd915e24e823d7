// Fuzzes the IMAP command parser and the session's command handling. The input
// is split into commands at line ends (a line ending in a literal marker takes
// the announced number of bytes with it, as the server assembles commands) and
// fed to one session that is logged in and has INBOX selected, over a small
// stub store. Every command must be answered with a tagged or untagged
// response, and nothing may crash.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "imap/parser.h"
#include "imap/session.h"
#include "mime/summary.h"
#include "mime/summary_fields.h"
#include "store/store.h"

namespace {

using namespace mail;
using namespace mail::store;

// Every operation fails unless overridden below.
class UnavailableStore : public Store {
 public:
#define MAIL_STUB_OP(code, name, Req, Resp) \
  Result<Resp> name(const Req&) override { return error(Code::unavailable, "stub"); }
  MAIL_STORE_OPS(MAIL_STUB_OP)
#undef MAIL_STUB_OP
  Result<std::unique_ptr<Subscription>> subscribe(AccountId, ChangeHandler) override {
    return error(Code::unavailable, "stub");
  }
  std::string backend_name() const override { return "stub"; }
};

const char kMessage1[] =
    "From: Ann <ann@example.com>\r\nTo: joe@example.com\r\nSubject: =?UTF-8?Q?caf=C3=A9?=\r\n"
    "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <c@x>\r\nReferences: <b@x>\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
    "--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--b\r\n"
    "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--b--\r\n";
// Message-ID/References/In-Reply-To that point at each other, for THREAD.
const char kMessage2[] =
    "Subject: Re: [list] plain (fwd)\r\nMessage-ID: <b@x>\r\nReferences: <a@x> (c) <b@x> <c@x>\r\n"
    "In-Reply-To: <b@x>\r\nCc: group: a@x, b@x;\r\n\r\nline one\r\nline two\r\n";

// One account, INBOX with two messages; writes succeed without changing anything.
class FuzzStore : public UnavailableStore {
 public:
  FuzzStore() {
    box_.id = 7;
    box_.account = 1;
    box_.name = "INBOX";
    box_.uidvalidity = 42;
    box_.uidnext = 5;
    box_.highest_modseq = 9;
    box_.messages = 2;
    for (uint32_t i = 0; i < 2; ++i) {
      MessageEntry m;
      m.uid = 2 + i * 2;
      m.modseq = 3 + i;
      m.flags = i ? flag::seen : 0;
      if (i) m.keywords = {"$Junk"};
      m.content = 100 + i;
      m.size = raw(i).size();
      m.internal_date = 760000000;
      msgs_.push_back(m);
    }
  }
  static std::string raw(size_t i) { return i == 0 ? kMessage1 : kMessage2; }

  Result<AccountAuthResp> account_auth(const AccountRef& r) override {
    if (r.address != "joe@example.com") return error(Code::not_found, "no such account");
    AccountAuthResp a;
    a.account.id = 1;
    a.account.address = r.address;
    a.credentials.password_hash = "$argon2id$stub";
    return a;
  }
  Result<MailboxInfo> mailbox_get(const MailboxRef& r) override {
    if (r.name != "INBOX") return error(Code::not_found, "no such mailbox");
    return box_;
  }
  Result<MailboxListResp> mailbox_list(const MailboxListReq&) override { return MailboxListResp{{box_}}; }
  Result<MessageListResp> message_list(const MessageListReq& r) override {
    MessageListResp resp;
    resp.mailbox = box_;
    for (const auto& m : msgs_)
      if (m.uid >= r.uid_min && (r.uid_max == 0 || m.uid <= r.uid_max)) resp.messages.push_back(m);
    return resp;
  }
  Result<FlagsUpdateResp> flags_update(const FlagsUpdateReq&) override { return FlagsUpdateResp{}; }
  Result<ExpungeResp> expunge(const ExpungeReq&) override { return ExpungeResp{}; }
  Result<CopyResp> copy(const CopyReq& r) override {
    CopyResp c;
    c.uidvalidity = 42;
    c.source_uids = r.uids;
    c.dest_uids = r.uids;
    return c;
  }
  // UIDs 1 and 3 were expunged at modseq 2 (QRESYNC's VANISHED).
  Result<ChangesResp> changes(const ChangesReq& r) override {
    ChangesResp c;
    if (r.since < 2) c.vanished = {1, 3};
    for (const auto& m : msgs_)
      if (m.modseq > r.since) c.changed.push_back(m);
    c.highest_modseq = box_.highest_modseq;
    return c;
  }
  Result<ContentResp> content_get(const ContentReq& r) override {
    if (r.id < 100 || r.id > 101) return error(Code::not_found, "no such content");
    return ContentResp{raw(r.id - 100)};
  }
  Result<ContentManyResp> content_get_many(const ContentManyReq& r) override {
    ContentManyResp resp;
    for (auto id : r.ids) {
      auto c = content_get({id});
      if (c) resp.contents.push_back({Code::ok, std::move(c->bytes), ""});
      else resp.contents.push_back({c.code(), "", c.status().message()});
    }
    return resp;
  }
  Result<SummaryFieldsResp> summary_fields(const SummaryFieldsReq& r) override {
    SummaryFieldsResp resp;
    for (auto id : r.ids)
      resp.summaries.push_back(id >= 100 && id <= 101 ? mime::project_summary(summaries_[id - 100], r.fields) : "");
    return resp;
  }
  Result<ContentMetaResp> content_meta(const ContentMetaReq& r) override {
    ContentMetaResp resp;
    for (auto id : r.ids) {
      ContentMeta m;
      if (id >= 100 && id <= 101) {
        m.id = id;
        m.summary = summaries_[id - 100];
      }
      resp.metas.push_back(m);
    }
    return resp;
  }
  Result<DeliverResp> deliver(const DeliverReq& r) override {
    DeliverResp d;
    for (size_t i = 0; i < r.targets.size(); ++i) d.results.push_back({Code::ok, "", 7, 42, 5});
    return d;
  }
  Result<ReplaceResp> message_replace(const ReplaceReq& r) override {
    if (r.message.targets.size() != 1) return error(Code::invalid, "one target");
    ReplaceResp resp;
    resp.appended = {Code::ok, "", 7, 42, 5};
    resp.expunged.expunged = {r.uid};
    return resp;
  }
  Result<DeliverBatchResp> deliver_batch(const DeliverBatchReq& r) override {
    DeliverBatchResp b;
    for (const auto& m : r.messages) {
      if (m.targets.empty()) return error(Code::invalid, "no targets");
      b.messages.push_back(*deliver(m));
    }
    return b;
  }

 private:
  MailboxInfo box_;
  std::vector<MessageEntry> msgs_;
  std::string summaries_[2] = {mime::summarize(kMessage1), mime::summarize(kMessage2)};
};

// Exercises the parser primitives directly, steered by the first byte.
void fuzz_primitives(std::string_view in) {
  if (in.empty()) return;
  unsigned op = static_cast<unsigned char>(in[0]);
  imap::Parser p(in.substr(1));
  for (int step = 0; step < 16 && !p.at_end() && p.ok(); ++step, op = op * 7 + 3) {
    size_t before = p.pos();
    switch (op % 13) {
      case 0: (void)p.tag(); break;
      case 1: (void)p.atom(); break;
      case 2: (void)p.astring(); break;
      case 3: (void)p.string(); break;
      case 4: (void)p.nstring(); break;
      case 5: (void)p.flag_list(); break;
      case 6: {
        auto s = p.sequence_set();
        if (s) (void)s->contains(5, 10);
        break;
      }
      case 7: (void)p.number(); break;
      case 8: (void)p.skip_value(); break;
      case 9: (void)p.literal(); break;
      case 10: (void)p.item_name(); break;
      case 11: (void)imap::parse_qresync_params(p); break;
      default: (void)p.space(); break;
    }
    if (p.pos() < before || p.pos() > in.size()) __builtin_trap();
    (void)p.rest();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  fuzz_primitives(in);

  static FuzzStore store;
  static ImapConfig config;
  static imap::AuthCache cache;
  static bool seeded = [] {
    cache.remember(imap::AuthCache::key("joe@example.com", "pw", "$argon2id$stub"));
    return true;
  }();
  (void)seeded;
  imap::SessionEnv env;
  env.store = &store;
  env.config = &config;
  env.auth_cache = &cache;
  env.loopback = true;
  imap::Session s(env);
  std::string out = s.greeting();
  s.handle("a LOGIN joe@example.com pw\r\n", out);
  s.handle("b SELECT INBOX\r\n", out);
  if (s.state() != imap::State::selected) __builtin_trap();

  // Split the rest into commands the way the server does.
  size_t pos = 0;
  int commands = 0;
  while (pos < in.size() && s.state() != imap::State::logout && ++commands < 64) {
    std::string cmd;
    while (pos < in.size()) {
      size_t nl = in.find('\n', pos);
      size_t end = nl == std::string_view::npos ? in.size() : nl + 1;
      std::string_view line = in.substr(pos, end - pos);
      cmd.append(line);
      pos = end;
      std::string_view body = line;
      while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.remove_suffix(1);
      auto lit = imap::literal_at_end(body);
      if (!lit || nl == std::string_view::npos) break;
      size_t n = static_cast<size_t>(std::min<uint64_t>(lit->size, in.size() - pos));
      cmd.append(in.substr(pos, n));
      pos += n;
    }
    out.clear();
    if (s.wants_continuation()) s.handle_continuation(cmd, out);
    else s.handle(cmd, out);
    if (out.empty() && !s.wants_continuation()) __builtin_trap();  // every command gets an answer
  }
  return 0;
}
