// Fuzzes a whole SMTP session (framing, DATA dot-unstuffing, BDAT chunks, AUTH
// exchanges, LMTP replies, delivery) over an in-memory stand-in for the store.
// The first byte picks the mode; the rest is cut into reads at 0xfe bytes, so
// the fuzzer also explores how commands and chunks split across reads.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/log.h"
#include "smtp/session.h"
#include "store/store.h"

namespace {

using namespace mail;
using namespace mail::store;

// example.com is local: "joe" is account 1, anything else is unknown; other
// domains are remote. Delivery succeeds (account 2 is over quota); every other
// operation fails.
class FakeStore final : public Store {
 public:
#define MAIL_FAKE_OP(code, name, Req, Resp) \
  Result<Resp> name(const Req& req) override { return answer(req, static_cast<Resp*>(nullptr)); }
  MAIL_STORE_OPS(MAIL_FAKE_OP)
#undef MAIL_FAKE_OP

  Result<std::unique_ptr<Subscription>> subscribe(AccountId, ChangeHandler) override {
    return error(Code::unavailable, "fake");
  }
  std::string backend_name() const override { return "fake"; }

 private:
  template <class Req, class Resp>
  Result<Resp> answer(const Req&, Resp*) {
    return error(Code::unavailable, "fake");
  }
  Result<ResolveResp> answer(const ResolveReq& req, ResolveResp*) {
    ResolveResp r;
    size_t at = req.address.rfind('@');
    std::string domain = at == std::string::npos ? "" : req.address.substr(at + 1);
    if (domain != "example.com") {
      r.kind = ResolveKind::remote_domain;
    } else if (req.address.rfind("joe", 0) == 0) {
      r.kind = ResolveKind::local;
      r.accounts = {1};
    } else if (req.address.rfind("full", 0) == 0) {
      r.kind = ResolveKind::local;
      r.accounts = {2};
    } else if (req.address.rfind("list", 0) == 0) {
      r.kind = ResolveKind::local;
      r.accounts = {1, 2};
      r.forwards = {"far@remote.example"};
    }
    return r;
  }
  Result<DeliverResp> answer(const DeliverReq& req, DeliverResp*) {
    DeliverResp r;
    r.content = 1;
    for (const auto& t : req.targets) {
      DeliveryResult d;
      if (t.account == 2 && t.enforce_quota) d.code = Code::quota;
      r.results.push_back(d);
    }
    if (req.queue) r.queued = 1;
    return r;
  }
  Result<AccountAuthResp> answer(const AccountRef& req, AccountAuthResp*) {
    if (req.address != "joe@example.com") return error(Code::not_found, "no such account");
    AccountAuthResp r;
    r.account.id = 1;
    r.account.address = req.address;
    r.credentials.password_hash = "$argon2id$not-a-real-hash";  // never verifies: no slow KDF in the fuzzer
    return r;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static FakeStore store;
  static SmtpConfig config = [] {
    SmtpConfig c;
    c.max_message_size = 4096;
    c.max_line_length = 256;
    c.max_recipients = 4;
    return c;
  }();
  static smtp::AuthThrottle throttle;
  static const bool quiet = [] {
    log::set_level(log::Level::error);  // a log line per message would slow the fuzzer down
    return true;
  }();
  (void)quiet;
  if (size == 0) return 0;
  smtp::SessionEnv env;
  env.store = &store;
  env.config = &config;
  env.mode = static_cast<smtp::Mode>(data[0] % 3);
  env.hostname = "mx.example.com";
  env.peer_ip = "192.0.2.1";
  env.loopback = data[0] & 4;
  env.tls = data[0] & 8;
  env.starttls_available = true;
  env.throttle = &throttle;
  env.delay = [](unsigned) {};
  env.now = [] { return int64_t{1800000000}; };
  smtp::Session session(std::move(env));
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string out;
  while (!in.empty() && !session.closed()) {
    size_t cut = in.find('\xfe');
    std::string_view piece = in.substr(0, cut);
    in = cut == std::string_view::npos ? std::string_view() : in.substr(cut + 1);
    out.clear();
    session.feed(piece, out);
    // Every reply line is "ddd[ -]..." and ends in CRLF.
    for (size_t pos = 0; pos < out.size();) {
      size_t end = out.find("\r\n", pos);
      if (end == std::string::npos || end - pos < 4 || (out[pos + 3] != ' ' && out[pos + 3] != '-')) __builtin_trap();
      pos = end + 2;
    }
    if (session.starttls_pending()) session.tls_started("TLSv1.3 with cipher TEST");
  }
  return 0;
}
