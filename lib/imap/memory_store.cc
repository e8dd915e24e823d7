#include "imap/memory_store.h"

#include <sodium.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <thread>

namespace mail::imap {
namespace {
using namespace mail::store;

class MemSub : public Subscription {
 public:
  std::function<void()> on_destroy;
  ~MemSub() override {
    if (on_destroy) on_destroy();
  }
};

class MemoryStore : public Store {
 public:
  struct Box {
    MailboxInfo info;
    std::map<Uid, MessageEntry> msgs;
  };
  struct Acct {
    AccountInfo info;
    Credentials cred;
  };

  std::string backend_name() const override { return "memory"; }

  Result<std::unique_ptr<Subscription>> subscribe(AccountId account, ChangeHandler handler) override {
    std::lock_guard l(mu_);
    uint64_t id = ++next_sub_;
    subs_[id] = {account, std::move(handler)};
    auto s = std::make_unique<MemSub>();
    s->on_destroy = [this, id] {
      std::lock_guard l2(mu_);
      subs_.erase(id);
    };
    return std::unique_ptr<Subscription>(std::move(s));
  }

  Status add_account(const std::string& address, const std::string& password) {
    char hash[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(hash, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
      return error(Code::internal, "hash failed");
    std::lock_guard l(mu_);
    Acct a;
    a.info.id = ++next_id_;
    a.info.address = address;
    a.cred.password_hash = hash;
    accounts_[address] = a;
    create_locked(a.info.id, "INBOX", SpecialUse::none);
    return Status::ok();
  }

  // ---- ops used by IMAP -------------------------------------------------------
  Result<AccountAuthResp> account_auth(const AccountRef& r) override {
    std::lock_guard l(mu_);
    auto it = accounts_.find(r.address);
    if (it == accounts_.end()) return error(Code::not_found, "no such account");
    return AccountAuthResp{it->second.info, it->second.cred};
  }
  Result<MailboxListResp> mailbox_list(const MailboxListReq& r) override {
    std::lock_guard l(mu_);
    MailboxListResp resp;
    for (auto& [id, b] : boxes_)
      if (b.info.account == r.account) resp.mailboxes.push_back(info(b));
    return resp;
  }
  Result<MailboxInfo> mailbox_get(const MailboxRef& r) override {
    std::lock_guard l(mu_);
    Box* b = find(r.account, r.name);
    if (!b) return error(Code::not_found, "no such mailbox");
    return info(*b);
  }
  Result<MailboxInfo> mailbox_create(const MailboxCreateReq& r) override {
    std::lock_guard l(mu_);
    if (find(r.account, r.name)) return error(Code::exists, "mailbox exists");
    return info(*create_locked(r.account, r.name, r.special_use));
  }
  Result<Empty> mailbox_delete(const MailboxRef& r) override {
    std::lock_guard l(mu_);
    Box* b = find(r.account, r.name);
    if (!b) return error(Code::not_found, "no such mailbox");
    for (auto& [id, o] : boxes_)
      if (o.info.account == r.account && o.info.name.rfind(r.name + "/", 0) == 0)
        return error(Code::not_empty, "mailbox has children");
    boxes_.erase(b->info.id);
    return Empty{};
  }
  Result<Empty> mailbox_rename(const MailboxRenameReq& r) override {
    std::lock_guard l(mu_);
    Box* b = find(r.account, r.from);
    if (!b) return error(Code::not_found, "no such mailbox");
    if (find(r.account, r.to)) return error(Code::exists, "target exists");
    for (auto& [id, o] : boxes_)
      if (o.info.account == r.account && o.info.name.rfind(r.from + "/", 0) == 0)
        o.info.name = r.to + o.info.name.substr(r.from.size());
    if (r.from == "INBOX") {  // INBOX's messages move to a new mailbox; INBOX stays, empty
      Box* nb = create_locked(r.account, r.to, SpecialUse::none);
      nb->msgs = std::move(b->msgs);
      b->msgs.clear();
      nb->info.uidnext = b->info.uidnext;
    } else {
      b->info.name = r.to;
      b->info.uidvalidity = ++uidvalidity_;
    }
    return Empty{};
  }
  Result<Empty> mailbox_subscribe(const MailboxSubscribeReq& r) override {
    std::lock_guard l(mu_);
    Box* b = find(r.account, r.name);
    if (!b) return error(Code::not_found, "no such mailbox");
    b->info.subscribed = r.subscribed;
    return Empty{};
  }
  Result<DeliverResp> deliver(const DeliverReq& r) override {
    std::vector<ChangeEvent> ev;
    DeliverResp resp;
    {
      std::lock_guard l(mu_);
      ContentId cid = ++next_id_;
      contents_[cid] = {r.content, r.summary};
      resp.content = cid;
      for (const auto& t : r.targets) {
        DeliveryResult res;
        Box* b = t.mailbox ? get(t.mailbox) : find(t.account, t.mailbox_name.empty() ? "INBOX" : t.mailbox_name);
        if (!b) {
          res.code = Code::not_found;
          res.message = "no such mailbox";
        } else {
          MessageEntry m;
          m.uid = b->info.uidnext++;
          m.modseq = ++modseq_;
          m.flags = t.flags;
          m.keywords = t.keywords;
          m.internal_date = r.internal_date;
          m.size = r.content.size();
          m.content = cid;
          b->msgs[m.uid] = m;
          b->info.highest_modseq = m.modseq;
          res.mailbox = b->info.id;
          res.uidvalidity = b->info.uidvalidity;
          res.uid = m.uid;
          ev.push_back({b->info.account, b->info.id, ChangeKind::appended, m.modseq, {m.uid}});
        }
        resp.results.push_back(res);
      }
    }
    notify(ev);
    return resp;
  }
  Result<MessageListResp> message_list(const MessageListReq& r) override {
    std::lock_guard l(mu_);
    Box* b = get(r.mailbox);
    if (!b) return error(Code::not_found, "no such mailbox");
    MessageListResp resp;
    resp.mailbox = info(*b);
    for (auto& [uid, m] : b->msgs)
      if (uid >= r.uid_min && (r.uid_max == 0 || uid <= r.uid_max)) resp.messages.push_back(m);
    return resp;
  }
  Result<FlagsUpdateResp> flags_update(const FlagsUpdateReq& r) override {
    std::vector<ChangeEvent> ev;
    FlagsUpdateResp resp;
    {
      std::lock_guard l(mu_);
      Box* b = get(r.mailbox);
      if (!b) return error(Code::not_found, "no such mailbox");
      ChangeEvent e{b->info.account, b->info.id, ChangeKind::flags, 0, {}};
      for (Uid u : r.uids) {
        auto it = b->msgs.find(u);
        if (it == b->msgs.end()) continue;
        MessageEntry& m = it->second;
        if (r.unchanged_since && m.modseq > r.unchanged_since) {
          resp.modified.push_back(u);
          continue;
        }
        uint32_t f = m.flags;
        auto kw = m.keywords;
        if (r.mode == FlagMode::set) {
          f = r.flags;
          kw = r.keywords;
        } else if (r.mode == FlagMode::add) {
          f |= r.flags;
          for (const auto& k : r.keywords)
            if (std::find(kw.begin(), kw.end(), k) == kw.end()) kw.push_back(k);
        } else {
          f &= ~r.flags;
          for (const auto& k : r.keywords) kw.erase(std::remove(kw.begin(), kw.end(), k), kw.end());
        }
        if (f == m.flags && kw == m.keywords) continue;
        m.flags = f;
        m.keywords = kw;
        m.modseq = ++modseq_;
        b->info.highest_modseq = m.modseq;
        resp.updated.push_back(m);
        e.uids.push_back(u);
        e.modseq = m.modseq;
      }
      resp.highest_modseq = b->info.highest_modseq;
      if (!e.uids.empty()) ev.push_back(e);
    }
    notify(ev);
    return resp;
  }
  Result<ExpungeResp> expunge(const ExpungeReq& r) override {
    std::vector<ChangeEvent> ev;
    ExpungeResp resp;
    {
      std::lock_guard l(mu_);
      Box* b = get(r.mailbox);
      if (!b) return error(Code::not_found, "no such mailbox");
      for (Uid u : r.uids)
        if (b->msgs.erase(u)) resp.expunged.push_back(u);
      if (!resp.expunged.empty()) {
        b->info.highest_modseq = ++modseq_;
        ev.push_back({b->info.account, b->info.id, ChangeKind::expunged, modseq_, resp.expunged});
      }
      resp.highest_modseq = b->info.highest_modseq;
    }
    notify(ev);
    return resp;
  }
  Result<CopyResp> copy(const CopyReq& r) override {
    std::vector<ChangeEvent> ev;
    CopyResp resp;
    {
      std::lock_guard l(mu_);
      Box* from = get(r.from);
      Box* to = get(r.to);
      if (!from || !to) return error(Code::not_found, "no such mailbox");
      resp.uidvalidity = to->info.uidvalidity;
      ChangeEvent add{to->info.account, to->info.id, ChangeKind::appended, 0, {}};
      ChangeEvent del{from->info.account, from->info.id, ChangeKind::expunged, 0, {}};
      for (Uid u : r.uids) {
        auto it = from->msgs.find(u);
        if (it == from->msgs.end()) continue;
        MessageEntry m = it->second;
        m.uid = to->info.uidnext++;
        m.modseq = ++modseq_;
        to->msgs[m.uid] = m;
        to->info.highest_modseq = m.modseq;
        resp.source_uids.push_back(u);
        resp.dest_uids.push_back(m.uid);
        add.uids.push_back(m.uid);
        if (r.move) {
          from->msgs.erase(it);
          del.uids.push_back(u);
        }
      }
      if (!add.uids.empty()) ev.push_back(add);
      if (!del.uids.empty()) {
        from->info.highest_modseq = ++modseq_;
        ev.push_back(del);
      }
    }
    notify(ev);
    return resp;
  }
  Result<ContentResp> content_get(const ContentReq& r) override {
    std::lock_guard l(mu_);
    auto it = contents_.find(r.id);
    if (it == contents_.end()) return error(Code::not_found, "no such content");
    return ContentResp{it->second.first};
  }
  Result<ContentMetaResp> content_meta(const ContentMetaReq& r) override {
    std::lock_guard l(mu_);
    ContentMetaResp resp;
    for (auto id : r.ids) {
      ContentMeta m;
      auto it = contents_.find(id);
      if (it != contents_.end()) {
        m.id = id;
        m.size = it->second.first.size();
        m.summary = it->second.second;
      }
      resp.metas.push_back(m);
    }
    return resp;
  }

  // ---- the rest is not kept in memory ------------------------------------------
#define MAIL_UNSUPPORTED(code, name, Req, Resp) \
  Result<Resp> name(const Req&) override { return error(Code::unavailable, "memory store: " #name " unsupported"); }
  MAIL_UNSUPPORTED(1, domain_add, DomainAddReq, DomainInfo)
  MAIL_UNSUPPORTED(2, domain_remove, DomainRemoveReq, Empty)
  MAIL_UNSUPPORTED(3, domain_list, Empty, DomainListResp)
  MAIL_UNSUPPORTED(10, account_add, AccountAddReq, AccountInfo)
  MAIL_UNSUPPORTED(11, account_remove, AccountRef, Empty)
  MAIL_UNSUPPORTED(12, account_list, AccountListReq, AccountListResp)
  MAIL_UNSUPPORTED(13, account_get, AccountRef, AccountInfo)
  MAIL_UNSUPPORTED(14, account_password, AccountPasswordReq, Empty)
  MAIL_UNSUPPORTED(15, quota_set, QuotaSetReq, AccountInfo)
  MAIL_UNSUPPORTED(20, alias_add, AliasAddReq, AliasInfo)
  MAIL_UNSUPPORTED(21, alias_remove, AliasRemoveReq, Empty)
  MAIL_UNSUPPORTED(22, alias_list, AliasListReq, AliasListResp)
  MAIL_UNSUPPORTED(23, resolve, ResolveReq, ResolveResp)
  MAIL_UNSUPPORTED(45, changes, ChangesReq, ChangesResp)
  MAIL_UNSUPPORTED(50, data_put, DataPutReq, Empty)
  MAIL_UNSUPPORTED(51, data_get, DataKey, DataValue)
  MAIL_UNSUPPORTED(52, data_delete, DataKey, Empty)
  MAIL_UNSUPPORTED(53, data_scan, DataScanReq, DataScanResp)
  MAIL_UNSUPPORTED(60, queue_list, QueueListReq, QueueListResp)
  MAIL_UNSUPPORTED(61, queue_get, QueueRef, QueueEntry)
  MAIL_UNSUPPORTED(62, queue_update, QueueUpdateReq, Empty)
  MAIL_UNSUPPORTED(63, queue_delete, QueueRef, Empty)
  MAIL_UNSUPPORTED(70, stats, Empty, StatsResp)
#undef MAIL_UNSUPPORTED

 private:
  MailboxInfo info(const Box& b) {
    MailboxInfo i = b.info;
    i.messages = static_cast<uint32_t>(b.msgs.size());
    i.unseen = i.deleted = 0;
    i.bytes = 0;
    for (const auto& [u, m] : b.msgs) {
      if (!(m.flags & flag::seen)) ++i.unseen;
      if (m.flags & flag::deleted) ++i.deleted;
      i.bytes += m.size;
    }
    return i;
  }
  Box* find(AccountId a, const std::string& name) {
    for (auto& [id, b] : boxes_)
      if (b.info.account == a && b.info.name == name) return &b;
    return nullptr;
  }
  Box* get(MailboxId id) {
    auto it = boxes_.find(id);
    return it == boxes_.end() ? nullptr : &it->second;
  }
  Box* create_locked(AccountId a, const std::string& name, SpecialUse use) {
    Box b;
    b.info.id = ++next_id_;
    b.info.account = a;
    b.info.name = name;
    b.info.special_use = use;
    b.info.uidvalidity = ++uidvalidity_;
    return &(boxes_[b.info.id] = b);
  }
  void notify(const std::vector<ChangeEvent>& ev) {
    if (ev.empty()) return;
    std::vector<ChangeHandler> hs;
    {
      std::lock_guard l(mu_);
      for (auto& [id, s] : subs_)
        if (s.first == 0 || s.first == ev[0].account) hs.push_back(s.second);
    }
    for (auto& h : hs) h(ev);
  }

  std::mutex mu_;
  std::map<std::string, Acct> accounts_;
  std::map<MailboxId, Box> boxes_;
  std::map<ContentId, std::pair<std::string, std::string>> contents_;
  std::map<uint64_t, std::pair<AccountId, ChangeHandler>> subs_;
  uint64_t next_id_ = 0, next_sub_ = 0;
  ModSeq modseq_ = 1;
  uint32_t uidvalidity_ = 1000;
};

}  // namespace

std::unique_ptr<store::Store> make_memory_store() { return std::make_unique<MemoryStore>(); }

Status memory_store_add_account(store::Store& s, const std::string& address, const std::string& password) {
  auto* m = dynamic_cast<MemoryStore*>(&s);
  if (!m) return error(Code::invalid, "not a memory store");
  return m->add_account(address, password);
}

}  // namespace mail::imap
