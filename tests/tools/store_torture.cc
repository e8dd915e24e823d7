// store-torture: hammers mail-stored with concurrent deliveries and later checks
// that the store kept its promises (tests/integration/test_stored.py).
//
//   store-torture deliver --socket S [--threads 8] [--count N]
//       Each thread delivers messages (N each, 0: until the daemon goes away),
//       every one to two mailboxes in one transaction: its own account's INBOX
//       and the shared all@torture.test INBOX. Each acknowledged delivery is
//       printed as one line, written at once:  ACK <thread> <seq> <content> <uid> <uid_all>
//   store-torture verify --socket S --acks FILE
//       Checks that every acknowledged delivery is present with its content,
//       that every delivery is in both mailboxes or in neither, and that content
//       reference counts and the store's counters match what is referenced.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "store/remote_store.h"

namespace {

using namespace mail::store;

constexpr const char* kDomain = "torture.test";
const std::string kAll = std::string("all@") + kDomain;

std::string account_address(int thread) { return "t" + std::to_string(thread) + "@" + kDomain; }

uint64_t mix(uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The message of (thread, seq): its bytes are a function of the two numbers, so
// verify can rebuild it. Sizes vary; every 64th is large (blob files).
std::string make_content(int thread, uint64_t seq) {
  uint64_t h = mix((static_cast<uint64_t>(thread) << 40) ^ seq);
  size_t size = (seq % 64 == 63) ? 300000 + h % 50000 : 100 + h % 8000;
  std::string m = "From: torture@" + std::string(kDomain) + "\r\nTo: " + account_address(thread) +
                  "\r\nSubject: torture " + std::to_string(thread) + " " + std::to_string(seq) +
                  "\r\nX-Torture: " + std::to_string(thread) + " " + std::to_string(seq) + "\r\n\r\n";
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ";
  size_t col = 0;
  while (m.size() < size) {
    h = mix(h);
    m.push_back(alphabet[h % (sizeof(alphabet) - 1)]);
    if (++col == 76) {
      m += "\r\n";
      col = 0;
    }
  }
  m += "\r\n";
  return m;
}

bool parse_tag(const std::string& content, int& thread, uint64_t& seq) {
  auto at = content.find("\r\nX-Torture: ");
  if (at == std::string::npos) return false;
  std::istringstream in(content.substr(at + 13, 40));
  return static_cast<bool>(in >> thread >> seq);
}

int die(const std::string& what, const mail::Status& st) {
  std::fprintf(stderr, "store-torture: %s: %s\n", what.c_str(), st.to_string().c_str());
  return 1;
}

mail::Result<AccountId> ensure_account(Store& store, const std::string& address) {
  auto a = store.account_add({address, {}, {}, ""});
  if (a.is_ok()) return a->id;
  if (a.code() != mail::Code::exists) return a.status();
  auto g = store.account_get({address});
  if (!g.is_ok()) return g.status();
  return g->id;
}

int run_deliver(const std::string& socket, int threads, uint64_t count) {
  auto store = RemoteStore::connect(socket, "store-torture");
  if (!store.is_ok()) return die("connect", store.status());
  auto d = (*store)->domain_add({kDomain});
  if (!d.is_ok() && d.code() != mail::Code::exists) return die("domain_add", d.status());
  auto all = ensure_account(**store, kAll);
  if (!all.is_ok()) return die("account " + kAll, all.status());
  std::vector<AccountId> ids;
  for (int t = 0; t < threads; ++t) {
    auto id = ensure_account(**store, account_address(t));
    if (!id.is_ok()) return die("account " + account_address(t), id.status());
    ids.push_back(*id);
  }

  std::atomic<uint64_t> acked{0};
  std::mutex err_mu;
  mail::Status first_error;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (uint64_t seq = 0; count == 0 || seq < count; ++seq) {
        DeliverReq req;
        req.content = make_content(t, seq);
        req.internal_date = 1700000000 + static_cast<int64_t>(seq);
        req.targets.push_back(DeliveryTarget{ids[static_cast<size_t>(t)], 0, "INBOX", 0, {}, true});
        req.targets.push_back(DeliveryTarget{*all, 0, "INBOX", 0, {}, true});
        auto r = (*store)->deliver(req);
        mail::Status st = r.status();
        if (r.is_ok() && (r->results.size() != 2 || r->results[0].code != mail::Code::ok ||
                          r->results[1].code != mail::Code::ok))
          st = mail::error(mail::Code::internal, "a target failed: " + (r->results.empty() ? std::string("no results") : r->results[0].message));
        if (!st.is_ok()) {
          std::lock_guard lock(err_mu);
          if (first_error.is_ok()) first_error = st;
          return;
        }
        // One write(2) per line: the test reads acknowledgements up to the kill.
        std::string line = "ACK " + std::to_string(t) + " " + std::to_string(seq) + " " +
                           std::to_string(r->content) + " " + std::to_string(r->results[0].uid) + " " +
                           std::to_string(r->results[1].uid) + "\n";
        if (::write(STDOUT_FILENO, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return;
        ++acked;
      }
    });
  }
  for (auto& w : workers) w.join();
  std::fprintf(stderr, "store-torture: %llu deliveries acknowledged\n", static_cast<unsigned long long>(acked.load()));
  if (!first_error.is_ok()) return die("deliver", first_error);
  return 0;
}

struct Ack {
  ContentId content = 0;
  Uid uid = 0;
  Uid uid_all = 0;
};
struct Seen {
  Uid uid = 0;
  ContentId content = 0;
};

int run_verify(const std::string& socket, const std::string& acks_file) {
  std::map<std::pair<int, uint64_t>, Ack> acks;
  std::ifstream in(acks_file);
  if (!in) {
    std::fprintf(stderr, "store-torture: cannot read %s\n", acks_file.c_str());
    return 1;
  }
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string word;
    int t;
    uint64_t s;
    Ack a;
    // A line cut by the kill is not an acknowledgement.
    if (ls >> word >> t >> s >> a.content >> a.uid >> a.uid_all && word == "ACK") acks[{t, s}] = a;
  }

  auto store = RemoteStore::connect(socket, "store-torture");
  if (!store.is_ok()) return die("connect", store.status());
  std::vector<std::string> problems;
  auto problem = [&](std::string p) { problems.push_back(std::move(p)); };

  auto accounts = (*store)->account_list({kDomain});
  if (!accounts.is_ok()) return die("account_list", accounts.status());
  // Per delivery, where it was found: in its own account and in all@.
  std::map<std::pair<int, uint64_t>, Seen> own, shared;
  std::map<ContentId, uint32_t> refs;
  std::map<ContentId, uint64_t> sizes;
  uint64_t entries = 0;
  for (const AccountInfo& account : accounts->accounts) {
    bool is_all = account.address == kAll;
    auto mb = (*store)->mailbox_get({account.id, "INBOX"});
    if (!mb.is_ok()) return die("mailbox_get " + account.address, mb.status());
    auto list = (*store)->message_list({mb->id, 1, 0});
    if (!list.is_ok()) return die("message_list " + account.address, list.status());
    uint64_t bytes = 0;
    for (const MessageEntry& e : list->messages) {
      ++entries;
      bytes += e.size;
      ++refs[e.content];
      auto c = (*store)->content_get({e.content});
      if (!c.is_ok()) {
        problem(account.address + " uid " + std::to_string(e.uid) + ": content " + std::to_string(e.content) +
                ": " + c.status().to_string());
        continue;
      }
      int t;
      uint64_t s;
      if (!parse_tag(c->bytes, t, s) || c->bytes != make_content(t, s)) {
        problem(account.address + " uid " + std::to_string(e.uid) + ": content is not what was delivered");
        continue;
      }
      if (e.size != c->bytes.size()) problem(account.address + " uid " + std::to_string(e.uid) + ": wrong size");
      sizes[e.content] = c->bytes.size();
      if (!is_all && account.address != account_address(t))
        problem(account.address + ": holds a message of thread " + std::to_string(t));
      auto& where = is_all ? shared : own;
      if (where.count({t, s})) problem(account.address + ": delivery " + std::to_string(t) + "/" + std::to_string(s) + " twice");
      where[{t, s}] = Seen{e.uid, e.content};
    }
    if (list->mailbox.messages != list->messages.size())
      problem(account.address + ": mailbox counts " + std::to_string(list->mailbox.messages) + " messages, lists " +
              std::to_string(list->messages.size()));
    auto info = (*store)->account_get({account.address});
    if (info.is_ok() && (info->used_messages != list->messages.size() || info->used_bytes != bytes))
      problem(account.address + ": quota usage " + std::to_string(info->used_messages) + " messages/" +
              std::to_string(info->used_bytes) + " bytes, holds " + std::to_string(list->messages.size()) + "/" +
              std::to_string(bytes));
  }

  for (const auto& [key, ack] : acks) {
    std::string name = std::to_string(key.first) + "/" + std::to_string(key.second);
    auto o = own.find(key);
    auto a = shared.find(key);
    if (o == own.end() || a == shared.end()) {
      problem("acknowledged delivery " + name + " is missing");
      continue;
    }
    if (o->second.uid != ack.uid || a->second.uid != ack.uid_all || o->second.content != ack.content)
      problem("acknowledged delivery " + name + " has other uids/content than acknowledged");
  }
  // One transaction: in both mailboxes or in neither, sharing one content.
  for (const auto& [key, seen] : own) {
    auto a = shared.find(key);
    if (a == shared.end() || a->second.content != seen.content)
      problem("delivery " + std::to_string(key.first) + "/" + std::to_string(key.second) + " is half applied");
  }
  for (const auto& [key, seen] : shared)
    if (!own.count(key))
      problem("delivery " + std::to_string(key.first) + "/" + std::to_string(key.second) + " is half applied");

  std::vector<ContentId> ids;
  for (const auto& [id, n] : refs) ids.push_back(id);
  auto metas = (*store)->content_meta({ids});
  if (!metas.is_ok()) return die("content_meta", metas.status());
  uint64_t content_bytes = 0;
  for (size_t i = 0; i < ids.size() && i < metas->metas.size(); ++i) {
    const ContentMeta& m = metas->metas[i];
    if (m.id != ids[i] || m.refs != refs[ids[i]])
      problem("content " + std::to_string(ids[i]) + ": refcount " + std::to_string(m.refs) + ", referenced " +
              std::to_string(refs[ids[i]]) + " times");
    content_bytes += sizes[ids[i]];
  }
  auto stats = (*store)->stats({});
  if (!stats.is_ok()) return die("stats", stats.status());
  if (stats->messages != entries || stats->contents != refs.size() || stats->content_bytes != content_bytes)
    problem("stats: " + std::to_string(stats->messages) + " messages, " + std::to_string(stats->contents) +
            " contents, " + std::to_string(stats->content_bytes) + " content bytes; found " + std::to_string(entries) +
            ", " + std::to_string(refs.size()) + ", " + std::to_string(content_bytes));

  for (size_t i = 0; i < problems.size() && i < 30; ++i) std::printf("PROBLEM %s\n", problems[i].c_str());
  std::printf("verified %zu acknowledged deliveries; %zu deliveries, %llu entries, %zu contents; %zu problems\n",
              acks.size(), own.size(), static_cast<unsigned long long>(entries), refs.size(), problems.size());
  return problems.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Concurrent deliveries through mail-stored, and a check of what survived.", "store-torture"};
  app.require_subcommand(1);
  std::string socket, acks;
  int threads = 8;
  uint64_t count = 0;
  auto* deliver = app.add_subcommand("deliver", "deliver messages from many threads, printing each acknowledgement");
  deliver->add_option("--socket", socket, "mail-stored's socket")->required();
  deliver->add_option("--threads", threads, "client threads")->check(CLI::Range(1, 64));
  deliver->add_option("--count", count, "deliveries per thread (0: until the daemon goes away)");
  auto* verify = app.add_subcommand("verify", "check every acknowledged delivery and the store's bookkeeping");
  verify->add_option("--socket", socket, "mail-stored's socket")->required();
  verify->add_option("--acks", acks, "the output of `deliver`")->required();
  CLI11_PARSE(app, argc, argv);
  if (deliver->parsed()) return run_deliver(socket, threads, count);
  return run_verify(socket, acks);
}
