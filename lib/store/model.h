// The data model of the store: what every backend keeps and every client sees.
// These structs are also the stored record values (see docs/STORE.md), encoded
// with base/codec.h; fields are only ever appended.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/codec.h"
#include "base/status.h"

namespace mail::store {

using AccountId = uint64_t;
using MailboxId = uint64_t;
using ContentId = uint64_t;
using QueueId = uint64_t;
using Uid = uint32_t;
using ModSeq = uint64_t;
using UnixTime = int64_t;  // seconds since the epoch

// Quota limits; 0 means unlimited.
struct Quota {
  uint64_t max_bytes = 0;
  uint64_t max_messages = 0;
  MAIL_FIELDS(max_bytes, max_messages)
};

struct DomainInfo {
  std::string name;  // canonical: lower-case A-label (IDNA2008)
  UnixTime created = 0;
  uint64_t accounts = 0;  // filled in by listings
  uint64_t aliases = 0;   // filled in by listings
  MAIL_FIELDS(name, created, accounts, aliases)
};

// SCRAM-SHA-256 (RFC 5802/7677) verifier: lets SCRAM logins work without the plaintext.
struct ScramCredential {
  std::string salt;        // raw bytes
  uint32_t iterations = 0;
  std::string stored_key;  // raw 32 bytes
  std::string server_key;  // raw 32 bytes
  MAIL_FIELDS(salt, iterations, stored_key, server_key)
};

struct Credentials {
  std::string password_hash;  // argon2id, libsodium's encoded string ("$argon2id$...")
  ScramCredential scram;
  MAIL_FIELDS(password_hash, scram)
};

struct AccountInfo {
  AccountId id = 0;
  std::string address;       // canonical local@domain
  std::string display_name;
  UnixTime created = 0;
  Quota quota;
  uint64_t used_bytes = 0;
  uint64_t used_messages = 0;
  bool disabled = false;
  ModSeq state = 0;  // the account's highest modseq: JMAP state, changes since
  MAIL_FIELDS(id, address, display_name, created, quota, used_bytes, used_messages, disabled, state)
};

// source is "local@domain", or "@domain" for the domain's catch-all.
struct AliasInfo {
  std::string source;
  std::vector<std::string> targets;  // canonical addresses, local or remote
  MAIL_FIELDS(source, targets)
};

enum class SpecialUse : uint8_t { none = 0, sent, drafts, trash, junk, archive, all, flagged };

struct MailboxInfo {
  MailboxId id = 0;
  AccountId account = 0;
  std::string name;  // full hierarchical name, '/' separated, UTF-8; "INBOX" is INBOX
  SpecialUse special_use = SpecialUse::none;
  bool subscribed = false;
  uint32_t uidvalidity = 0;
  Uid uidnext = 1;
  ModSeq highest_modseq = 0;
  uint32_t messages = 0;
  uint32_t unseen = 0;
  uint64_t bytes = 0;
  uint32_t deleted = 0;  // messages carrying \Deleted
  MAIL_FIELDS(id, account, name, special_use, subscribed, uidvalidity, uidnext, highest_modseq,
              messages, unseen, bytes, deleted)
};

// System flags as bits; other flags are keywords.
namespace flag {
constexpr uint32_t seen = 1u << 0;
constexpr uint32_t answered = 1u << 1;
constexpr uint32_t flagged = 1u << 2;
constexpr uint32_t deleted = 1u << 3;
constexpr uint32_t draft = 1u << 4;
}  // namespace flag

// One message in one mailbox. Small on purpose: listing a mailbox reads only these.
struct MessageEntry {
  Uid uid = 0;
  ModSeq modseq = 0;
  uint32_t flags = 0;
  std::vector<std::string> keywords;
  UnixTime internal_date = 0;
  uint64_t size = 0;       // RFC822.SIZE
  ContentId content = 0;   // also the EMAILID (same for every copy)
  uint64_t thread = 0;     // THREADID; 0 until threading exists
  MAIL_FIELDS(uid, modseq, flags, keywords, internal_date, size, content, thread)
};

// Parsed facts about a message kept beside its content so FETCH of ENVELOPE,
// BODYSTRUCTURE and headers does not re-read the message. `summary` is opaque to
// the store; the mime layer defines and encodes it.
struct ContentMeta {
  ContentId id = 0;
  uint64_t size = 0;
  uint32_t refs = 0;
  std::string summary;
  MAIL_FIELDS(id, size, refs, summary)
};

// ---- outbound queue -------------------------------------------------------

enum class QueueState : uint8_t { queued = 0, deferred, held, delivered, bounced };
enum class RecipientState : uint8_t { pending = 0, delivered, failed, deferred };

// DSN NOTIFY bits (RFC 3461); 0 means the parameter was not given.
namespace notify {
constexpr uint8_t never = 1u << 0;
constexpr uint8_t success = 1u << 1;
constexpr uint8_t failure = 1u << 2;
constexpr uint8_t delay = 1u << 3;
}  // namespace notify

struct QueueRecipient {
  std::string address;
  std::string orcpt;      // ORCPT as given (addr-type;xtext), may be empty
  uint8_t notify = 0;
  RecipientState state = RecipientState::pending;
  std::string last_reply; // the remote's last answer, for DSNs and `queue show`
  bool delay_reported = false;  // a NOTIFY=DELAY report was sent (only one is)
  MAIL_FIELDS(address, orcpt, notify, state, last_reply, delay_reported)
};

struct QueueEntry {
  QueueId id = 0;
  std::string sender;  // envelope sender; empty for the null sender
  std::vector<QueueRecipient> recipients;
  ContentId content = 0;
  uint64_t size = 0;
  UnixTime created = 0;
  UnixTime next_attempt = 0;  // FUTURERELEASE sets this to the release time
  uint32_t attempts = 0;
  QueueState state = QueueState::queued;
  std::string envid;          // DSN ENVID
  uint8_t ret = 0;            // DSN RET: 0 unset, 1 FULL, 2 HDRS
  UnixTime deliver_by = 0;    // DELIVERBY deadline, 0 if none
  bool require_tls = false;   // REQUIRETLS
  bool smtputf8 = false;
  uint8_t body_type = 0;      // 0 7bit, 1 8bitmime, 2 binarymime
  AccountId submitter = 0;    // account that submitted it (0: relayed/forwarded)
  std::string last_error;
  MAIL_FIELDS(id, sender, recipients, content, size, created, next_attempt, attempts, state, envid,
              ret, deliver_by, require_tls, smtputf8, body_type, submitter, last_error)
};

// ---- change notifications ---------------------------------------------------

enum class ChangeKind : uint8_t { appended = 0, flags, expunged, mailbox };

struct ChangeEvent {
  AccountId account = 0;
  MailboxId mailbox = 0;
  ChangeKind kind = ChangeKind::appended;
  ModSeq modseq = 0;
  std::vector<Uid> uids;
  MAIL_FIELDS(account, mailbox, kind, modseq, uids)
};

}  // namespace mail::store
