// Mailboxes on RocksDB: hierarchy, special-use, subscriptions, UIDVALIDITY.
#include <algorithm>

#include "store/rocks_internal.h"

namespace mail::store {

namespace {

// "inbox" in any case is INBOX; other names are kept as given. '/' separates
// levels; empty levels and control characters are refused.
Result<std::string> normalize_mailbox_name(const std::string& name) {
  if (name.empty()) return error(Code::invalid, "empty mailbox name");
  if (name.size() > 1000) return error(Code::invalid, "mailbox name too long");
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f) return error(Code::invalid, "control character in mailbox name");
  if (name.front() == '/' || name.back() == '/' || name.find("//") != std::string::npos)
    return error(Code::invalid, "empty hierarchy level in mailbox name '" + name + "'");
  std::string head = name.substr(0, name.find('/'));
  if (head.size() == 5) {
    std::string lower = head;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    if (lower == "inbox") return "INBOX" + name.substr(5);
  }
  return name;
}

uint32_t next_uidvalidity(Txn& txn) {
  uint64_t last = txn.counter("uidvalidity");
  uint64_t v = std::max<uint64_t>(static_cast<uint64_t>(now_seconds()) & 0xffffffffu, last + 1);
  if (v > 0xffffffffu) v = 1;
  std::string enc;
  put_be64(enc, v);
  txn.put(key::counter("uidvalidity"), enc);
  return static_cast<uint32_t>(v);
}

Result<MailboxId> mailbox_id_by_name(Txn& txn, AccountId account, const std::string& name) {
  MAIL_ASSIGN_OR_RETURN(auto id, txn.get(key::mailbox_name(account, name)));
  if (!id || id->size() != 8) return error(Code::not_found, "no such mailbox: " + name);
  return get_be64(*id);
}

Result<AccountRecord> account_by_id(Txn& txn, AccountId id) {
  return txn.need<AccountRecord>(key::account(id), "no such account id " + std::to_string(id));
}

// Deletes every message of a mailbox and its modseq index.
Status clear_mailbox(Txn& txn, MailboxInfo& mailbox, AccountRecord& account) {
  std::vector<MessageEntry> entries;
  Status bad;
  MAIL_TRY(txn.scan(key::message_prefix(mailbox.id), [&](std::string_view, std::string_view v) {
    MessageEntry e;
    if (!decode(v, e)) {
      bad = error(Code::corrupt, "undecodable message entry");
      return false;
    }
    entries.push_back(std::move(e));
    return true;
  }));
  MAIL_TRY(bad);
  for (const auto& e : entries) MAIL_TRY(expunge_message(txn, mailbox, account, e, 0, false));
  std::vector<std::string> keys;
  MAIL_TRY(txn.scan(key::modseq_prefix(mailbox.id), [&](std::string_view k, std::string_view) {
    keys.emplace_back(k);
    return true;
  }));
  for (const auto& k : keys) txn.del(k);
  return Status::ok();
}

}  // namespace

void record_change(Txn& txn, const MailboxInfo& mailbox, ChangeKind kind, ModSeq modseq,
                   std::vector<Uid> uids) {
  ChangeEvent e{mailbox.account, mailbox.id, kind, modseq, std::move(uids)};
  txn.put_record(key::account_log(mailbox.account, modseq, mailbox.id), e);
  txn.events().push_back(std::move(e));
}

Result<MailboxInfo> create_mailbox(Txn& txn, AccountRecord& account, const std::string& name,
                                   SpecialUse special_use, bool subscribed) {
  if (txn.exists(key::mailbox_name(account.info.id, name)))
    return error(Code::exists, "mailbox already exists: " + name);
  MailboxInfo mb;
  mb.id = txn.next_id("mailbox");
  mb.account = account.info.id;
  mb.name = name;
  mb.special_use = special_use;
  mb.subscribed = subscribed;
  mb.uidvalidity = next_uidvalidity(txn);
  mb.highest_modseq = bump_account_modseq(account);
  std::string id;
  put_be64(id, mb.id);
  txn.put(key::mailbox_name(account.info.id, name), id);
  txn.put_record(key::mailbox(mb.id), mb);
  record_change(txn, mb, ChangeKind::mailbox, mb.highest_modseq, {});
  return mb;
}

Result<MailboxListResp> RocksStore::mailbox_list(const MailboxListReq& req) {
  std::vector<MailboxId> ids;
  MAIL_TRY(impl_->read_scan(key::mailbox_name(req.account, ""), [&](std::string_view, std::string_view v) {
    if (v.size() == 8) ids.push_back(get_be64(v));
    return true;
  }));
  MailboxListResp resp;
  for (MailboxId id : ids) {
    MAIL_ASSIGN_OR_RETURN(auto mb, impl_->read_record<MailboxInfo>(key::mailbox(id)));
    if (mb) resp.mailboxes.push_back(std::move(*mb));
  }
  return resp;
}

Result<MailboxInfo> RocksStore::mailbox_get(const MailboxRef& req) {
  MAIL_ASSIGN_OR_RETURN(std::string name, normalize_mailbox_name(req.name));
  MAIL_ASSIGN_OR_RETURN(auto id, impl_->read(key::mailbox_name(req.account, name)));
  if (!id || id->size() != 8) return error(Code::not_found, "no such mailbox: " + name);
  return impl_->read_need<MailboxInfo>(key::mailbox(get_be64(*id)), "no such mailbox: " + name);
}

Result<MailboxInfo> RocksStore::mailbox_create(const MailboxCreateReq& req) {
  return impl_->write_op<MailboxInfo>([&](Txn& txn) -> Result<MailboxInfo> {
    MAIL_ASSIGN_OR_RETURN(std::string name, normalize_mailbox_name(req.name));
    MAIL_ASSIGN_OR_RETURN(AccountRecord account, account_by_id(txn, req.account));
    if (txn.exists(key::mailbox_name(account.info.id, name)))
      return error(Code::exists, "mailbox already exists: " + name);
    // Superior levels are created as needed (RFC 9051 CREATE).
    for (size_t slash = name.find('/'); slash != std::string::npos; slash = name.find('/', slash + 1)) {
      std::string parent = name.substr(0, slash);
      if (!txn.exists(key::mailbox_name(account.info.id, parent)))
        MAIL_TRY(create_mailbox(txn, account, parent, SpecialUse::none, false).status());
    }
    MAIL_ASSIGN_OR_RETURN(MailboxInfo mb, create_mailbox(txn, account, name, req.special_use, false));
    txn.put_record(key::account(account.info.id), account);
    return mb;
  });
}

Result<Empty> RocksStore::mailbox_delete(const MailboxRef& req) {
  return impl_->write_op<Empty>([&](Txn& txn) -> Result<Empty> {
    MAIL_ASSIGN_OR_RETURN(std::string name, normalize_mailbox_name(req.name));
    if (name == "INBOX") return error(Code::invalid, "INBOX cannot be deleted");
    MAIL_ASSIGN_OR_RETURN(AccountRecord account, account_by_id(txn, req.account));
    MAIL_ASSIGN_OR_RETURN(MailboxId id, mailbox_id_by_name(txn, req.account, name));
    bool has_children = false;
    MAIL_TRY(txn.scan(key::mailbox_name(req.account, name + "/"), [&](std::string_view, std::string_view) {
      has_children = true;
      return false;
    }));
    if (has_children) return error(Code::not_empty, "mailbox " + name + " has child mailboxes");
    MAIL_ASSIGN_OR_RETURN(MailboxInfo mb, txn.need<MailboxInfo>(key::mailbox(id), "no such mailbox: " + name));
    MAIL_TRY(clear_mailbox(txn, mb, account));
    txn.del(key::mailbox(id));
    txn.del(key::mailbox_name(req.account, name));
    record_change(txn, mb, ChangeKind::mailbox, bump_account_modseq(account), {});
    txn.put_record(key::account(account.info.id), account);
    return Empty{};
  });
}

Result<Empty> RocksStore::mailbox_rename(const MailboxRenameReq& req) {
  return impl_->write_op<Empty>([&](Txn& txn) -> Result<Empty> {
    MAIL_ASSIGN_OR_RETURN(std::string from, normalize_mailbox_name(req.from));
    MAIL_ASSIGN_OR_RETURN(std::string to, normalize_mailbox_name(req.to));
    if (from == to) return error(Code::exists, "mailbox already exists: " + to);
    if (to.rfind(from + "/", 0) == 0) return error(Code::invalid, "cannot move a mailbox into itself");
    MAIL_ASSIGN_OR_RETURN(AccountRecord account, account_by_id(txn, req.account));
    MAIL_ASSIGN_OR_RETURN(MailboxId id, mailbox_id_by_name(txn, req.account, from));
    if (txn.exists(key::mailbox_name(req.account, to))) return error(Code::exists, "mailbox already exists: " + to);

    // The mailbox and its children, by their new names.
    std::vector<std::pair<std::string, MailboxId>> moves = {{from, id}};
    if (from != "INBOX") {
      MAIL_TRY(txn.scan(key::mailbox_name(req.account, from + "/"), [&](std::string_view k, std::string_view v) {
        if (v.size() == 8) moves.emplace_back(std::string(k.substr(9)), get_be64(v));
        return true;
      }));
    }
    ModSeq modseq = bump_account_modseq(account);
    for (const auto& [old_name, mailbox_id] : moves) {
      std::string new_name = to + old_name.substr(from.size());
      if (txn.exists(key::mailbox_name(req.account, new_name)))
        return error(Code::exists, "mailbox already exists: " + new_name);
      MAIL_ASSIGN_OR_RETURN(MailboxInfo mb, txn.need<MailboxInfo>(key::mailbox(mailbox_id), "no such mailbox"));
      mb.name = new_name;
      mb.highest_modseq = modseq;
      if (old_name == "INBOX") mb.special_use = SpecialUse::none;
      txn.put_record(key::mailbox(mailbox_id), mb);
      txn.del(key::mailbox_name(req.account, old_name));
      std::string enc;
      put_be64(enc, mailbox_id);
      txn.put(key::mailbox_name(req.account, new_name), enc);
      record_change(txn, mb, ChangeKind::mailbox, modseq, {});
    }
    // Renaming INBOX moves its messages to the new name and leaves a new, empty INBOX.
    if (from == "INBOX") MAIL_TRY(create_mailbox(txn, account, "INBOX", SpecialUse::none, true).status());
    // New parents of the destination, as CREATE would make them.
    for (size_t slash = to.find('/'); slash != std::string::npos; slash = to.find('/', slash + 1)) {
      std::string parent = to.substr(0, slash);
      if (!txn.exists(key::mailbox_name(account.info.id, parent)))
        MAIL_TRY(create_mailbox(txn, account, parent, SpecialUse::none, false).status());
    }
    txn.put_record(key::account(account.info.id), account);
    return Empty{};
  });
}

Result<Empty> RocksStore::mailbox_subscribe(const MailboxSubscribeReq& req) {
  return impl_->write_op<Empty>([&](Txn& txn) -> Result<Empty> {
    MAIL_ASSIGN_OR_RETURN(std::string name, normalize_mailbox_name(req.name));
    MAIL_ASSIGN_OR_RETURN(MailboxId id, mailbox_id_by_name(txn, req.account, name));
    MAIL_ASSIGN_OR_RETURN(MailboxInfo mb, txn.need<MailboxInfo>(key::mailbox(id), "no such mailbox: " + name));
    mb.subscribed = req.subscribed;
    txn.put_record(key::mailbox(id), mb);
    return Empty{};
  });
}

}  // namespace mail::store
