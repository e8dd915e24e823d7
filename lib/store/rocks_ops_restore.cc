// Restore on RocksDB: a mailbox gets back its UIDVALIDITY and UIDNEXT, and
// messages go in under the UIDs they had, sharing content as they did.
#include <algorithm>

#include "store/rocks_internal.h"

namespace mail::store {

Result<MailboxInfo> RocksStore::mailbox_restore(const MailboxRestoreReq& req) {
  if (req.uidvalidity == 0) return error(Code::invalid, "UIDVALIDITY must not be 0");
  return impl_->write_op<MailboxInfo>([&](Txn& txn) -> Result<MailboxInfo> {
    MAIL_ASSIGN_OR_RETURN(MailboxInfo mb, txn.need<MailboxInfo>(key::mailbox(req.mailbox),
                                                                "no such mailbox id " + std::to_string(req.mailbox)));
    MAIL_ASSIGN_OR_RETURN(AccountRecord account, txn.need<AccountRecord>(key::account(mb.account), "no such account"));
    if (mb.uidvalidity != req.uidvalidity) {
      // Clients key their caches on (UIDVALIDITY, UID): only an empty mailbox may change it.
      if (mb.messages > 0 || mb.uidnext > 1)
        return error(Code::invalid, "mailbox " + mb.name + " already holds messages: its UIDVALIDITY stays");
      mb.uidvalidity = req.uidvalidity;
      // Mailboxes created later get a UIDVALIDITY above every restored one.
      if (txn.counter("uidvalidity") < req.uidvalidity) {
        std::string enc;
        put_be64(enc, req.uidvalidity);
        txn.put(key::counter("uidvalidity"), enc);
      }
    }
    mb.uidnext = std::max(mb.uidnext, req.uidnext);
    account.info.state = std::max(account.info.state, req.highest_modseq);
    mb.highest_modseq = bump_account_modseq(account);
    txn.put_record(key::mailbox(mb.id), mb);
    txn.put_record(key::account(account.info.id), account);
    record_change(txn, mb, ChangeKind::mailbox, mb.highest_modseq, {});
    return mb;
  });
}

Result<MessageInsertResp> RocksStore::message_insert(const MessageInsertReq& req) {
  if (req.uid == 0 || req.uid == UINT32_MAX) return error(Code::invalid, "bad UID " + std::to_string(req.uid));
  std::string stored;
  if (!req.content) stored = compress_content(req.bytes);
  std::vector<std::string> keywords = req.keywords;
  std::sort(keywords.begin(), keywords.end());
  keywords.erase(std::unique(keywords.begin(), keywords.end()), keywords.end());

  return impl_->write_op<MessageInsertResp>([&](Txn& txn) -> Result<MessageInsertResp> {
    MAIL_ASSIGN_OR_RETURN(MailboxInfo mb, txn.need<MailboxInfo>(key::mailbox(req.mailbox),
                                                                "no such mailbox id " + std::to_string(req.mailbox)));
    MAIL_ASSIGN_OR_RETURN(AccountRecord account, txn.need<AccountRecord>(key::account(mb.account), "no such account"));
    if (txn.exists(key::message(mb.id, req.uid)))
      return error(Code::exists, "UID " + std::to_string(req.uid) + " is in use in " + mb.name);
    MessageEntry entry;
    entry.uid = req.uid;
    entry.flags = req.flags;
    entry.keywords = keywords;
    entry.internal_date = req.internal_date ? req.internal_date : now_seconds();
    if (req.content) {
      MAIL_ASSIGN_OR_RETURN(ContentMeta meta, txn.need<ContentMeta>(key::content_meta(req.content),
                                                                    "no such content " + std::to_string(req.content)));
      MAIL_TRY(add_content_ref(txn, req.content));
      entry.content = req.content;
      entry.size = meta.size;
    } else {
      entry.content = txn.next_id("content");
      entry.size = req.bytes.size();
      put_content(txn, ContentMeta{entry.content, entry.size, 1, req.summary}, stored);
    }
    ModSeq modseq = bump_account_modseq(account);
    put_message(txn, mb, account, entry, modseq);
    txn.put_record(key::mailbox(mb.id), mb);
    txn.put_record(key::account(account.info.id), account);
    record_change(txn, mb, ChangeKind::appended, modseq, {entry.uid});
    return MessageInsertResp{entry.content, modseq};
  });
}

}  // namespace mail::store
