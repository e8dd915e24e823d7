// One SMTP, submission or LMTP connection's protocol state, independent of
// sockets: bytes go in (feed), replies come out. The server (server.h) owns the
// socket, TLS, timeouts and per-IP limits and drives a Session; tests drive it
// directly.
//
// What a session does, in order, for one message:
//   MAIL     checks the sender (syntax, SMTPUTF8, ownership when authenticated)
//   RCPT     resolves each recipient with the store (account, +detail, alias,
//            catch-all): unknown local users get 550 5.1.1 here, so nothing is
//            ever bounced later; remote recipients need AUTH (no open relay);
//            a full mailbox gets 452 4.2.2 (552 5.2.2 if the message alone is
//            larger than the quota)
//   DATA/BDAT  receives the content (dot-unstuffing, size limit, bare CR/LF
//            and NUL rejected unless BODY=BINARYMIME over BDAT)
//   then     adds Return-Path, Delivered-To and Received, runs the filters
//            (MessageFilter below), and delivers with one Store::deliver: one
//            copy of the content, every local mailbox, and an outbound queue
//            entry (with the DSN/REQUIRETLS/FUTURERELEASE/DELIVERBY parameters)
//            for remote recipients. The 250 is sent only after deliver returned,
//            i.e. after the store's fsync.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/password.h"
#include "config/config.h"
#include "smtp/command.h"
#include "store/store.h"

namespace mail::smtp {

enum class Mode {
  mx,          // inbound from the internet: local recipients, AUTH optional
  submission,  // the domain's users: AUTH required, sender ownership checked
  lmtp,        // RFC 2033: LHLO, local recipients only, one reply per recipient after DATA
};

std::string_view mode_name(Mode mode);

// Failed logins per client address and per account, shared by all sessions of
// a server. The delay grows with the failures and decays after a quiet period.
class AuthThrottle {
 public:
  // Records a failure; returns the delay (ms) to wait before answering it.
  unsigned failure(const std::string& ip, const std::string& account);
  void success(const std::string& ip, const std::string& account);
  // Failures on record (within the decay window) for this address or account.
  unsigned failures(const std::string& ip, const std::string& account);

 private:
  struct Entry {
    unsigned count = 0;
    int64_t last = 0;
  };
  unsigned get(std::map<std::string, Entry>& map, const std::string& key, int64_t now);
  std::mutex mu_;
  std::map<std::string, Entry> by_ip_;
  std::map<std::string, Entry> by_account_;
};

// An envelope recipient accepted at RCPT, with what it resolved to.
struct Recipient {
  std::string address;  // canonical, as given (with +detail)
  RcptParams params;
  std::vector<store::AccountId> accounts;  // local mailboxes
  std::vector<std::string> remote;         // remote addresses: the recipient itself, or alias forwards
  std::string detail;                      // +detail, if any
  uint64_t quota_bytes = 0;                // the storage quota, when known at RCPT (0: none/unknown)
};

// What a filter sees of the connection and the envelope.
struct FilterContext {
  Mode mode = Mode::mx;
  std::string peer_ip;
  std::string helo;
  bool tls = false;
  std::string auth_user;              // authenticated account address, "" if none
  store::AccountId auth_account = 0;
  std::string sender;                 // canonical; "" for the null sender
  const MailParams* params = nullptr;
  const std::vector<Recipient>* recipients = nullptr;
};

// Where one account's copy goes; filters may change it (Sieve fileinto, spam to Junk).
struct Placement {
  std::string mailbox;                // "" : INBOX; a mailbox that does not exist falls back to INBOX
  uint32_t flags = 0;                 // store::flag bits
  std::vector<std::string> keywords;  // e.g. "$Junk"
  bool discard = false;               // drop this account's copy (Sieve discard)
};

struct FilterResult {
  enum class Action {
    accept,   // go on with the next filter, then deliver
    reject,   // answer `reply` (4xx: the client retries later; 5xx: refused); nothing is stored
    discard,  // answer 250 but store nothing (the message is dropped on purpose)
  };
  Action action = Action::accept;
  Reply reply;
  // Header fields to put on top of the message, each ending in CRLF
  // ("Authentication-Results: ...\r\n", "X-Spam-Score: ...\r\n").
  std::string prepend;
  // Byte ranges [first, second) of `message` to cut before `prepend` goes on top
  // (forged header fields), ascending and not overlapping.
  std::vector<std::pair<size_t, size_t>> remove;
  // Per local account: where its copy goes. Accounts not listed keep their placement.
  std::map<store::AccountId, Placement> placement;
};

// A stage of the message pipeline. Filters run in order, on the session's
// thread, after the message is complete and its trace headers are added and
// before anything is stored or answered; the first reject or discard ends the
// pipeline. Mail authentication (SPF/DKIM/DMARC/ARC), spam scoring and Sieve at
// delivery are filters. A filter must be thread-safe (sessions run
// concurrently) and should be fast: the client waits for the final reply.
// `message` is the content as it will be stored (CRLF line ends), including the
// header fields added by the filters before it.
class MessageFilter {
 public:
  virtual ~MessageFilter() = default;
  virtual std::string_view name() const = 0;
  virtual FilterResult run(const FilterContext& context, std::string_view message) = 0;
};

struct SessionEnv {
  store::Store* store = nullptr;
  const SmtpConfig* config = nullptr;
  Mode mode = Mode::mx;
  std::string hostname = "localhost";  // our name: greeting, EHLO, Received
  std::string peer_ip;                 // "" for Unix sockets
  std::string peer_name;               // for Received; defaults to the IP
  bool loopback = false;
  bool tls = false;                    // the connection is encrypted (implicit TLS)
  std::string tls_info;                // "TLSv1.3 with cipher ..." for Received
  bool starttls_available = false;     // a certificate is configured
  AuthThrottle* throttle = nullptr;
  std::vector<MessageFilter*> filters;
  // Waits before answering a failed AUTH; tests pass a no-op.
  std::function<void(unsigned ms)> delay;
  // Seconds since the epoch; tests may fix it.
  std::function<int64_t()> now;
};

class Session {
 public:
  explicit Session(SessionEnv env);
  ~Session();

  // The 220 greeting (to send first).
  std::string greeting() const;
  // The reply for a client that talked before the greeting (then close).
  std::string early_talker_reply() const;
  // The reply for a timeout or a server shutdown (then close).
  std::string timeout_reply() const;
  std::string shutdown_reply() const;

  // Handles received bytes, appending every reply to `out`. Incomplete lines
  // and chunks are kept for the next call. Stops early once the session is
  // closed or STARTTLS was accepted (the rest of the input is discarded, as
  // RFC 3207 requires).
  void feed(std::string_view bytes, std::string& out);

  // The connection must be closed after `out` is written (QUIT, fatal errors).
  bool closed() const { return closed_; }
  // STARTTLS was accepted: write `out`, do the TLS handshake, then call
  // tls_started() (or close the connection if the handshake failed).
  bool starttls_pending() const { return starttls_pending_; }
  void tls_started(std::string tls_info);
  // Receiving message content (the data timeout applies instead of the command timeout).
  bool in_data() const;

  // For logs and tests.
  const std::string& auth_user() const { return auth_user_; }
  uint64_t messages_accepted() const { return messages_accepted_; }

 private:
  enum class Phase { command, data, bdat, auth };

  void process(std::string& out);
  void command_line(std::string_view line, std::string& out);
  void reply(std::string& out, int code, std::string_view enhanced, std::string_view text);
  void reset_transaction();
  bool count_junk(std::string& out);

  void cmd_helo(const Command& c, std::string& out);
  void cmd_mail(const Command& c, std::string& out);
  void cmd_rcpt(const Command& c, std::string& out);
  std::string postmaster_address();
  void cmd_data(const Command& c, std::string& out);
  void cmd_bdat(const Command& c, std::string& out);
  void cmd_vrfy(const Command& c, std::string& out);
  void cmd_starttls(const Command& c, std::string& out);
  void cmd_auth(const Command& c, std::string& out);
  void auth_line(std::string_view line, std::string& out);
  void auth_step(std::string_view response, std::string& out);
  // `user` by value: callers pass strings owned by state this resets (scram_).
  void auth_done(bool ok, std::string user, std::string& out);
  bool auth_allowed() const;
  std::string ehlo_reply() const;

  bool data_bytes(std::string& out);   // DATA phase; false: need more input
  bool bdat_bytes(std::string& out);   // BDAT phase; false: need more input
  void append_content(std::string_view text, bool check_line);
  void finish_message(std::string& out);
  std::string trace_headers() const;
  std::string received_header() const;
  int64_t now() const;

  static constexpr int64_t kMaxHoldSeconds = 7 * 86400;  // FUTURERELEASE: one week

  SessionEnv env_;
  std::string in_;
  size_t in_pos_ = 0;
  bool closed_ = false;
  bool starttls_pending_ = false;
  bool skipping_long_line_ = false;
  Phase phase_ = Phase::command;

  // Connection state.
  bool tls_ = false;
  std::string tls_info_;
  std::string helo_;
  bool esmtp_ = false;
  std::string auth_user_;
  store::AccountId auth_account_ = 0;
  unsigned auth_failures_ = 0;
  unsigned junk_ = 0;
  int last_code_ = 0;  // of the last reply, for counting errors
  uint64_t messages_accepted_ = 0;
  std::map<store::AccountId, int64_t> unlimited_until_;  // accounts without quota, until when

  // AUTH exchange in progress.
  std::string auth_mech_;
  std::string auth_login_user_;
  std::unique_ptr<ScramServer> scram_;
  bool scram_final_sent_ = false;

  // Transaction state.
  bool have_mail_ = false;
  std::string sender_;
  MailParams mail_;
  int64_t mail_time_ = 0;
  std::vector<Recipient> rcpts_;
  std::string content_;
  uint64_t content_size_ = 0;  // bytes received, also past the limit
  bool bad_bare_lf_ = false;
  bool bad_bare_cr_ = false;
  bool bad_nul_ = false;
  bool at_line_start_ = true;
  bool pending_cr_ = false;     // BDAT: the previous chunk ended in CR
  bool bdat_active_ = false;    // a BDAT sequence has begun
  bool bdat_failed_ = false;    // a chunk failed: drain the rest and reply the error
  Reply bdat_error_;
  uint64_t bdat_remaining_ = 0;
  bool bdat_last_ = false;
  std::string queue_id_;
};

}  // namespace mail::smtp
