// One IMAP connection's protocol state: authentication, the selected mailbox
// and its message-sequence-number map. Pure protocol logic over a Store; the
// server (server.h) does the socket I/O and hands it complete commands.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/password.h"
#include "config/config.h"
#include "imap/parser.h"
#include "store/store.h"

namespace mail::mime {
struct Summary;
}

namespace mail::imap {

// Verified (user, password-hash) pairs, so repeat logins skip the slow KDF.
// Keyed by a hash of user, password and the stored hash: a changed password or
// hash never matches an old entry.
class AuthCache {
 public:
  // The cache key of a verified login: a SHA-256 over user, password and hash.
  static std::string key(const std::string& user, const std::string& password, const std::string& hash);
  bool check(const std::string& key);
  void remember(const std::string& key);

 private:
  std::mutex mu_;
  std::set<std::string> keys_;
};

// Failed-login throttle per client address.
class AuthThrottle {
 public:
  // Seconds to wait before answering a failure from `ip`.
  unsigned failure(const std::string& ip);
  void success(const std::string& ip);

 private:
  std::mutex mu_;
  std::map<std::string, unsigned> failures_;
};

// \Recent (IMAP4rev1): a message is recent in the first session that sees it
// with the mailbox selected read-write. Per process, as RFC 3501 allows losing
// it on restart: per mailbox the lowest UID no session has claimed yet.
class RecentTracker {
 public:
  // Claims UIDs below `uidnext` for the caller; returns the first it got.
  store::Uid claim(store::MailboxId mailbox, store::Uid uidnext);
  // The first unclaimed UID, without claiming (EXAMINE, STATUS).
  store::Uid first(store::MailboxId mailbox);

 private:
  std::mutex mu_;
  std::map<store::MailboxId, store::Uid> first_;
};

struct SessionEnv {
  store::Store* store = nullptr;
  const ImapConfig* config = nullptr;
  AuthCache* auth_cache = nullptr;
  AuthThrottle* throttle = nullptr;
  RecentTracker* recent = nullptr;  // null: no message is \Recent
  std::string peer_ip;
  bool loopback = false;
  bool tls = false;                 // the connection is encrypted
  bool starttls_available = false;  // STARTTLS may be offered (a certificate is configured)
  // Called (from a store thread) when the account changed: the server wakes the session.
  std::function<void()> wake;
  // Sends output early (a long FETCH): false when the connection is gone.
  // Unset, a command's whole output is returned at once.
  std::function<bool(std::string_view)> flush;
};

enum class State { not_authenticated, authenticated, selected, logout };

class Session {
 public:
  explicit Session(SessionEnv env);
  ~Session();

  std::string greeting();
  // Handles one complete command (line plus inline literals, ending in CRLF);
  // appends the responses to `out`.
  void handle(std::string_view command, std::string& out);
  // A continuation line while one is expected (IDLE's DONE, AUTHENTICATE data).
  bool wants_continuation() const { return idling_ || auth_pending_; }
  void handle_continuation(std::string_view line, std::string& out);
  // The store changed: during IDLE, send the updates.
  void on_wake(std::string& out);
  // STARTTLS was accepted: the server must start TLS before reading on, then
  // call tls_started().
  bool starttls_pending() const { return starttls_pending_; }
  void tls_started();
  // COMPRESS DEFLATE was accepted: the server compresses from the next byte on.
  bool compress_pending() const { return compress_pending_; }
  void compress_started() { compress_pending_ = false; }
  State state() const { return state_; }
  bool idling() const { return idling_; }

 private:
  friend struct Cmd;
  struct Selected {
    store::MailboxInfo info;
    std::vector<store::MessageEntry> msgs;  // index + 1 is the sequence number
    bool read_only = false;
    std::vector<store::Uid> saved;  // SEARCHRES
    store::ModSeq known_modseq = 0;          // changes up to here are in msgs
    std::vector<store::Uid> pending_expunge;  // expunged, not yet reported (sorted)
    std::set<store::Uid> recent;              // \Recent in this session (IMAP4rev1 only)
    // Index of `uid` in msgs (ascending uids), or msgs.size() when absent.
    size_t index_of(store::Uid uid) const;
    // Stores the entries the store returned after our flag change; marks their
    // indexes in `changed`. When nothing else changed the mailbox meanwhile,
    // known_modseq moves past our change, so sync() need not list it again.
    void apply_updates(const store::FlagsUpdateResp& r, std::vector<bool>& changed);
  };
  // Claims \Recent for messages from index `from` on (a read-write selection).
  void claim_recent(size_t from);
  // CONDSTORE enabled by a command that uses it (RFC 7162 3.1): the first
  // time, a HIGHESTMODSEQ response tells the client where it starts.
  void enable_condstore(std::string& out);

  // QRESYNC (RFC 7162 3.2): after a SELECT whose UIDVALIDITY matched, the
  // expunges (VANISHED (EARLIER)) and changes since the client's modseq.
  void qresync_select(const QresyncParams& q, std::string& out);
  // UIDs of the selected mailbox expunged after `since` (the store keeps a
  // tombstone per expunge) and already reported to this session, restricted
  // to `within` (UIDs; '*' is the highest) when given.
  std::vector<store::Uid> expunged_since(store::ModSeq since, const SeqSet* within);

  void dispatch(const std::string& tag, const std::string& name, Parser& p, std::string& out, bool uid);
  // Brings the sequence map up to date with the store, writing EXISTS, EXPUNGE
  // and FETCH FLAGS updates. Expunges only when the command allows it.
  void sync(std::string& out, bool allow_expunge);

  // commands
  void cmd_capability(const std::string& tag, Parser& p, std::string& out);
  void cmd_login(const std::string& tag, Parser& p, std::string& out);
  void cmd_authenticate(const std::string& tag, Parser& p, std::string& out);
  void cmd_enable(const std::string& tag, Parser& p, std::string& out);
  void cmd_id(const std::string& tag, Parser& p, std::string& out);
  void cmd_namespace(const std::string& tag, Parser& p, std::string& out);
  void cmd_select(const std::string& tag, Parser& p, std::string& out, bool examine);
  void cmd_create(const std::string& tag, Parser& p, std::string& out);
  void cmd_delete(const std::string& tag, Parser& p, std::string& out);
  void cmd_rename(const std::string& tag, Parser& p, std::string& out);
  void cmd_subscribe(const std::string& tag, Parser& p, std::string& out, bool on);
  void cmd_list(const std::string& tag, Parser& p, std::string& out, bool lsub);
  void cmd_status(const std::string& tag, Parser& p, std::string& out);
  void cmd_append(const std::string& tag, Parser& p, std::string& out);
  void cmd_replace(const std::string& tag, Parser& p, std::string& out, bool uid);
  void cmd_close(const std::string& tag, Parser& p, std::string& out, bool expunge);
  void cmd_expunge(const std::string& tag, Parser& p, std::string& out, bool uid);
  void cmd_search(const std::string& tag, Parser& p, std::string& out, bool uid);
  void cmd_sort(const std::string& tag, Parser& p, std::string& out, bool uid);
  void cmd_thread(const std::string& tag, Parser& p, std::string& out, bool uid);
  // SEARCH keys up to the end of the command (shared by SEARCH, SORT, THREAD):
  // the matching message indexes, ascending; nullopt with p.error() set on bad syntax.
  struct SearchHits {
    std::vector<size_t> hits;
    bool uses_modseq = false;
    std::string failure;  // a message could not be read: the tagged NO to answer
  };
  std::optional<SearchHits> search_keys(Parser& p);
  // SORT's and THREAD's "SP charset SP search-keys" (RFC 5256): the hits, or
  // nullopt once BAD or NO [BADCHARSET] is in `out`.
  std::optional<SearchHits> charset_and_search_keys(const std::string& tag, Parser& p, std::string& out,
                                                    const std::string& command);
  // Calls `fn(index, summary)` for the messages at `idx`, in order, reading the
  // stored summaries a chunk per store request (parsing a message that has none).
  static constexpr size_t kSummaryChunk = 512;  // bounds the size of one reply
  // `fields` (mime::summary_field bits, summary_fields.h): the ones read
  // from the store; the others are left empty. All by default.
  void for_each_summary(const std::vector<size_t>& idx, const std::function<void(size_t, mime::Summary&)>& fn,
                        uint32_t fields = ~0u);
  // The stored summaries of messages idx[from, from + n) in one store request
  // (empty where a message has none); safe to run on another thread.
  std::vector<std::optional<mime::Summary>> load_summaries(const std::vector<size_t>& idx, size_t from, size_t n,
                                                           uint32_t fields = ~0u);
  // The contents of messages idx[from, from + n) in as few store requests as
  // fit a frame; an item whose code is not ok was not read (not_found:
  // expunged meanwhile). Safe to run on another thread.
  std::vector<store::ContentItem> load_contents(const std::vector<size_t>& idx, size_t from, size_t n);
  std::vector<store::ContentItem> load_content_range(const std::vector<size_t>& idx, size_t from, size_t n);
  // Messages read ahead at a time (FETCH, SEARCH BODY): bounds one reply.
  static constexpr uint64_t kContentChunkBytes = 4 << 20;
  void cmd_fetch(const std::string& tag, Parser& p, std::string& out, bool uid);
  void cmd_store(const std::string& tag, Parser& p, std::string& out, bool uid);
  void cmd_copy(const std::string& tag, Parser& p, std::string& out, bool uid, bool move);
  void cmd_idle(const std::string& tag, Parser& p, std::string& out);
  void cmd_quota(const std::string& tag, const std::string& name, Parser& p, std::string& out);
  void cmd_unauthenticate(const std::string& tag, Parser& p, std::string& out);
  void cmd_compress(const std::string& tag, Parser& p, std::string& out);
  std::string quota_line();
  // STATUS DELETED-STORAGE: bytes of the messages marked \Deleted.
  uint64_t deleted_storage(store::MailboxId mailbox);
  uint64_t recent_count(const store::MailboxInfo& mb);

  bool finish_auth(const std::string& tag, const std::string& user, const std::string& pass,
                   std::string& out);
  void handle_auth_response(std::string_view line, std::string& out);
  void auth_failed(const std::string& tag, const std::string& user, std::string& out);
  void logged_in(const std::string& tag, const store::AccountInfo& account, std::string& out);
  std::string status_items(const store::MailboxInfo& mb, const std::vector<std::string>& items);
  std::string capabilities() const;
  bool plaintext_allowed() const;  // LOGIN / AUTH=PLAIN on this connection
  bool utf8_names() const;
  std::string mailbox_from_imap(const std::string& imap_name) const;
  std::string mailbox_to_imap(const std::string& name) const;
  // Message indexes (0-based) a set names; `uid` says whether it holds UIDs.
  std::vector<size_t> resolve(const SeqSet& set, bool uid) const;
  // The flag list of a FETCH response: (\Seen \Flagged ...).
  void append_flags(std::string& out, const store::MessageEntry& m) const;
  // The start of a FETCH response: "* N FETCH (", or "* UID UIDFETCH (" after
  // ENABLE UIDONLY (RFC 9586), where no response carries a sequence number.
  void append_fetch_head(std::string& out, size_t index) const;
  void fetch_flags_line(std::string& out, size_t index, bool with_uid) const;

  SessionEnv env_;
  State state_ = State::not_authenticated;
  store::AccountInfo account_;
  std::optional<Selected> sel_;
  bool rev2_ = false;
  bool condstore_ = false;
  bool qresync_ = false;
  bool utf8_ = false;
  bool uidonly_ = false;  // RFC 9586: UIDs only, in commands and responses
  bool idling_ = false;
  std::string idle_tag_;
  bool starttls_pending_ = false;
  bool compress_pending_ = false;
  bool compressed_ = false;
  bool auth_pending_ = false;
  std::string auth_tag_;
  std::string auth_mech_;                     // PLAIN or SCRAM-SHA-256 while auth_pending_
  std::unique_ptr<ScramServer> scram_;
  std::optional<store::AccountInfo> scram_account_;  // set by the SCRAM lookup
  std::unique_ptr<store::Subscription> subscription_;
};

// The tagged NO (without the tag) for a message that could not be read.
std::string content_failure(const store::ContentItem& item, store::Uid uid);

// "17-Jul-1996 02:44:25 -0700" <-> unix time.
std::string format_internal_date(int64_t t);
std::optional<int64_t> parse_internal_date(std::string_view s);
// "1-Feb-1994" (SEARCH dates): the day's start, UTC.
std::optional<int64_t> parse_search_date(std::string_view s);

}  // namespace mail::imap
