// Domains, accounts, aliases and recipient resolution on RocksDB.
#include <algorithm>
#include <set>

#include "base/address.h"
#include "store/rocks_internal.h"

namespace mail::store {

namespace {

// The mailboxes every new account starts with.
struct DefaultMailbox {
  const char* name;
  SpecialUse use;
};
constexpr DefaultMailbox kDefaultMailboxes[] = {
    {"INBOX", SpecialUse::none},  {"Sent", SpecialUse::sent},   {"Drafts", SpecialUse::drafts},
    {"Trash", SpecialUse::trash}, {"Junk", SpecialUse::junk},   {"Archive", SpecialUse::archive},
};

Result<Address> parse_account_address(const std::string& text) {
  auto a = parse_address(text);
  if (!a) return error(Code::invalid, "invalid address '" + text + "': " + a.status().message());
  return std::move(a).value();
}

// An alias source: "local@domain", or "@domain" for the catch-all.
Result<Address> parse_alias_source(const std::string& text) {
  if (!text.empty() && text[0] == '@') {
    auto d = canonical_domain(std::string_view(text).substr(1));
    if (!d) return error(Code::invalid, "invalid domain in '" + text + "': " + d.status().message());
    return Address{"", *d};
  }
  return parse_account_address(text);
}

std::string alias_source_text(const Address& a) { return a.local.empty() ? "@" + a.domain : a.str(); }

Result<std::string> canonical_domain_or_invalid(const std::string& text) {
  auto d = canonical_domain(text);
  if (!d) return error(Code::invalid, "invalid domain '" + text + "': " + d.status().message());
  return std::move(d).value();
}

uint64_t count_prefix(Txn& txn, const std::string& prefix) {
  uint64_t n = 0;
  (void)txn.scan(prefix, [&](std::string_view, std::string_view) {
    ++n;
    return true;
  });
  return n;
}

}  // namespace

Result<AccountRecord> account_by_address(Txn& txn, const std::string& address) {
  MAIL_ASSIGN_OR_RETURN(Address a, parse_account_address(address));
  MAIL_ASSIGN_OR_RETURN(auto id, txn.get(key::account_name(a.domain, a.local)));
  if (!id || id->size() != 8) return error(Code::not_found, "no such account: " + a.str());
  return txn.need<AccountRecord>(key::account(get_be64(*id)), "no such account: " + a.str());
}

ModSeq bump_account_modseq(AccountRecord& account) { return ++account.info.state; }

// ---- domains ------------------------------------------------------------------------

Result<DomainInfo> RocksStore::domain_add(const DomainAddReq& req) {
  return impl_->write_op<DomainInfo>([&](Txn& txn) -> Result<DomainInfo> {
    MAIL_ASSIGN_OR_RETURN(std::string name, canonical_domain_or_invalid(req.name));
    if (txn.exists(key::domain(name))) return error(Code::exists, "domain already exists: " + name);
    DomainInfo d;
    d.name = name;
    d.created = now_seconds();
    txn.put_record(key::domain(name), d);
    return d;
  });
}

Result<Empty> RocksStore::domain_remove(const DomainRemoveReq& req) {
  return impl_->write_op<Empty>([&](Txn& txn) -> Result<Empty> {
    MAIL_ASSIGN_OR_RETURN(std::string name, canonical_domain_or_invalid(req.name));
    if (!txn.exists(key::domain(name))) return error(Code::not_found, "no such domain: " + name);
    uint64_t accounts = count_prefix(txn, key::account_name_prefix(name));
    uint64_t aliases = count_prefix(txn, key::alias_prefix(name));
    if (accounts || aliases)
      return error(Code::not_empty, "domain " + name + " still has " + std::to_string(accounts) +
                                        " account(s) and " + std::to_string(aliases) +
                                        " alias(es); remove them first");
    txn.del(key::domain(name));
    return Empty{};
  });
}

Result<DomainListResp> RocksStore::domain_list(const Empty&) {
  DomainListResp resp;
  Status bad;
  MAIL_TRY(impl_->read_scan(std::string(1, key::kDomain), [&](std::string_view k, std::string_view v) {
    DomainInfo d;
    if (!decode(v, d)) {
      bad = error(Code::corrupt, "undecodable domain record");
      return false;
    }
    resp.domains.push_back(std::move(d));
    return true;
  }));
  MAIL_TRY(bad);
  for (auto& d : resp.domains) {
    auto count = [&](const std::string& prefix) {
      uint64_t n = 0;
      (void)impl_->read_scan(prefix, [&](std::string_view, std::string_view) {
        ++n;
        return true;
      });
      return n;
    };
    d.accounts = count(key::account_name_prefix(d.name));
    d.aliases = count(key::alias_prefix(d.name));
  }
  return resp;
}

// ---- accounts -------------------------------------------------------------------------

Result<AccountInfo> RocksStore::account_add(const AccountAddReq& req) {
  return impl_->write_op<AccountInfo>([&](Txn& txn) -> Result<AccountInfo> {
    MAIL_ASSIGN_OR_RETURN(Address a, parse_account_address(req.address));
    if (!txn.exists(key::domain(a.domain))) return error(Code::not_found, "no such domain: " + a.domain);
    if (txn.exists(key::account_name(a.domain, a.local)))
      return error(Code::exists, "account already exists: " + a.str());
    if (txn.exists(key::alias(a.domain, a.local)))
      return error(Code::exists, a.str() + " is already an alias");
    AccountRecord rec;
    rec.info.id = txn.next_id("account");
    rec.info.address = a.str();
    rec.info.display_name = req.display_name;
    rec.info.created = now_seconds();
    rec.info.quota = req.quota;
    rec.credentials = req.credentials;
    std::string id;
    put_be64(id, rec.info.id);
    txn.put(key::account_name(a.domain, a.local), id);
    for (const auto& m : kDefaultMailboxes) {
      MAIL_ASSIGN_OR_RETURN(auto mb, create_mailbox(txn, rec, m.name, m.use, true));
      (void)mb;
    }
    txn.put_record(key::account(rec.info.id), rec);
    return rec.info;
  });
}

Result<Empty> RocksStore::account_remove(const AccountRef& req) {
  return impl_->write_op<Empty>([&](Txn& txn) -> Result<Empty> {
    MAIL_ASSIGN_OR_RETURN(AccountRecord rec, account_by_address(txn, req.address));
    AccountId id = rec.info.id;
    // Every mailbox with its messages, modseq index and content references.
    std::vector<std::pair<std::string, MailboxId>> mailboxes;
    std::string name_prefix = key::mailbox_name(id, "");
    MAIL_TRY(txn.scan(name_prefix, [&](std::string_view k, std::string_view v) {
      if (v.size() == 8) mailboxes.emplace_back(std::string(k), get_be64(v));
      return true;
    }));
    for (const auto& [name_key, mailbox] : mailboxes) {
      std::vector<std::string> keys;
      std::vector<ContentId> contents;
      Status bad;
      MAIL_TRY(txn.scan(key::message_prefix(mailbox), [&](std::string_view k, std::string_view v) {
        MessageEntry e;
        if (!decode(v, e)) {
          bad = error(Code::corrupt, "undecodable message entry");
          return false;
        }
        keys.emplace_back(k);
        contents.push_back(e.content);
        return true;
      }));
      MAIL_TRY(bad);
      MAIL_TRY(txn.scan(key::modseq_prefix(mailbox), [&](std::string_view k, std::string_view) {
        keys.emplace_back(k);
        return true;
      }));
      for (const auto& k : keys) txn.del(k);
      for (ContentId c : contents) MAIL_TRY(release_content(txn, c));
      txn.add_counter("messages", -static_cast<int64_t>(contents.size()));
      txn.del(key::mailbox(mailbox));
      txn.del(name_key);
    }
    std::vector<std::string> keys;
    MAIL_TRY(txn.scan(key::account_log_prefix(id), [&](std::string_view k, std::string_view) {
      keys.emplace_back(k);
      return true;
    }));
    MAIL_TRY(txn.scan(key::data_account_prefix(id), [&](std::string_view k, std::string_view) {
      keys.emplace_back(k);
      return true;
    }));
    for (const auto& k : keys) txn.del(k);
    MAIL_ASSIGN_OR_RETURN(Address a, parse_account_address(rec.info.address));
    txn.del(key::account_name(a.domain, a.local));
    txn.del(key::account(id));
    return Empty{};
  });
}

Result<AccountListResp> RocksStore::account_list(const AccountListReq& req) {
  std::string domain;
  if (!req.domain.empty()) {
    MAIL_ASSIGN_OR_RETURN(domain, canonical_domain_or_invalid(req.domain));
    MAIL_ASSIGN_OR_RETURN(auto d, impl_->read(key::domain(domain)));
    if (!d) return error(Code::not_found, "no such domain: " + domain);
  }
  std::vector<AccountId> ids;
  MAIL_TRY(impl_->read_scan(key::account_name_prefix(domain), [&](std::string_view, std::string_view v) {
    if (v.size() == 8) ids.push_back(get_be64(v));
    return true;
  }));
  AccountListResp resp;
  for (AccountId id : ids) {
    MAIL_ASSIGN_OR_RETURN(auto rec, impl_->read_record<AccountRecord>(key::account(id)));
    if (rec) resp.accounts.push_back(std::move(rec->info));
  }
  return resp;
}

namespace {
Result<AccountRecord> read_account(RocksStore::Impl& impl, const std::string& address) {
  MAIL_ASSIGN_OR_RETURN(Address a, parse_account_address(address));
  MAIL_ASSIGN_OR_RETURN(auto id, impl.read(key::account_name(a.domain, a.local)));
  if (!id || id->size() != 8) return error(Code::not_found, "no such account: " + a.str());
  return impl.read_need<AccountRecord>(key::account(get_be64(*id)), "no such account: " + a.str());
}
}  // namespace

Result<AccountInfo> RocksStore::account_get(const AccountRef& req) {
  MAIL_ASSIGN_OR_RETURN(AccountRecord rec, read_account(*impl_, req.address));
  return rec.info;
}

Result<AccountAuthResp> RocksStore::account_auth(const AccountRef& req) {
  MAIL_ASSIGN_OR_RETURN(AccountRecord rec, read_account(*impl_, req.address));
  return AccountAuthResp{rec.info, rec.credentials};
}

Result<Empty> RocksStore::account_password(const AccountPasswordReq& req) {
  return impl_->write_op<Empty>([&](Txn& txn) -> Result<Empty> {
    MAIL_ASSIGN_OR_RETURN(AccountRecord rec, account_by_address(txn, req.address));
    rec.credentials = req.credentials;
    txn.put_record(key::account(rec.info.id), rec);
    return Empty{};
  });
}

Result<AccountInfo> RocksStore::quota_set(const QuotaSetReq& req) {
  return impl_->write_op<AccountInfo>([&](Txn& txn) -> Result<AccountInfo> {
    MAIL_ASSIGN_OR_RETURN(AccountRecord rec, account_by_address(txn, req.address));
    rec.info.quota = req.quota;
    txn.put_record(key::account(rec.info.id), rec);
    return rec.info;
  });
}

// ---- aliases ----------------------------------------------------------------------------

Result<AliasInfo> RocksStore::alias_add(const AliasAddReq& req) {
  return impl_->write_op<AliasInfo>([&](Txn& txn) -> Result<AliasInfo> {
    MAIL_ASSIGN_OR_RETURN(Address src, parse_alias_source(req.source));
    if (!txn.exists(key::domain(src.domain))) return error(Code::not_found, "no such domain: " + src.domain);
    if (!src.local.empty() && txn.exists(key::account_name(src.domain, src.local)))
      return error(Code::exists, src.str() + " is an account; an alias cannot shadow it");
    if (req.targets.empty()) return error(Code::invalid, "an alias needs at least one target");
    MAIL_ASSIGN_OR_RETURN(auto existing, txn.get_record<AliasInfo>(key::alias(src.domain, src.local)));
    AliasInfo alias = existing ? *existing : AliasInfo{alias_source_text(src), {}};
    size_t added = 0;
    for (const auto& t : req.targets) {
      MAIL_ASSIGN_OR_RETURN(Address target, parse_account_address(t));
      std::string text = target.str();
      if (text == alias.source) return error(Code::invalid, "an alias cannot point at itself: " + text);
      if (std::find(alias.targets.begin(), alias.targets.end(), text) == alias.targets.end()) {
        alias.targets.push_back(text);
        ++added;
      }
    }
    if (added == 0) return error(Code::exists, "alias " + alias.source + " already has those targets");
    txn.put_record(key::alias(src.domain, src.local), alias);
    return alias;
  });
}

Result<Empty> RocksStore::alias_remove(const AliasRemoveReq& req) {
  return impl_->write_op<Empty>([&](Txn& txn) -> Result<Empty> {
    MAIL_ASSIGN_OR_RETURN(Address src, parse_alias_source(req.source));
    std::string k = key::alias(src.domain, src.local);
    MAIL_ASSIGN_OR_RETURN(AliasInfo alias, txn.need<AliasInfo>(k, "no such alias: " + alias_source_text(src)));
    if (req.targets.empty()) {
      txn.del(k);
      return Empty{};
    }
    for (const auto& t : req.targets) {
      MAIL_ASSIGN_OR_RETURN(Address target, parse_account_address(t));
      auto it = std::find(alias.targets.begin(), alias.targets.end(), target.str());
      if (it == alias.targets.end())
        return error(Code::not_found, "alias " + alias.source + " has no target " + target.str());
      alias.targets.erase(it);
    }
    if (alias.targets.empty()) txn.del(k);
    else txn.put_record(k, alias);
    return Empty{};
  });
}

Result<AliasListResp> RocksStore::alias_list(const AliasListReq& req) {
  std::string domain;
  if (!req.domain.empty()) {
    MAIL_ASSIGN_OR_RETURN(domain, canonical_domain_or_invalid(req.domain));
    MAIL_ASSIGN_OR_RETURN(auto d, impl_->read(key::domain(domain)));
    if (!d) return error(Code::not_found, "no such domain: " + domain);
  }
  AliasListResp resp;
  Status bad;
  MAIL_TRY(impl_->read_scan(key::alias_prefix(domain), [&](std::string_view, std::string_view v) {
    AliasInfo a;
    if (!decode(v, a)) {
      bad = error(Code::corrupt, "undecodable alias record");
      return false;
    }
    resp.aliases.push_back(std::move(a));
    return true;
  }));
  MAIL_TRY(bad);
  return resp;
}

// ---- resolution ----------------------------------------------------------------------------

Result<ResolveResp> RocksStore::resolve(const ResolveReq& req) {
  MAIL_ASSIGN_OR_RETURN(Address rcpt, parse_account_address(req.address));
  ResolveResp resp;
  MAIL_ASSIGN_OR_RETURN(auto dom, impl_->read(key::domain(rcpt.domain)));
  if (!dom) {
    resp.kind = ResolveKind::remote_domain;
    return resp;
  }

  std::set<AccountId> accounts;
  std::set<std::string> forwards;
  std::set<std::string> seen;

  // Expands one address; depth bounds alias loops.
  std::function<Status(const Address&, int)> expand = [&](const Address& a, int depth) -> Status {
    if (depth > 8) return error(Code::invalid, "alias nesting too deep at " + a.str());
    if (!seen.insert(a.str()).second) return Status::ok();
    MAIL_ASSIGN_OR_RETURN(auto local_domain, impl_->read(key::domain(a.domain)));
    if (!local_domain) {
      forwards.insert(a.str());
      return Status::ok();
    }
    auto try_account = [&](const std::string& local) -> Result<bool> {
      MAIL_ASSIGN_OR_RETURN(auto id, impl_->read(key::account_name(a.domain, local)));
      if (!id || id->size() != 8) return false;
      accounts.insert(get_be64(*id));
      return true;
    };
    auto try_alias = [&](const std::string& local) -> Result<bool> {
      MAIL_ASSIGN_OR_RETURN(auto alias, impl_->read_record<AliasInfo>(key::alias(a.domain, local)));
      if (!alias) return false;
      for (const auto& t : alias->targets) {
        auto target = parse_address(t);
        if (target) MAIL_TRY(expand(*target, depth + 1));
      }
      return true;
    };
    MAIL_ASSIGN_OR_RETURN(bool found, try_account(a.local));
    if (found) return Status::ok();
    MAIL_ASSIGN_OR_RETURN(found, try_alias(a.local));
    if (found) return Status::ok();
    LocalPart part = split_detail(a.local);
    if (!part.detail.empty()) {
      if (depth == 0) resp.detail = part.detail;
      MAIL_ASSIGN_OR_RETURN(found, try_account(part.user));
      if (found) return Status::ok();
      MAIL_ASSIGN_OR_RETURN(found, try_alias(part.user));
      if (found) return Status::ok();
    }
    MAIL_ASSIGN_OR_RETURN(found, try_alias(""));  // the domain's catch-all
    (void)found;
    return Status::ok();
  };
  MAIL_TRY(expand(rcpt, 0));
  resp.accounts.assign(accounts.begin(), accounts.end());
  resp.forwards.assign(forwards.begin(), forwards.end());
  resp.kind = (accounts.empty() && forwards.empty()) ? ResolveKind::unknown : ResolveKind::local;
  return resp;
}

}  // namespace mail::store
