// Messages on RocksDB: delivery (one content, many mailboxes), listing, flags,
// expunge, copy/move, CONDSTORE/QRESYNC changes, and content reference counts.
#include <algorithm>
#include <set>

#include <rocksdb/perf_level.h>

#include "store/rocks_internal.h"

namespace mail::store {

namespace {

Result<AccountRecord> account_by_id(Txn& txn, AccountId id) {
  return txn.need<AccountRecord>(key::account(id), "no such account id " + std::to_string(id));
}

Result<MailboxInfo> mailbox_by_id(Txn& txn, MailboxId id) {
  return txn.need<MailboxInfo>(key::mailbox(id), "no such mailbox id " + std::to_string(id));
}

// Adds a message entry at the next UID.
void add_message(Txn& txn, MailboxInfo& mailbox, AccountRecord& account, MessageEntry& entry, ModSeq modseq) {
  entry.uid = mailbox.uidnext;
  put_message(txn, mailbox, account, entry, modseq);
}

}  // namespace

void put_message(Txn& txn, MailboxInfo& mailbox, AccountRecord& account, MessageEntry& entry, ModSeq modseq) {
  mailbox.uidnext = std::max(mailbox.uidnext, entry.uid + 1);
  entry.modseq = modseq;
  mailbox.highest_modseq = modseq;
  mailbox.messages++;
  mailbox.bytes += entry.size;
  if (!(entry.flags & flag::seen)) mailbox.unseen++;
  if (entry.flags & flag::deleted) mailbox.deleted++;
  account.info.used_bytes += entry.size;
  account.info.used_messages++;
  txn.put_record(key::message(mailbox.id, entry.uid), entry);
  txn.put_record(key::modseq(mailbox.id, modseq, entry.uid), ModseqRecord{entry.uid, false});
  txn.add_counter("messages", 1);
}

namespace {

Status check_quota(const AccountRecord& account, uint64_t bytes, uint64_t messages) {
  const Quota& q = account.info.quota;
  if (q.max_bytes && account.info.used_bytes + bytes > q.max_bytes)
    return error(Code::quota, "mailbox of " + account.info.address + " is over its storage quota");
  if (q.max_messages && account.info.used_messages + messages > q.max_messages)
    return error(Code::quota, "mailbox of " + account.info.address + " is over its message quota");
  return Status::ok();
}

template <class T>
void sort_unique(std::vector<T>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

}  // namespace

void put_content(Txn& txn, const ContentMeta& meta, std::string_view stored) {
  txn.put_content(meta.id, stored);
  txn.put_record(key::content_meta(meta.id), meta);
  txn.add_counter("contents", 1);
  txn.add_counter("content_bytes", static_cast<int64_t>(meta.size));
}

Status add_content_ref(Txn& txn, ContentId id) {
  MAIL_ASSIGN_OR_RETURN(ContentMeta meta,
                        txn.need<ContentMeta>(key::content_meta(id), "no such content " + std::to_string(id)));
  meta.refs++;
  txn.put_record(key::content_meta(id), meta);
  return Status::ok();
}

// Drops one reference; the last one deletes the content in the same transaction,
// so content is never left unreferenced and a reference never dangles.
Status release_content(Txn& txn, ContentId id) {
  MAIL_ASSIGN_OR_RETURN(ContentMeta meta,
                        txn.need<ContentMeta>(key::content_meta(id), "no such content " + std::to_string(id)));
  if (meta.refs > 1) {
    meta.refs--;
    txn.put_record(key::content_meta(id), meta);
    return Status::ok();
  }
  txn.del(key::content_meta(id));
  txn.del_content(id);
  txn.add_counter("contents", -1);
  txn.add_counter("content_bytes", -static_cast<int64_t>(meta.size));
  return Status::ok();
}

Status expunge_message(Txn& txn, MailboxInfo& mailbox, AccountRecord& account, const MessageEntry& entry,
                       ModSeq modseq, bool keep_tombstone) {
  txn.del(key::message(mailbox.id, entry.uid));
  txn.del(key::modseq(mailbox.id, entry.modseq, entry.uid));
  if (keep_tombstone) txn.put_record(key::modseq(mailbox.id, modseq, entry.uid), ModseqRecord{entry.uid, true});
  mailbox.messages = mailbox.messages ? mailbox.messages - 1 : 0;
  mailbox.bytes = mailbox.bytes >= entry.size ? mailbox.bytes - entry.size : 0;
  if (!(entry.flags & flag::seen) && mailbox.unseen) mailbox.unseen--;
  if ((entry.flags & flag::deleted) && mailbox.deleted) mailbox.deleted--;
  account.info.used_bytes = account.info.used_bytes >= entry.size ? account.info.used_bytes - entry.size : 0;
  if (account.info.used_messages) account.info.used_messages--;
  txn.add_counter("messages", -1);
  return release_content(txn, entry.content);
}

// ---- delivery ---------------------------------------------------------------------------

namespace {

Status check_delivery(const DeliverReq& req) {
  if (req.targets.empty() && !req.queue) return error(Code::invalid, "delivery without a target");
  return Status::ok();
}

// One delivery's writes inside `txn`; `stored` is the compressed content.
DeliverResp deliver_in(Txn& txn, const DeliverReq& req, const std::string& stored) {
  uint64_t size = req.content.size();
  UnixTime internal_date = req.internal_date ? req.internal_date : now_seconds();
  DeliverResp resp;
  ContentId content = txn.next_id("content");
  uint32_t refs = 0;
  for (const auto& t : req.targets) {
    DeliveryResult result;
    auto delivered = [&]() -> Status {
      MAIL_ASSIGN_OR_RETURN(AccountRecord account, account_by_id(txn, t.account));
      MailboxId mailbox_id = t.mailbox;
      if (!mailbox_id) {
        std::string name = t.mailbox_name.empty() ? "INBOX" : t.mailbox_name;
        MAIL_ASSIGN_OR_RETURN(auto id, txn.get(key::mailbox_name(t.account, name)));
        if (!id || id->size() != 8) return error(Code::not_found, "no such mailbox: " + name);
        mailbox_id = get_be64(*id);
      }
      MAIL_ASSIGN_OR_RETURN(MailboxInfo mailbox, mailbox_by_id(txn, mailbox_id));
      if (mailbox.account != t.account) return error(Code::invalid, "mailbox belongs to another account");
      if (t.enforce_quota) MAIL_TRY(check_quota(account, size, 1));
      MessageEntry entry;
      entry.flags = t.flags;
      entry.keywords = t.keywords;
      sort_unique(entry.keywords);
      entry.internal_date = internal_date;
      entry.size = size;
      entry.content = content;
      ModSeq modseq = bump_account_modseq(account);
      add_message(txn, mailbox, account, entry, modseq);
      txn.put_record(key::mailbox(mailbox.id), mailbox);
      txn.put_record(key::account(account.info.id), account);
      record_change(txn, mailbox, ChangeKind::appended, modseq, {entry.uid});
      result.mailbox = mailbox.id;
      result.uidvalidity = mailbox.uidvalidity;
      result.uid = entry.uid;
      return Status::ok();
    }();
    // A target's checks come before its writes, so a failed target leaves nothing behind.
    result.code = delivered.code();
    result.message = delivered.message();
    if (delivered.is_ok()) ++refs;
    resp.results.push_back(std::move(result));
  }
  if (req.queue) {
    QueueEntry q = *req.queue;
    q.id = txn.next_id("queue");
    q.content = content;
    q.size = size;
    if (!q.created) q.created = now_seconds();
    if (!q.next_attempt) q.next_attempt = q.created;
    txn.put_record(key::queue(q.id), q);
    resp.queued = q.id;
    ++refs;
  }
  if (refs) {
    put_content(txn, ContentMeta{content, size, refs, req.summary}, stored);
    resp.content = content;
  }
  return resp;
}

}  // namespace

Result<DeliverResp> RocksStore::deliver(const DeliverReq& req) {
  MAIL_TRY(check_delivery(req));
  // Compress on the caller's thread so that the writer thread only commits.
  std::string stored = compress_content(req.content);
  return impl_->write_op<DeliverResp>([&](Txn& txn) -> Result<DeliverResp> { return deliver_in(txn, req, stored); });
}

Result<DeliverBatchResp> RocksStore::deliver_batch(const DeliverBatchReq& req) {
  Status checked;
  for (const auto& m : req.messages)
    if (checked.is_ok()) checked = check_delivery(m);
  // Compress on the caller's thread so that the writer thread only commits.
  std::vector<std::string> stored;
  if (checked.is_ok()) {
    stored.reserve(req.messages.size());
    for (const auto& m : req.messages) stored.push_back(compress_content(m.content));
  }
  // A bad batch still takes its turn in its lane, so the ones after it go on.
  WriteLane lane{req.order_group, req.order_seq};
  return impl_->write_op<DeliverBatchResp>([&](Txn& txn) -> Result<DeliverBatchResp> {
    MAIL_TRY(checked);
    DeliverBatchResp resp;
    resp.messages.reserve(req.messages.size());
    for (size_t i = 0; i < req.messages.size(); ++i) {
      resp.messages.push_back(deliver_in(txn, req.messages[i], stored[i]));
      if (!req.all_or_nothing) continue;
      for (const auto& r : resp.messages.back().results)
        if (r.code != Code::ok)  // the writer rolls the whole batch back
          return error(r.code, "message " + std::to_string(i + 1) + " of the batch: " + r.message);
    }
    return resp;
  }, lane);
}

// ---- reading ------------------------------------------------------------------------------

Result<MessageListResp> RocksStore::message_list(const MessageListReq& req) {
  MessageListResp resp;
  MAIL_ASSIGN_OR_RETURN(resp.mailbox, impl_->read_need<MailboxInfo>(key::mailbox(req.mailbox), "no such mailbox id " +
                                                                                                   std::to_string(req.mailbox)));
  Status bad;
  resp.messages.reserve(resp.mailbox.messages);
  MAIL_TRY(impl_->read_scan(
      key::message_prefix(req.mailbox),
      [&](std::string_view k, std::string_view v) {
        if (req.uid_max && get_be32(k.substr(9)) > req.uid_max) return false;
        if (!decode(v, resp.messages.emplace_back())) {
          bad = error(Code::corrupt, "undecodable message entry");
          return false;
        }
        return true;
      },
      key::message(req.mailbox, req.uid_min)));
  MAIL_TRY(bad);
  return resp;
}

Result<ChangesResp> RocksStore::changes(const ChangesReq& req) {
  ChangesResp resp;
  MAIL_ASSIGN_OR_RETURN(MailboxInfo mb, impl_->read_need<MailboxInfo>(key::mailbox(req.mailbox), "no such mailbox id " +
                                                                                                     std::to_string(req.mailbox)));
  resp.highest_modseq = mb.highest_modseq;
  std::vector<Uid> live;
  Status bad;
  MAIL_TRY(impl_->read_scan(
      key::modseq_prefix(req.mailbox),
      [&](std::string_view, std::string_view v) {
        ModseqRecord r;
        if (!decode(v, r)) {
          bad = error(Code::corrupt, "undecodable modseq record");
          return false;
        }
        (r.expunged ? resp.vanished : live).push_back(r.uid);
        return true;
      },
      key::modseq(req.mailbox, req.since + 1, 0)));
  MAIL_TRY(bad);
  std::sort(live.begin(), live.end());
  std::sort(resp.vanished.begin(), resp.vanished.end());
  std::vector<std::string> keys;
  keys.reserve(live.size());
  for (Uid uid : live) keys.push_back(key::message(req.mailbox, uid));
  MAIL_ASSIGN_OR_RETURN(auto entries, impl_->read_records<MessageEntry>(keys));
  resp.changed.reserve(entries.size());
  for (auto& e : entries)
    if (e) resp.changed.push_back(std::move(*e));
  return resp;
}

Result<ContentResp> RocksStore::content_get(const ContentReq& req) {
  std::string stored;
  auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->content_cf, key::content(req.id), &stored);
  if (s.IsNotFound()) return error(Code::not_found, "no such content " + std::to_string(req.id));
  MAIL_TRY(from_rocks(s, "read content"));
  MAIL_ASSIGN_OR_RETURN(std::string bytes, decompress_content(stored));
  return ContentResp{std::move(bytes)};
}

Result<ContentManyResp> RocksStore::content_get_many(const ContentManyReq& req) {
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);  // as in read_scan
  ContentManyResp resp;
  // Slices of ids go to one MultiGet each, which batches the blob-file reads
  // of neighbouring contents (a content id per delivery: a mailbox's are close).
  constexpr size_t kSlice = 64;
  uint64_t bytes = 0;
  std::vector<std::string> keys;
  std::vector<rocksdb::Slice> slices;
  std::vector<rocksdb::PinnableSlice> values(kSlice);
  std::vector<rocksdb::Status> statuses(kSlice);
  for (size_t from = 0; from < req.ids.size(); from += kSlice) {
    size_t n = std::min(kSlice, req.ids.size() - from);
    keys.clear();
    slices.clear();
    for (size_t i = 0; i < n; ++i) keys.push_back(key::content(req.ids[from + i]));
    for (const auto& k : keys) slices.emplace_back(k);
    for (auto& v : values) v.Reset();
    impl_->db->MultiGet(rocksdb::ReadOptions(), impl_->content_cf, n, slices.data(), values.data(), statuses.data());
    for (size_t i = 0; i < n; ++i) {
      if (req.max_bytes && bytes >= req.max_bytes) return resp;
      auto& item = resp.contents.emplace_back();
      if (statuses[i].IsNotFound()) {
        item.code = Code::not_found;
        item.message = "no such content " + std::to_string(req.ids[from + i]);
        continue;
      }
      MAIL_TRY(from_rocks(statuses[i], "read content"));
      auto d = decompress_content(std::string_view(values[i].data(), values[i].size()));
      if (!d) {
        item.code = d.code();
        item.message = d.status().message();
        continue;
      }
      bytes += d->size();
      item.bytes = std::move(*d);
    }
  }
  return resp;
}

Result<ContentMetaResp> RocksStore::content_meta(const ContentMetaReq& req) {
  ContentMetaResp resp;
  std::vector<std::string> keys;
  keys.reserve(req.ids.size());
  for (ContentId id : req.ids) keys.push_back(key::content_meta(id));
  MAIL_ASSIGN_OR_RETURN(auto metas, impl_->read_records<ContentMeta>(keys));
  resp.metas.reserve(metas.size());
  for (auto& meta : metas) resp.metas.push_back(meta ? std::move(*meta) : ContentMeta{});
  return resp;
}

// ---- changing -----------------------------------------------------------------------------

Result<FlagsUpdateResp> RocksStore::flags_update(const FlagsUpdateReq& req) {
  std::vector<std::string> keywords = req.keywords;
  sort_unique(keywords);
  return impl_->write_op<FlagsUpdateResp>([&](Txn& txn) -> Result<FlagsUpdateResp> {
    FlagsUpdateResp resp;
    MAIL_ASSIGN_OR_RETURN(MailboxInfo mb, mailbox_by_id(txn, req.mailbox));
    MAIL_ASSIGN_OR_RETURN(AccountRecord account, account_by_id(txn, mb.account));
    resp.previous_modseq = mb.highest_modseq;
    ModSeq modseq = 0;
    std::vector<Uid> changed;
    // All entries read in one pass, and the writes grouped by key range in
    // ascending order: STORE 1:* on a big mailbox was a lookup per message and
    // index inserts in three interleaved key ranges.
    std::vector<Uid> uids = req.uids;  // a UID named twice changes once
    sort_unique(uids);
    std::vector<std::string> keys;
    keys.reserve(uids.size());
    for (Uid uid : uids) keys.push_back(key::message(mb.id, uid));
    MAIL_ASSIGN_OR_RETURN(auto found_all, txn.get_many(keys));
    std::vector<std::pair<ModSeq, Uid>> old_index;  // the modseq index entries the changes replace
    for (size_t n = 0; n < uids.size(); ++n) {
      Uid uid = uids[n];
      if (!found_all[n]) continue;
      MessageEntry e;
      if (!decode(*found_all[n], e)) return error(Code::corrupt, "undecodable message entry");
      if (req.unchanged_since && e.modseq > req.unchanged_since) {
        resp.modified.push_back(uid);
        continue;
      }
      uint32_t flags = e.flags;
      std::vector<std::string> kw = e.keywords;
      switch (req.mode) {
        case FlagMode::set:
          flags = req.flags;
          kw = keywords;
          break;
        case FlagMode::add:
          flags |= req.flags;
          kw.insert(kw.end(), keywords.begin(), keywords.end());
          sort_unique(kw);
          break;
        case FlagMode::remove:
          flags &= ~req.flags;
          kw.erase(std::remove_if(kw.begin(), kw.end(),
                                  [&](const std::string& k) {
                                    return std::binary_search(keywords.begin(), keywords.end(), k);
                                  }),
                   kw.end());
          break;
      }
      if (flags == e.flags && kw == e.keywords) continue;
      if (!modseq) modseq = bump_account_modseq(account);
      if ((e.flags & flag::seen) != (flags & flag::seen)) {
        if (flags & flag::seen) mb.unseen = mb.unseen ? mb.unseen - 1 : 0;
        else mb.unseen++;
      }
      if ((e.flags & flag::deleted) != (flags & flag::deleted)) {
        if (flags & flag::deleted) mb.deleted++;
        else mb.deleted = mb.deleted ? mb.deleted - 1 : 0;
      }
      old_index.emplace_back(e.modseq, uid);
      e.flags = flags;
      e.keywords = std::move(kw);
      e.modseq = modseq;
      changed.push_back(uid);
      resp.updated.push_back(std::move(e));
    }
    std::sort(old_index.begin(), old_index.end());
    for (const auto& [old, uid] : old_index) txn.del(key::modseq(mb.id, old, uid));
    for (Uid uid : changed) txn.put_record(key::modseq(mb.id, modseq, uid), ModseqRecord{uid, false});  // ascending
    for (const auto& e : resp.updated) txn.put_record(key::message(mb.id, e.uid), e);
    if (modseq) {
      mb.highest_modseq = modseq;
      txn.put_record(key::mailbox(mb.id), mb);
      txn.put_record(key::account(account.info.id), account);
      record_change(txn, mb, ChangeKind::flags, modseq, std::move(changed));
    }
    resp.highest_modseq = mb.highest_modseq;
    return resp;
  });
}

namespace {

// One expunge's writes inside `txn` (EXPUNGE, and REPLACE's first half).
Result<ExpungeResp> expunge_in(Txn& txn, const ExpungeReq& req) {
  ExpungeResp resp;
  MAIL_ASSIGN_OR_RETURN(MailboxInfo mb, mailbox_by_id(txn, req.mailbox));
  MAIL_ASSIGN_OR_RETURN(AccountRecord account, account_by_id(txn, mb.account));
  ModSeq modseq = 0;
  std::set<Uid> uids(req.uids.begin(), req.uids.end());
  for (Uid uid : uids) {
    MAIL_ASSIGN_OR_RETURN(auto e, txn.get_record<MessageEntry>(key::message(mb.id, uid)));
    if (!e) continue;
    if (!modseq) modseq = bump_account_modseq(account);
    MAIL_TRY(expunge_message(txn, mb, account, *e, modseq, true));
    resp.expunged.push_back(uid);
  }
  if (modseq) {
    mb.highest_modseq = modseq;
    txn.put_record(key::mailbox(mb.id), mb);
    txn.put_record(key::account(account.info.id), account);
    record_change(txn, mb, ChangeKind::expunged, modseq, resp.expunged);
  }
  resp.highest_modseq = mb.highest_modseq;
  return resp;
}

}  // namespace

Result<ExpungeResp> RocksStore::expunge(const ExpungeReq& req) {
  return impl_->write_op<ExpungeResp>([&](Txn& txn) -> Result<ExpungeResp> { return expunge_in(txn, req); });
}

Result<ReplaceResp> RocksStore::message_replace(const ReplaceReq& req) {
  if (req.message.targets.size() != 1 || req.message.queue)
    return error(Code::invalid, "a replacement goes to exactly one mailbox");
  // Compress on the caller's thread so that the writer thread only commits.
  std::string stored = compress_content(req.message.content);
  return impl_->write_op<ReplaceResp>([&](Txn& txn) -> Result<ReplaceResp> {
    MAIL_ASSIGN_OR_RETURN(MailboxInfo mb, mailbox_by_id(txn, req.mailbox));
    if (mb.account != req.message.targets[0].account)
      return error(Code::invalid, "the replacement belongs to another account");
    MAIL_ASSIGN_OR_RETURN(auto old, txn.get_record<MessageEntry>(key::message(mb.id, req.uid)));
    if (!old) return error(Code::not_found, "no such message: UID " + std::to_string(req.uid));
    ReplaceResp resp;
    ExpungeReq gone;
    gone.mailbox = mb.id;
    gone.uids = {req.uid};
    MAIL_ASSIGN_OR_RETURN(resp.expunged, expunge_in(txn, gone));
    DeliverResp delivered = deliver_in(txn, req.message, stored);
    resp.appended = delivered.results.at(0);
    // The writer rolls this op back whole, the expunge with it.
    if (resp.appended.code != Code::ok) return error(resp.appended.code, resp.appended.message);
    return resp;
  });
}

Result<CopyResp> RocksStore::copy(const CopyReq& req) {
  return impl_->write_op<CopyResp>([&](Txn& txn) -> Result<CopyResp> {
    CopyResp resp;
    if (req.from == req.to && req.move) return error(Code::invalid, "cannot move messages into their own mailbox");
    MAIL_ASSIGN_OR_RETURN(MailboxInfo from, mailbox_by_id(txn, req.from));
    MAIL_ASSIGN_OR_RETURN(MailboxInfo to, mailbox_by_id(txn, req.to));
    if (from.account != to.account) return error(Code::invalid, "cannot copy between accounts");
    MAIL_ASSIGN_OR_RETURN(AccountRecord account, account_by_id(txn, from.account));
    std::set<Uid> uids(req.uids.begin(), req.uids.end());
    std::vector<MessageEntry> entries;
    uint64_t bytes = 0;
    for (Uid uid : uids) {
      MAIL_ASSIGN_OR_RETURN(auto e, txn.get_record<MessageEntry>(key::message(from.id, uid)));
      if (!e) continue;
      bytes += e->size;
      entries.push_back(std::move(*e));
    }
    if (entries.empty()) {
      resp.uidvalidity = to.uidvalidity;
      return resp;
    }
    if (!req.move) MAIL_TRY(check_quota(account, bytes, entries.size()));
    ModSeq modseq = bump_account_modseq(account);
    bool same = from.id == to.id;
    for (const auto& e : entries) {
      MessageEntry copy = e;
      MAIL_TRY(add_content_ref(txn, copy.content));
      add_message(txn, same ? from : to, account, copy, modseq);
      resp.source_uids.push_back(e.uid);
      resp.dest_uids.push_back(copy.uid);
      if (req.move) MAIL_TRY(expunge_message(txn, from, account, e, modseq, true));
    }
    if (same) to = from;
    resp.uidvalidity = to.uidvalidity;
    to.highest_modseq = modseq;
    txn.put_record(key::mailbox(to.id), to);
    record_change(txn, to, ChangeKind::appended, modseq, resp.dest_uids);
    if (req.move) {
      from.highest_modseq = modseq;
      txn.put_record(key::mailbox(from.id), from);
      record_change(txn, from, ChangeKind::expunged, modseq, resp.source_uids);
    }
    txn.put_record(key::account(account.info.id), account);
    return resp;
  });
}

}  // namespace mail::store
