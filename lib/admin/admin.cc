// The admin operations table and its handlers.
#include "admin/admin.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>
#include <functional>
#include <map>
#include <set>

#include "base/address.h"
#include "admin/auth_ops.h"
#include "base/password.h"
#include "config/config.h"

namespace mail::admin {
namespace {

using nlohmann::json;
using store::Store;

std::string dump(const json& j) { return j.dump(2, ' ', false, json::error_handler_t::replace); }

// ---- validation -------------------------------------------------------------------

Result<std::string> domain_arg(std::string_view text) {
  auto d = canonical_domain(text);
  if (!d) return error(Code::invalid, "invalid domain '" + std::string(text) + "': " + d.status().message());
  return d;
}

Result<Address> address_arg(std::string_view text) {
  auto a = parse_address(text);
  if (!a) return error(Code::invalid, "invalid address '" + std::string(text) + "': " + a.status().message());
  return a;
}

// "local@domain" or "@domain" (catch-all) in canonical form, and its domain.
struct Source {
  std::string text;
  std::string domain;
};
Result<Source> source_arg(std::string_view text) {
  if (!text.empty() && text.front() == '@') {
    MAIL_ASSIGN_OR_RETURN(auto d, domain_arg(text.substr(1)));
    return Source{"@" + d, d};
  }
  MAIL_ASSIGN_OR_RETURN(auto a, address_arg(text));
  return Source{a.str(), a.domain};
}

Result<std::vector<store::DomainInfo>> domains(Store& s) {
  MAIL_ASSIGN_OR_RETURN(auto resp, s.domain_list(store::Empty{}));
  return std::move(resp.domains);
}

Status require_domain(Store& s, const std::string& domain) {
  MAIL_ASSIGN_OR_RETURN(auto all, domains(s));
  for (const auto& d : all)
    if (d.name == domain) return Status::ok();
  return error(Code::not_found, "no such domain: " + domain);
}

// The account, or not_found naming it.
Result<store::AccountInfo> existing_account(Store& s, const std::string& address) {
  auto a = s.account_get(store::AccountRef{address});
  if (!a && a.code() == Code::not_found) return error(Code::not_found, "no such account: " + address);
  return a;
}

Result<bool> account_exists(Store& s, const std::string& address) {
  auto a = s.account_get(store::AccountRef{address});
  if (a) return true;
  if (a.code() == Code::not_found) return false;
  return a.status();
}

Result<std::optional<store::AliasInfo>> find_alias(Store& s, const Source& src) {
  MAIL_ASSIGN_OR_RETURN(auto resp, s.alias_list(store::AliasListReq{src.domain}));
  for (auto& a : resp.aliases)
    if (a.source == src.text) return std::optional<store::AliasInfo>(std::move(a));
  return std::optional<store::AliasInfo>();
}

Result<store::Credentials> credentials(const Args& args) {
  const std::string& password = args.get("password");
  if (password.empty()) return error(Code::invalid, "the password is empty");
  auto prepared = saslprep(password);
  if (!prepared) return error(Code::invalid, "unusable password: " + prepared.status().message());
  store::Credentials c;
  MAIL_ASSIGN_OR_RETURN(c.password_hash, hash_password(password));
  ScramKeys keys = derive_scram_keys(*prepared);
  c.scram.salt = std::move(keys.salt);
  c.scram.iterations = keys.iterations;
  c.scram.stored_key = std::move(keys.stored_key);
  c.scram.server_key = std::move(keys.server_key);
  return c;
}

// ---- output shapes ----------------------------------------------------------------

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += sep;
    s += v[i];
  }
  return s;
}

const std::vector<std::string> kDomainColumns = {"domain", "unicode", "accounts", "aliases"};
std::vector<std::string> domain_row(const store::DomainInfo& d) {
  return {d.name, display_domain(d.name), std::to_string(d.accounts), std::to_string(d.aliases)};
}
json domain_json(const store::DomainInfo& d) {
  return {{"domain", d.name}, {"unicode", display_domain(d.name)}, {"created", d.created},
          {"accounts", d.accounts}, {"aliases", d.aliases}};
}

const std::vector<std::string> kAccountColumns = {"address", "name", "quota", "used", "messages"};
std::vector<std::string> account_row(const store::AccountInfo& a) {
  std::string messages = std::to_string(a.used_messages);
  if (a.quota.max_messages) messages += "/" + std::to_string(a.quota.max_messages);
  return {a.address, a.display_name, format_size(a.quota.max_bytes), format_size(a.used_bytes, false),
          messages};
}
json account_json(const store::AccountInfo& a) {
  return {{"address", a.address},
          {"id", a.id},
          {"name", a.display_name},
          {"created", a.created},
          {"disabled", a.disabled},
          {"quota", {{"bytes", a.quota.max_bytes}, {"messages", a.quota.max_messages}}},
          {"used", {{"bytes", a.used_bytes}, {"messages", a.used_messages}}}};
}

Output account_output(const store::AccountInfo& a) {
  return {kAccountColumns, {account_row(a)}, dump(account_json(a))};
}

Output quota_output(const store::AccountInfo& a) {
  Output out;
  out.columns = {"address", "bytes_used", "bytes_limit", "messages_used", "messages_limit"};
  out.rows.push_back({a.address, format_size(a.used_bytes, false), format_size(a.quota.max_bytes),
                      std::to_string(a.used_messages),
                      a.quota.max_messages ? std::to_string(a.quota.max_messages) : "unlimited"});
  out.json = dump({{"address", a.address},
                   {"bytes", {{"used", a.used_bytes}, {"limit", a.quota.max_bytes}}},
                   {"messages", {{"used", a.used_messages}, {"limit", a.quota.max_messages}}}});
  return out;
}

const std::vector<std::string> kAliasColumns = {"source", "targets"};
Output alias_output(const store::AliasInfo& a) {
  return {kAliasColumns, {{a.source, join(a.targets, ", ")}},
          dump({{"source", a.source}, {"targets", a.targets}})};
}

Output removed(std::string_view what, const std::string& name) {
  return {{}, {}, dump({{std::string(what), name}, {"removed", true}})};
}

// ---- domains ----------------------------------------------------------------------

Result<Output> domain_add(Store& s, const Args& args) {
  MAIL_ASSIGN_OR_RETURN(auto name, domain_arg(args.get("DOMAIN")));
  MAIL_ASSIGN_OR_RETURN(auto all, domains(s));
  for (const auto& d : all)
    if (d.name == name) return error(Code::exists, "domain already exists: " + name);
  MAIL_ASSIGN_OR_RETURN(auto info, s.domain_add(store::DomainAddReq{name}));
  return Output{kDomainColumns, {domain_row(info)}, dump(domain_json(info))};
}

Result<Output> domain_remove(Store& s, const Args& args) {
  MAIL_ASSIGN_OR_RETURN(auto name, domain_arg(args.get("DOMAIN")));
  MAIL_TRY(require_domain(s, name));
  MAIL_ASSIGN_OR_RETURN(auto accounts, s.account_list(store::AccountListReq{name}));
  if (!accounts.accounts.empty()) {
    size_t n = accounts.accounts.size();
    return error(Code::not_empty, "domain " + name + " still has " + std::to_string(n) +
                                      (n == 1 ? " account" : " accounts") + "; remove them first");
  }
  MAIL_TRY(s.domain_remove(store::DomainRemoveReq{name}).status());
  return removed("domain", name);
}

Result<Output> domain_list(Store& s, const Args&) {
  MAIL_ASSIGN_OR_RETURN(auto all, domains(s));
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  Output out{kDomainColumns, {}, {}};
  json arr = json::array();
  for (const auto& d : all) {
    out.rows.push_back(domain_row(d));
    arr.push_back(domain_json(d));
  }
  out.json = dump(arr);
  return out;
}

// ---- accounts ---------------------------------------------------------------------

Result<Output> account_add(Store& s, const Args& args) {
  MAIL_ASSIGN_OR_RETURN(auto addr, address_arg(args.get("ADDRESS")));
  const std::string address = addr.str();
  store::Quota quota;
  if (args.has("quota")) {
    MAIL_ASSIGN_OR_RETURN(quota.max_bytes, parse_size(args.get("quota")));
  }
  if (args.has("quota-messages")) {
    MAIL_ASSIGN_OR_RETURN(quota.max_messages, parse_count(args.get("quota-messages")));
  }
  MAIL_TRY(require_domain(s, addr.domain));
  MAIL_ASSIGN_OR_RETURN(bool exists, account_exists(s, address));
  if (exists) return error(Code::exists, "account already exists: " + address);
  MAIL_ASSIGN_OR_RETURN(auto alias, find_alias(s, Source{address, addr.domain}));
  if (alias) return error(Code::exists, "an alias already has the address " + address);
  MAIL_ASSIGN_OR_RETURN(auto creds, credentials(args));
  store::AccountAddReq req;
  req.address = address;
  req.credentials = std::move(creds);
  req.quota = quota;
  req.display_name = args.get("name");
  MAIL_ASSIGN_OR_RETURN(auto info, s.account_add(req));
  return account_output(info);
}

Result<Output> account_remove(Store& s, const Args& args) {
  MAIL_ASSIGN_OR_RETURN(auto addr, address_arg(args.get("ADDRESS")));
  MAIL_ASSIGN_OR_RETURN(auto info, existing_account(s, addr.str()));
  MAIL_TRY(s.account_remove(store::AccountRef{info.address}).status());
  return removed("address", info.address);
}

Result<Output> account_list(Store& s, const Args& args) {
  std::string domain;
  if (args.has("DOMAIN")) {
    MAIL_ASSIGN_OR_RETURN(domain, domain_arg(args.get("DOMAIN")));
    MAIL_TRY(require_domain(s, domain));
  }
  MAIL_ASSIGN_OR_RETURN(auto resp, s.account_list(store::AccountListReq{domain}));
  auto& all = resp.accounts;
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.address < b.address; });
  Output out{kAccountColumns, {}, {}};
  json arr = json::array();
  for (const auto& a : all) {
    out.rows.push_back(account_row(a));
    arr.push_back(account_json(a));
  }
  out.json = dump(arr);
  return out;
}

Result<Output> account_show(Store& s, const Args& args) {
  MAIL_ASSIGN_OR_RETURN(auto addr, address_arg(args.get("ADDRESS")));
  MAIL_ASSIGN_OR_RETURN(auto info, existing_account(s, addr.str()));
  return account_output(info);
}

Result<Output> account_passwd(Store& s, const Args& args) {
  MAIL_ASSIGN_OR_RETURN(auto addr, address_arg(args.get("ADDRESS")));
  MAIL_ASSIGN_OR_RETURN(auto info, existing_account(s, addr.str()));
  MAIL_ASSIGN_OR_RETURN(auto creds, credentials(args));
  MAIL_TRY(s.account_password(store::AccountPasswordReq{info.address, std::move(creds)}).status());
  return Output{{}, {}, dump({{"address", info.address}, {"password_changed", true}})};
}

// ---- quotas -----------------------------------------------------------------------

Result<Output> quota_set(Store& s, const Args& args) {
  MAIL_ASSIGN_OR_RETURN(auto addr, address_arg(args.get("ADDRESS")));
  MAIL_ASSIGN_OR_RETURN(uint64_t bytes, parse_size(args.get("SIZE")));
  std::optional<uint64_t> messages;
  if (args.has("messages")) {
    MAIL_ASSIGN_OR_RETURN(messages, parse_count(args.get("messages")));
  }
  MAIL_ASSIGN_OR_RETURN(auto info, existing_account(s, addr.str()));
  store::QuotaSetReq req{info.address, info.quota};
  req.quota.max_bytes = bytes;
  if (messages) req.quota.max_messages = *messages;
  MAIL_ASSIGN_OR_RETURN(auto updated, s.quota_set(req));
  return quota_output(updated);
}

Result<Output> quota_show(Store& s, const Args& args) {
  MAIL_ASSIGN_OR_RETURN(auto addr, address_arg(args.get("ADDRESS")));
  MAIL_ASSIGN_OR_RETURN(auto info, existing_account(s, addr.str()));
  return quota_output(info);
}

// ---- aliases ----------------------------------------------------------------------

Result<std::vector<std::string>> target_args(const std::vector<std::string>& texts) {
  std::vector<std::string> out;
  for (const auto& t : texts) {
    MAIL_ASSIGN_OR_RETURN(auto a, address_arg(t));
    std::string s = a.str();
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(std::move(s));
  }
  return out;
}

Result<Output> alias_add(Store& s, const Args& args) {
  MAIL_ASSIGN_OR_RETURN(auto src, source_arg(args.get("SOURCE")));
  MAIL_ASSIGN_OR_RETURN(auto targets, target_args(args.list("TARGET")));
  if (targets.empty()) return error(Code::invalid, "an alias needs at least one target");
  for (const auto& t : targets)
    if (t == src.text) return error(Code::invalid, "alias " + src.text + " cannot point to itself");
  MAIL_TRY(require_domain(s, src.domain));
  if (src.text.front() != '@') {
    MAIL_ASSIGN_OR_RETURN(bool is_account, account_exists(s, src.text));
    if (is_account) return error(Code::exists, "an account already has the address " + src.text);
  }
  MAIL_ASSIGN_OR_RETURN(auto existing, find_alias(s, src));
  if (existing) {
    std::vector<std::string> fresh;
    for (const auto& t : targets)
      if (std::find(existing->targets.begin(), existing->targets.end(), t) == existing->targets.end())
        fresh.push_back(t);
    if (fresh.empty())
      return error(Code::exists, "alias " + src.text + " already has " +
                                     (targets.size() == 1 ? "target " : "targets ") + join(targets, ", "));
    targets = std::move(fresh);
  }
  MAIL_ASSIGN_OR_RETURN(auto info, s.alias_add(store::AliasAddReq{src.text, targets}));
  return alias_output(info);
}

Result<Output> alias_remove(Store& s, const Args& args) {
  MAIL_ASSIGN_OR_RETURN(auto src, source_arg(args.get("SOURCE")));
  MAIL_ASSIGN_OR_RETURN(auto targets, target_args(args.list("TARGET")));
  MAIL_ASSIGN_OR_RETURN(auto existing, find_alias(s, src));
  if (!existing) return error(Code::not_found, "no such alias: " + src.text);
  for (const auto& t : targets)
    if (std::find(existing->targets.begin(), existing->targets.end(), t) == existing->targets.end())
      return error(Code::not_found, "alias " + src.text + " has no target " + t);
  MAIL_TRY(s.alias_remove(store::AliasRemoveReq{src.text, targets}).status());
  if (targets.empty() || targets.size() == existing->targets.size()) return removed("source", src.text);
  std::vector<std::string> left;
  for (const auto& t : existing->targets)
    if (std::find(targets.begin(), targets.end(), t) == targets.end()) left.push_back(t);
  return alias_output(store::AliasInfo{src.text, left});
}

Result<Output> alias_list(Store& s, const Args& args) {
  std::string domain;
  if (args.has("DOMAIN")) {
    MAIL_ASSIGN_OR_RETURN(domain, domain_arg(args.get("DOMAIN")));
    MAIL_TRY(require_domain(s, domain));
  }
  MAIL_ASSIGN_OR_RETURN(auto resp, s.alias_list(store::AliasListReq{domain}));
  auto& all = resp.aliases;
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.source < b.source; });
  Output out{kAliasColumns, {}, {}};
  json arr = json::array();
  for (const auto& a : all) {
    out.rows.push_back({a.source, join(a.targets, ", ")});
    arr.push_back({{"source", a.source}, {"targets", a.targets}});
  }
  out.json = dump(arr);
  return out;
}

// ---- outbound queue ---------------------------------------------------------------

std::string_view queue_state_name(store::QueueState s) {
  switch (s) {
    case store::QueueState::queued: return "queued";
    case store::QueueState::deferred: return "deferred";
    case store::QueueState::held: return "held";
    case store::QueueState::delivered: return "delivered";
    case store::QueueState::bounced: return "bouncing";
  }
  return "unknown";
}

std::string_view recipient_state_name(store::RecipientState s) {
  switch (s) {
    case store::RecipientState::pending: return "pending";
    case store::RecipientState::delivered: return "delivered";
    case store::RecipientState::failed: return "failed";
    case store::RecipientState::deferred: return "deferred";
  }
  return "unknown";
}

const std::vector<std::string> kQueueColumns = {"id", "state", "sender", "recipients", "size", "age", "attempts",
                                                "last_error"};

std::string age_text(int64_t seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 120) return std::to_string(seconds) + "s";
  if (seconds < 7200) return std::to_string(seconds / 60) + "m";
  if (seconds < 172800) return std::to_string(seconds / 3600) + "h";
  return std::to_string(seconds / 86400) + "d";
}

std::vector<std::string> queue_row(const store::QueueEntry& e, int64_t now) {
  std::vector<std::string> to;
  for (const auto& r : e.recipients)
    if (r.state == store::RecipientState::pending || r.state == store::RecipientState::deferred)
      to.push_back(r.address);
  return {std::to_string(e.id), std::string(queue_state_name(e.state)), e.sender.empty() ? "<>" : e.sender,
          join(to, ", "), format_size(e.size, false), age_text(now - e.created), std::to_string(e.attempts),
          e.last_error};
}

json queue_json(const store::QueueEntry& e) {
  json rcpts = json::array();
  for (const auto& r : e.recipients)
    rcpts.push_back({{"address", r.address}, {"state", recipient_state_name(r.state)}, {"orcpt", r.orcpt},
                     {"notify", r.notify}, {"last_reply", r.last_reply}});
  return {{"id", e.id}, {"state", queue_state_name(e.state)}, {"sender", e.sender}, {"size", e.size},
          {"created", e.created}, {"next_attempt", e.next_attempt}, {"attempts", e.attempts},
          {"last_error", e.last_error}, {"envid", e.envid}, {"ret", e.ret}, {"smtputf8", e.smtputf8},
          {"require_tls", e.require_tls}, {"recipients", rcpts}};
}

Result<store::QueueId> queue_id_arg(std::string_view text) {
  uint64_t id = 0;
  if (text.empty() || text.size() > 19 || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return error(Code::invalid, "invalid queue id '" + std::string(text) + "': expected a number");
  id = std::stoull(std::string(text));
  return id;
}

Result<store::QueueEntry> existing_entry(Store& s, std::string_view text) {
  MAIL_ASSIGN_OR_RETURN(auto id, queue_id_arg(text));
  auto e = s.queue_get(store::QueueRef{id});
  if (!e && e.code() == Code::not_found) return error(Code::not_found, "no such queue entry: " + std::to_string(id));
  return e;
}

Result<Output> queue_list(Store& s, const Args& args) {
  MAIL_ASSIGN_OR_RETURN(auto resp, s.queue_list(store::QueueListReq{}));
  const int64_t now = std::time(nullptr);
  std::string sender = args.get("sender"), rcpt = args.get("recipient"), state = args.get("state");
  std::string domain;
  if (args.has("domain")) {
    MAIL_ASSIGN_OR_RETURN(domain, domain_arg(args.get("domain")));
  }
  if (!state.empty() && state != "queued" && state != "deferred" && state != "held" && state != "bouncing")
    return error(Code::invalid, "invalid state '" + state + "': expected queued, deferred, held or bouncing");
  int64_t older = 0;
  if (args.has("older-than")) {
    auto d = parse_retry_schedule(args.get("older-than"));
    if (!d || d->size() != 1)
      return error(Code::invalid, "invalid age '" + args.get("older-than") + "': expected e.g. 30m, 2h, 1d");
    older = (*d)[0];
  }
  auto lower = [](std::string v) {
    for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return v;
  };
  Output out{kQueueColumns, {}, {}};
  json arr = json::array();
  for (const auto& e : resp.entries) {
    if (!sender.empty() && lower(e.sender) != lower(sender)) continue;
    if (!state.empty() && queue_state_name(e.state) != state) continue;
    if (older && now - e.created < older) continue;
    bool match_rcpt = rcpt.empty(), match_domain = domain.empty();
    for (const auto& r : e.recipients) {
      match_rcpt = match_rcpt || lower(r.address) == lower(rcpt);
      size_t at = r.address.rfind('@');
      match_domain = match_domain || (at != std::string::npos && lower(r.address.substr(at + 1)) == domain);
    }
    if (!match_rcpt || !match_domain) continue;
    out.rows.push_back(queue_row(e, now));
    arr.push_back(queue_json(e));
  }
  out.json = dump(arr);
  return out;
}

// Queue figures for monitoring: counts by state, pending recipients, bytes, oldest entry.
Result<Output> queue_stats(Store& s, const Args&) {
  MAIL_ASSIGN_OR_RETURN(auto resp, s.queue_list(store::QueueListReq{}));
  const int64_t now = std::time(nullptr);
  std::map<std::string_view, uint64_t> by_state{{"queued", 0}, {"deferred", 0}, {"held", 0}, {"bouncing", 0}};
  uint64_t recipients = 0, bytes = 0;
  int64_t oldest = 0;
  for (const auto& e : resp.entries) {
    ++by_state[queue_state_name(e.state)];
    bytes += e.size;
    oldest = std::max<int64_t>(oldest, now - e.created);
    for (const auto& r : e.recipients)
      recipients += r.state == store::RecipientState::pending || r.state == store::RecipientState::deferred;
  }
  Output out{{"messages", "queued", "deferred", "held", "bouncing", "recipients", "size", "oldest"}, {}, {}};
  out.rows.push_back({std::to_string(resp.entries.size()), std::to_string(by_state["queued"]),
                      std::to_string(by_state["deferred"]), std::to_string(by_state["held"]),
                      std::to_string(by_state["bouncing"]), std::to_string(recipients), format_size(bytes, false),
                      resp.entries.empty() ? "-" : age_text(oldest)});
  out.json = dump(json{{"messages", resp.entries.size()}, {"queued", by_state["queued"]},
                       {"deferred", by_state["deferred"]}, {"held", by_state["held"]},
                       {"bouncing", by_state["bouncing"]}, {"recipients", recipients}, {"bytes", bytes},
                       {"oldest_age_s", oldest}});
  return out;
}

Result<Output> queue_show(Store& s, const Args& args) {
  MAIL_ASSIGN_OR_RETURN(auto e, existing_entry(s, args.get("ID")));
  Output out;
  out.columns = {"id", "recipient", "state", "last_reply"};
  for (const auto& r : e.recipients)
    out.rows.push_back({std::to_string(e.id), r.address, std::string(recipient_state_name(r.state)), r.last_reply});
  out.json = dump(queue_json(e));
  return out;
}

// Applies `change` to each entry named (all entries when `ids` is empty and
// `all` is set), one store transaction per entry.
Result<Output> queue_change(Store& s, const std::vector<std::string>& ids, bool all, std::string_view verb,
                            const std::function<bool(store::QueueEntry&)>& change) {
  std::vector<store::QueueEntry> entries;
  if (ids.empty() && all) {
    MAIL_ASSIGN_OR_RETURN(auto resp, s.queue_list(store::QueueListReq{}));
    entries = std::move(resp.entries);
  }
  for (const auto& id : ids) {  // every id checked before the first write
    MAIL_ASSIGN_OR_RETURN(auto e, existing_entry(s, id));
    entries.push_back(std::move(e));
  }
  json done = json::array();
  for (auto& e : entries) {
    if (!change(e)) continue;
    MAIL_TRY(s.queue_update(store::QueueUpdateReq{e}).status());
    done.push_back(e.id);
  }
  return Output{{}, {}, dump({{std::string(verb), done}})};
}

Result<Output> queue_flush(Store& s, const Args&) {
  return queue_change(s, {}, true, "flushed", [](store::QueueEntry& e) {
    if (e.state == store::QueueState::held) return false;
    e.next_attempt = 0;
    return true;
  });
}

Result<Output> queue_retry(Store& s, const Args& args) {
  return queue_change(s, args.list("ID"), false, "retrying", [](store::QueueEntry& e) {
    if (e.state == store::QueueState::held) e.state = store::QueueState::deferred;
    e.next_attempt = 0;
    return true;
  });
}

Result<Output> queue_hold(Store& s, const Args& args) {
  return queue_change(s, args.list("ID"), false, "held", [](store::QueueEntry& e) {
    e.state = store::QueueState::held;
    return true;
  });
}

Result<Output> queue_release(Store& s, const Args& args) {
  return queue_change(s, args.list("ID"), false, "released", [](store::QueueEntry& e) {
    if (e.state != store::QueueState::held) return false;
    e.state = store::QueueState::deferred;
    e.next_attempt = 0;
    return true;
  });
}

Result<Output> queue_bounce(Store& s, const Args& args) {
  // mail-queued returns them to their senders with a DSN at its next scan.
  return queue_change(s, args.list("ID"), false, "bouncing", [](store::QueueEntry& e) {
    e.state = store::QueueState::bounced;
    e.next_attempt = 0;
    return true;
  });
}

Result<Output> queue_delete(Store& s, const Args& args) {
  std::vector<store::QueueId> ids;
  for (const auto& text : args.list("ID")) {
    MAIL_ASSIGN_OR_RETURN(auto e, existing_entry(s, text));
    ids.push_back(e.id);
  }
  json done = json::array();
  for (auto id : ids) {
    MAIL_TRY(s.queue_delete(store::QueueRef{id}).status());
    done.push_back(id);
  }
  return Output{{}, {}, dump({{"deleted", done}})};
}

// ---- the table --------------------------------------------------------------------

ArgSpec positional(std::string name, std::string help, ArgKind kind, bool required = true) {
  return {std::move(name), std::move(help), kind, true, required, false};
}
ArgSpec option(std::string name, std::string help, ArgKind kind) {
  return {std::move(name), std::move(help), kind, false, false, false};
}
ArgSpec password() { return {"password", "the new password", ArgKind::password, false, true, false}; }

const std::vector<Group> kGroups = {
    {"domain", "Manage the domains this server receives mail for"},
    {"account", "Manage accounts (mailboxes with a login)"},
    {"quota", "Show and set account quotas"},
    {"alias", "Manage aliases, lists and catch-all addresses"},
    {"queue", "Inspect and steer the outbound mail queue"},
    {"dkim", "DKIM signing keys: mail submitted for a domain with a key is signed"},
    {"dmarc", "DMARC aggregate reports from the inbound checks' results"},
    {"tls-report", "SMTP TLS reports (RFC 8460) from the outbound deliveries' MTA-STS and DANE results"},
};

const std::vector<Operation> kOperations = {
    {{"domain", "add"}, "Add a domain (internationalised names are stored as A-labels)",
     {positional("DOMAIN", "domain name", ArgKind::domain)}, domain_add, true},
    {{"domain", "remove"}, "Remove a domain that has no accounts left",
     {positional("DOMAIN", "domain name", ArgKind::domain)}, domain_remove, true},
    {{"domain", "list"}, "List domains with their numbers of accounts and aliases", {}, domain_list, false},

    {{"account", "add"}, "Add an account; its domain must exist",
     {positional("ADDRESS", "the account's address, local@domain", ArgKind::address),
      option("name", "display name", ArgKind::text),
      option("quota", "storage limit (e.g. 500M, 2G; default unlimited)", ArgKind::size),
      option("quota-messages", "message count limit (default unlimited)", ArgKind::count), password()},
     account_add, true},
    {{"account", "remove"}, "Remove an account and all its mail",
     {positional("ADDRESS", "the account's address", ArgKind::address)}, account_remove, true},
    {{"account", "list"}, "List accounts, of every domain or of one",
     {positional("DOMAIN", "only accounts of this domain", ArgKind::domain, false)}, account_list, false},
    {{"account", "show"}, "Show one account",
     {positional("ADDRESS", "the account's address", ArgKind::address)}, account_show, false},
    {{"account", "passwd"}, "Set an account's password",
     {positional("ADDRESS", "the account's address", ArgKind::address), password()}, account_passwd, true},

    {{"quota", "set"}, "Set an account's storage limit (and optionally its message limit)",
     {positional("ADDRESS", "the account's address", ArgKind::address),
      positional("SIZE", "storage limit: bytes, or with K/M/G/T (1024-based); 0 or unlimited", ArgKind::size),
      option("messages", "message count limit; 0 or unlimited", ArgKind::count)},
     quota_set, true},
    {{"quota", "show"}, "Show an account's usage and limits",
     {positional("ADDRESS", "the account's address", ArgKind::address)}, quota_show, false},

    {{"alias", "add"}, "Add targets to an alias (created if new); @domain is the domain's catch-all",
     {positional("SOURCE", "local@domain, or @domain for the catch-all", ArgKind::source),
      {"TARGET", "target addresses, local or remote", ArgKind::address, true, true, true}},
     alias_add, true},
    {{"alias", "remove"}, "Remove targets from an alias; without targets, the whole alias",
     {positional("SOURCE", "local@domain or @domain", ArgKind::source),
      {"TARGET", "targets to remove", ArgKind::address, true, false, true}},
     alias_remove, true},
    {{"alias", "list"}, "List aliases, of every domain or of one",
     {positional("DOMAIN", "only aliases of this domain", ArgKind::domain, false)}, alias_list, false},

    {{"queue", "list"}, "List queued messages, optionally filtered",
     {option("sender", "only from this envelope sender", ArgKind::address),
      option("recipient", "only with this recipient", ArgKind::address),
      option("domain", "only with a recipient in this domain", ArgKind::domain),
      option("state", "only in this state: queued, deferred, held or bouncing", ArgKind::text),
      option("older-than", "only queued longer than this (e.g. 30m, 2h, 1d)", ArgKind::text)},
     queue_list, false},
    {{"queue", "show"}, "Show one queued message and each recipient's state",
     {positional("ID", "queue id", ArgKind::text)}, queue_show, false},
    {{"queue", "stats"}, "Queue figures: messages by state, pending recipients, size, oldest age", {},
     queue_stats, false},
    {{"queue", "flush"}, "Make every queued message (except held ones) due now", {}, queue_flush, true},
    {{"queue", "retry"}, "Make these messages due now (held ones are released)",
     {{"ID", "queue ids", ArgKind::text, true, true, true}}, queue_retry, true},
    {{"queue", "hold"}, "Hold messages: no delivery until released",
     {{"ID", "queue ids", ArgKind::text, true, true, true}}, queue_hold, true},
    {{"queue", "release"}, "Release held messages (due now)",
     {{"ID", "queue ids", ArgKind::text, true, true, true}}, queue_release, true},
    {{"queue", "delete"}, "Delete messages from the queue without notice",
     {{"ID", "queue ids", ArgKind::text, true, true, true}}, queue_delete, true},
    {{"queue", "bounce"}, "Return messages to their senders with a delivery status notification",
     {{"ID", "queue ids", ArgKind::text, true, true, true}}, queue_bounce, true},

    {{"dkim", "keygen"}, "Create a domain's DKIM key and print the DNS TXT record to publish",
     {positional("DOMAIN", "the signing domain (d=)", ArgKind::domain),
      option("selector", "the selector (s=); default s<YYYYMM>", ArgKind::text),
      option("algorithm", "ed25519 (default) or rsa2048", ArgKind::text)},
     dkim_keygen, true},
    {{"dkim", "list"}, "List the domains that have a DKIM key", {}, dkim_list, false},
    {{"dkim", "show"}, "Show a domain's DKIM selector and the TXT record to publish",
     {positional("DOMAIN", "the signing domain", ArgKind::domain)}, dkim_show, false},
    {{"dkim", "remove"}, "Remove a domain's DKIM key (its mail goes out unsigned)",
     {positional("DOMAIN", "the signing domain", ArgKind::domain)}, dkim_remove, true},
    {{"dmarc", "report"}, "Write the DMARC aggregate reports of one day (RFC 7489 XML, gzip), one per domain",
     {option("domain", "only this policy domain", ArgKind::domain),
      option("date", "the UTC day, YYYY-MM-DD; default yesterday", ArgKind::text),
      option("output", "directory to write the .xml.gz files to; default the current one", ArgKind::text),
      option("org", "our organisation name in the reports; default the host name", ArgKind::text),
      option("email", "contact address in the reports; default postmaster@ORG", ArgKind::text)},
     dmarc_report, false},
    {{"dmarc", "send"}, "Mail the DMARC aggregate reports of finished days to each domain's rua, then delete the rows sent",
     {option("date", "only this UTC day, YYYY-MM-DD (today's rows too); default every day before today", ArgKind::text),
      option("keep-days", "also delete rows older than this many days, sent or not; default 7, 0: never", ArgKind::count),
      option("org", "our organisation name in the reports; default general.hostname", ArgKind::text),
      option("email", "the reports' sender and contact address; default postmaster@ORG", ArgKind::text)},
     dmarc_send, true},
    {{"tls-report", "send"}, "Mail the TLS reports of finished days to each domain's _smtp._tls rua, then delete the counts sent",
     {option("date", "only this UTC day, YYYY-MM-DD (today's counts too); default every day before today", ArgKind::text),
      option("keep-days", "also delete counts older than this many days, sent or not; default 7, 0: never", ArgKind::count),
      option("org", "our organisation name in the reports; default general.hostname", ArgKind::text),
      option("email", "the reports' sender and contact address; default postmaster@ORG", ArgKind::text)},
     tls_report_send, true},
};

}  // namespace

std::string Operation::name() const { return join(path, " "); }

std::span<const Operation> operations() { return kOperations; }
std::span<const Group> groups() { return kGroups; }

const Operation* find_operation(std::string_view name) {
  for (const auto& op : kOperations)
    if (op.name() == name) return &op;
  return nullptr;
}

Result<Output> run(const Operation& op, Store& store, const Args& args) {
  for (const auto& entry : args.values) {  // not a structured binding: clang 14 cannot capture one
    const std::string& name = entry.first;
    const std::vector<std::string>& values = entry.second;
    auto spec = std::find_if(op.args.begin(), op.args.end(), [&](const ArgSpec& a) { return a.name == name; });
    if (spec == op.args.end())
      return error(Code::invalid, op.name() + ": unknown argument '" + name + "'");
    if (!spec->multiple && values.size() > 1)
      return error(Code::invalid, op.name() + ": " + name + " given more than once");
  }
  for (const auto& spec : op.args)
    if (spec.required && !args.has(spec.name))
      return error(Code::invalid, op.name() + ": missing " + spec.name);
  return op.handler(store, args);
}

}  // namespace mail::admin
