// The store's operations: one request and one response struct per operation,
// and one table (MAIL_STORE_OPS) that the interface, the local protocol's client
// and server dispatch are all generated from. Adding an operation means adding
// its structs, one table line, and its implementation in each backend.
//
// Opcodes are part of the wire protocol (docs/PROTOCOL.md): never reuse or
// renumber one; retire it instead.
#pragma once

#include <string>
#include <vector>

#include "store/model.h"

namespace mail::store {

struct Empty {
  MAIL_FIELDS()
};

// ---- domains ---------------------------------------------------------------
struct DomainAddReq {
  std::string name;
  MAIL_FIELDS(name)
};
struct DomainRemoveReq {
  std::string name;
  MAIL_FIELDS(name)
};
struct DomainListResp {
  std::vector<DomainInfo> domains;
  MAIL_FIELDS(domains)
};

// ---- accounts --------------------------------------------------------------
struct AccountAddReq {
  std::string address;
  Credentials credentials;
  Quota quota;
  std::string display_name;
  MAIL_FIELDS(address, credentials, quota, display_name)
};
struct AccountRef {
  std::string address;
  MAIL_FIELDS(address)
};
struct AccountListReq {
  std::string domain;  // empty: all domains
  MAIL_FIELDS(domain)
};
struct AccountListResp {
  std::vector<AccountInfo> accounts;
  MAIL_FIELDS(accounts)
};
struct AccountPasswordReq {
  std::string address;
  Credentials credentials;
  MAIL_FIELDS(address, credentials)
};
struct QuotaSetReq {
  std::string address;
  Quota quota;
  MAIL_FIELDS(address, quota)
};
// What a login needs: the account and its verifiers. Never listed, never logged.
struct AccountAuthResp {
  AccountInfo account;
  Credentials credentials;
  MAIL_FIELDS(account, credentials)
};

// ---- aliases ---------------------------------------------------------------
struct AliasAddReq {
  std::string source;                // "local@domain" or "@domain" (catch-all)
  std::vector<std::string> targets;  // added to any existing targets
  MAIL_FIELDS(source, targets)
};
struct AliasRemoveReq {
  std::string source;
  std::vector<std::string> targets;  // empty: remove the whole alias
  MAIL_FIELDS(source, targets)
};
struct AliasListReq {
  std::string domain;  // empty: all
  MAIL_FIELDS(domain)
};
struct AliasListResp {
  std::vector<AliasInfo> aliases;
  MAIL_FIELDS(aliases)
};

// ---- recipient resolution ----------------------------------------------------
// Resolves an envelope recipient the way delivery must: exact account, then
// plus-addressing (user+tag@ -> user@), then alias (recursively, lists), then the
// domain's catch-all. Local accounts come back as ids, remote targets as addresses.
struct ResolveReq {
  std::string address;
  MAIL_FIELDS(address)
};
enum class ResolveKind : uint8_t { unknown = 0, local, remote_domain };
struct ResolveResp {
  ResolveKind kind = ResolveKind::unknown;  // unknown: the domain is local, the user is not
  std::vector<AccountId> accounts;          // local mailboxes to deliver to (deduplicated)
  std::vector<std::string> forwards;        // remote addresses aliases point to
  std::string detail;                       // the +tag, if any
  MAIL_FIELDS(kind, accounts, forwards, detail)
};

// ---- mailboxes ---------------------------------------------------------------
struct MailboxListReq {
  AccountId account = 0;
  MAIL_FIELDS(account)
};
struct MailboxListResp {
  std::vector<MailboxInfo> mailboxes;
  MAIL_FIELDS(mailboxes)
};
struct MailboxRef {
  AccountId account = 0;
  std::string name;
  MAIL_FIELDS(account, name)
};
struct MailboxCreateReq {
  AccountId account = 0;
  std::string name;
  SpecialUse special_use = SpecialUse::none;
  MAIL_FIELDS(account, name, special_use)
};
struct MailboxRenameReq {
  AccountId account = 0;
  std::string from;
  std::string to;  // children move along
  MAIL_FIELDS(account, from, to)
};
struct MailboxSubscribeReq {
  AccountId account = 0;
  std::string name;
  bool subscribed = true;
  MAIL_FIELDS(account, name, subscribed)
};

// ---- messages ------------------------------------------------------------------
struct DeliveryTarget {
  AccountId account = 0;
  MailboxId mailbox = 0;     // 0: by name below
  std::string mailbox_name;  // empty with mailbox 0: INBOX
  uint32_t flags = 0;
  std::vector<std::string> keywords;
  bool enforce_quota = true;
  MAIL_FIELDS(account, mailbox, mailbox_name, flags, keywords, enforce_quota)
};
// Stores one copy of `content` and references it from every target mailbox and
// from the queue entry, in one durable transaction. Targets fail one by one
// (quota, missing mailbox) without failing the others.
struct DeliverReq {
  std::string content;  // the message bytes exactly as received (CRLF)
  std::string summary;  // mime layer's parsed summary (ContentMeta::summary)
  UnixTime internal_date = 0;
  std::vector<DeliveryTarget> targets;
  std::optional<QueueEntry> queue;  // id, content, size filled in by the store
  MAIL_FIELDS(content, summary, internal_date, targets, queue)
};
struct DeliveryResult {
  Code code = Code::ok;
  std::string message;
  MailboxId mailbox = 0;
  uint32_t uidvalidity = 0;
  Uid uid = 0;
  MAIL_FIELDS(code, message, mailbox, uidvalidity, uid)
};
struct DeliverResp {
  ContentId content = 0;
  std::vector<DeliveryResult> results;  // one per target, same order
  QueueId queued = 0;
  MAIL_FIELDS(content, results, queued)
};

// Several deliveries in one durable transaction, applied in order: UIDs in a
// mailbox follow the order of `messages` (an import keeps its source's order)
// and one commit covers them all. With `all_or_nothing` any failed target
// fails the whole batch and nothing is stored (IMAP MULTIAPPEND); otherwise
// each message's targets fail one by one as in `deliver`.
// A client with several batches in flight keeps their order by numbering
// them 0, 1, 2, ... in a lane of its own (a random non-zero order_group).
struct DeliverBatchReq {
  std::vector<DeliverReq> messages;
  bool all_or_nothing = false;
  uint64_t order_group = 0;  // 0: no lane
  uint64_t order_seq = 0;
  MAIL_FIELDS(messages, all_or_nothing, order_group, order_seq)
};
struct DeliverBatchResp {
  std::vector<DeliverResp> messages;  // one per request message, same order
  MAIL_FIELDS(messages)
};

struct MessageListReq {
  MailboxId mailbox = 0;
  Uid uid_min = 1;  // list uids >= uid_min
  Uid uid_max = 0;  // 0: no upper bound
  MAIL_FIELDS(mailbox, uid_min, uid_max)
};
struct MessageListResp {
  MailboxInfo mailbox;
  std::vector<MessageEntry> messages;  // ascending uid
  MAIL_FIELDS(mailbox, messages)
};

enum class FlagMode : uint8_t { set = 0, add, remove };
struct FlagsUpdateReq {
  MailboxId mailbox = 0;
  std::vector<Uid> uids;
  FlagMode mode = FlagMode::add;
  uint32_t flags = 0;
  std::vector<std::string> keywords;
  ModSeq unchanged_since = 0;  // CONDSTORE; 0: unconditional
  MAIL_FIELDS(mailbox, uids, mode, flags, keywords, unchanged_since)
};
struct FlagsUpdateResp {
  std::vector<MessageEntry> updated;  // entries whose flags changed, after the change
  std::vector<Uid> modified;          // failed UNCHANGEDSINCE
  ModSeq highest_modseq = 0;
  // The mailbox's HIGHESTMODSEQ before this update (appended; 0 from older
  // stores): equal to what a session knew, nothing else changed meanwhile and
  // it need not ask `changes` for its own update.
  ModSeq previous_modseq = 0;
  MAIL_FIELDS(updated, modified, highest_modseq, previous_modseq)
};

struct ExpungeReq {
  MailboxId mailbox = 0;
  std::vector<Uid> uids;
  MAIL_FIELDS(mailbox, uids)
};
struct ExpungeResp {
  std::vector<Uid> expunged;
  ModSeq highest_modseq = 0;
  MAIL_FIELDS(expunged, highest_modseq)
};

// IMAP REPLACE (RFC 8508) as one durable transaction: expunges the message
// `uid` of `mailbox` and delivers `message` (exactly one target, no queue
// entry). The expunge comes first, so the quota is checked as if the old
// message were gone; a failed delivery rolls the expunge back too, and a
// missing old message (not_found) stores nothing.
struct ReplaceReq {
  MailboxId mailbox = 0;
  Uid uid = 0;
  DeliverReq message;
  MAIL_FIELDS(mailbox, uid, message)
};
struct ReplaceResp {
  DeliveryResult appended;
  ExpungeResp expunged;
  MAIL_FIELDS(appended, expunged)
};

struct CopyReq {
  MailboxId from = 0;
  std::vector<Uid> uids;
  MailboxId to = 0;
  bool move = false;
  MAIL_FIELDS(from, uids, to, move)
};
struct CopyResp {
  uint32_t uidvalidity = 0;  // of the destination
  std::vector<Uid> source_uids;
  std::vector<Uid> dest_uids;
  MAIL_FIELDS(uidvalidity, source_uids, dest_uids)
};

// CONDSTORE/QRESYNC: what changed in a mailbox after `since`.
struct ChangesReq {
  MailboxId mailbox = 0;
  ModSeq since = 0;
  MAIL_FIELDS(mailbox, since)
};
struct ChangesResp {
  std::vector<MessageEntry> changed;  // current state of changed or new messages
  std::vector<Uid> vanished;          // expunged after `since`
  ModSeq highest_modseq = 0;
  MAIL_FIELDS(changed, vanished, highest_modseq)
};

struct ContentReq {
  ContentId id = 0;
  MAIL_FIELDS(id)
};
struct ContentResp {
  std::string bytes;
  MAIL_FIELDS(bytes)
};
// Many messages' contents in one round trip (IMAP FETCH of bodies, SEARCH
// BODY): read in key order and answered in the order asked, stopping once
// `max_bytes` of content are in (at least one; 0: no limit). A content that
// is gone (expunged meanwhile) or fails its checksum has that code in its
// item; a failure to read the store fails the request.
struct ContentManyReq {
  std::vector<ContentId> ids;
  uint64_t max_bytes = 0;
  MAIL_FIELDS(ids, max_bytes)
};
struct ContentItem {
  Code code = Code::ok;
  std::string bytes;
  std::string message;  // why, when code is not ok
  MAIL_FIELDS(code, bytes, message)
};
struct ContentManyResp {
  std::vector<ContentItem> contents;  // for the first ids.size() or fewer ids
  MAIL_FIELDS(contents)
};
struct ContentMetaReq {
  std::vector<ContentId> ids;
  MAIL_FIELDS(ids)
};
struct ContentMetaResp {
  std::vector<ContentMeta> metas;  // same order; id 0 where missing
  MAIL_FIELDS(metas)
};
// Parts of many contents' summaries (ContentMeta::summary) in one round
// trip: each the summary's encoding with the string fields outside `fields`
// (mime::summary_field bits, lib/mime/summary_fields.h) left empty, so a
// command that needs a few (IMAP ENVELOPE, header fields, SORT/THREAD keys)
// does not move ~1 KB per message. Same order; "" where a content or its
// summary is missing.
struct SummaryFieldsReq {
  std::vector<ContentId> ids;
  uint32_t fields = 0;
  MAIL_FIELDS(ids, fields)
};
struct SummaryFieldsResp {
  std::vector<std::string> summaries;
  MAIL_FIELDS(summaries)
};

// ---- per-account data (Sieve scripts, spam tokens, search postings) ------------
struct DataKey {
  AccountId account = 0;  // 0: global
  std::string ns;         // "sieve", "spam", "fts", ...
  std::string key;
  MAIL_FIELDS(account, ns, key)
};
struct DataPutReq {
  DataKey key;
  std::string value;
  MAIL_FIELDS(key, value)
};
struct DataValue {
  bool found = false;
  std::string value;
  MAIL_FIELDS(found, value)
};
struct DataScanReq {
  AccountId account = 0;
  std::string ns;
  std::string prefix;
  uint32_t limit = 0;  // 0: all
  MAIL_FIELDS(account, ns, prefix, limit)
};
struct DataItem {
  std::string key;
  std::string value;
  MAIL_FIELDS(key, value)
};
struct DataScanResp {
  std::vector<DataItem> items;
  MAIL_FIELDS(items)
};
// A set kept in a data value, each member with the time it was last added,
// oldest first (the value's encoding). data_set_add updates it inside the
// writer's transaction, so concurrent adders never lose a member.
struct DataTimedSet {
  std::vector<uint64_t> members;
  std::vector<int64_t> times;  // same length as members
  MAIL_FIELDS(members, times)
};
// In each key's set, in one transaction: drops members last added at or
// before now - window_s (window_s 0: none), adds `members` at `now` (a member
// already there moves to the end), keeps the newest max_members (0: all). An
// undecodable value counts as empty.
struct DataSetAddReq {
  std::vector<DataKey> keys;
  std::vector<uint64_t> members;
  int64_t now = 0;
  uint32_t window_s = 0;
  uint32_t max_members = 0;
  MAIL_FIELDS(keys, members, now, window_s, max_members)
};
struct DataSetAddResp {
  std::vector<uint32_t> sizes;  // per key: members in its set after the update
  MAIL_FIELDS(sizes)
};

// ---- outbound queue --------------------------------------------------------------
struct QueueListReq {
  UnixTime due_before = 0;  // non-zero: only entries whose next_attempt <= this
  uint32_t limit = 0;
  MAIL_FIELDS(due_before, limit)
};
struct QueueListResp {
  std::vector<QueueEntry> entries;
  MAIL_FIELDS(entries)
};
struct QueueRef {
  QueueId id = 0;
  MAIL_FIELDS(id)
};
// Replaces the entry's state in one transaction. An entry whose recipients are
// all finished (delivered/failed) is removed and its content reference dropped.
struct QueueUpdateReq {
  QueueEntry entry;
  MAIL_FIELDS(entry)
};

// ---- store-wide --------------------------------------------------------------------
struct StatsResp {
  uint32_t format_version = 0;
  uint64_t domains = 0;
  uint64_t accounts = 0;
  uint64_t messages = 0;
  uint64_t contents = 0;
  uint64_t content_bytes = 0;
  uint64_t queued = 0;
  std::string backend;
  MAIL_FIELDS(format_version, domains, accounts, messages, contents, content_bytes, queued, backend)
};

// ---- restore (mail-backup): a store rebuilt with its UIDs ------------------------
// Gives a mailbox the UIDVALIDITY and UIDNEXT it had, so IMAP clients keep their
// caches. UIDVALIDITY changes only while the mailbox is empty; UIDNEXT and the
// account's modseq only grow (later modseqs stay above what clients have seen).
struct MailboxRestoreReq {
  MailboxId mailbox = 0;
  uint32_t uidvalidity = 0;
  Uid uidnext = 1;
  ModSeq highest_modseq = 0;
  MAIL_FIELDS(mailbox, uidvalidity, uidnext, highest_modseq)
};
// Adds one message under a given UID (not in use in the mailbox; UIDNEXT moves
// past it), with new content or one more reference to stored content.
struct MessageInsertReq {
  MailboxId mailbox = 0;
  Uid uid = 0;
  uint32_t flags = 0;
  std::vector<std::string> keywords;
  UnixTime internal_date = 0;
  ContentId content = 0;  // non-zero: share this stored content; else `bytes` is stored
  std::string bytes;
  std::string summary;
  MAIL_FIELDS(mailbox, uid, flags, keywords, internal_date, content, bytes, summary)
};
struct MessageInsertResp {
  ContentId content = 0;
  ModSeq modseq = 0;
  MAIL_FIELDS(content, modseq)
};

// X(opcode, method, Request, Response)
#define MAIL_STORE_OPS(X)                                        \
  X(1, domain_add, DomainAddReq, DomainInfo)                     \
  X(2, domain_remove, DomainRemoveReq, Empty)                    \
  X(3, domain_list, Empty, DomainListResp)                       \
  X(10, account_add, AccountAddReq, AccountInfo)                 \
  X(11, account_remove, AccountRef, Empty)                       \
  X(12, account_list, AccountListReq, AccountListResp)           \
  X(13, account_get, AccountRef, AccountInfo)                    \
  X(14, account_password, AccountPasswordReq, Empty)             \
  X(15, quota_set, QuotaSetReq, AccountInfo)                     \
  X(16, account_auth, AccountRef, AccountAuthResp)               \
  X(20, alias_add, AliasAddReq, AliasInfo)                       \
  X(21, alias_remove, AliasRemoveReq, Empty)                     \
  X(22, alias_list, AliasListReq, AliasListResp)                 \
  X(23, resolve, ResolveReq, ResolveResp)                        \
  X(30, mailbox_list, MailboxListReq, MailboxListResp)           \
  X(31, mailbox_get, MailboxRef, MailboxInfo)                    \
  X(32, mailbox_create, MailboxCreateReq, MailboxInfo)           \
  X(33, mailbox_delete, MailboxRef, Empty)                       \
  X(34, mailbox_rename, MailboxRenameReq, Empty)                 \
  X(35, mailbox_subscribe, MailboxSubscribeReq, Empty)           \
  X(40, deliver, DeliverReq, DeliverResp)                        \
  X(41, message_list, MessageListReq, MessageListResp)           \
  X(42, flags_update, FlagsUpdateReq, FlagsUpdateResp)           \
  X(43, expunge, ExpungeReq, ExpungeResp)                        \
  X(44, copy, CopyReq, CopyResp)                                 \
  X(45, changes, ChangesReq, ChangesResp)                        \
  X(46, content_get, ContentReq, ContentResp)                    \
  X(47, content_meta, ContentMetaReq, ContentMetaResp)           \
  X(95, summary_fields, SummaryFieldsReq, SummaryFieldsResp)     \
  X(48, deliver_batch, DeliverBatchReq, DeliverBatchResp)        \
  X(50, data_put, DataPutReq, Empty)                             \
  X(51, data_get, DataKey, DataValue)                            \
  X(52, data_delete, DataKey, Empty)                             \
  X(53, data_scan, DataScanReq, DataScanResp)                    \
  X(90, data_set_add, DataSetAddReq, DataSetAddResp)            \
  X(97, content_get_many, ContentManyReq, ContentManyResp)      \
  X(98, message_replace, ReplaceReq, ReplaceResp)                \
  X(60, queue_list, QueueListReq, QueueListResp)                 \
  X(61, queue_get, QueueRef, QueueEntry)                         \
  X(62, queue_update, QueueUpdateReq, Empty)                     \
  X(63, queue_delete, QueueRef, Empty)                           \
  X(80, mailbox_restore, MailboxRestoreReq, MailboxInfo)         \
  X(81, message_insert, MessageInsertReq, MessageInsertResp)     \
  X(70, stats, Empty, StatsResp)

}  // namespace mail::store
