#include "auth/resolver.h"

#include <arpa/inet.h>
#include <unbound.h>

#include <poll.h>

#include <atomic>
#include <cctype>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "base/lines.h"

namespace mail::auth {

std::string_view dns_type_name(DnsType type) {
  switch (type) {
    case DnsType::a: return "A";
    case DnsType::aaaa: return "AAAA";
    case DnsType::mx: return "MX";
    case DnsType::txt: return "TXT";
    case DnsType::ptr: return "PTR";
  }
  return "?";
}

std::string dns_name_key(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string out(name);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// ---- stub ---------------------------------------------------------------------

void StubResolver::add(std::string_view name, DnsType type, std::string value) {
  std::string key = dns_name_key(name);
  names_.insert(key);
  records_[{key, type}].push_back(std::move(value));
}

void StubResolver::fail(std::string_view name) {
  std::string key = dns_name_key(name);
  if (key.size() >= 2 && key.compare(key.size() - 2, 2, ".*") == 0) {
    failing_prefixes_.push_back(key.substr(0, key.size() - 1));
  } else {
    failing_.insert(key);
  }
}

void StubResolver::fail(std::string_view name, DnsType type) { failing_types_.insert({dns_name_key(name), type}); }

namespace {

bool parse_type(std::string_view text, DnsType& type) {
  static const std::pair<std::string_view, DnsType> types[] = {
      {"TXT", DnsType::txt}, {"A", DnsType::a}, {"AAAA", DnsType::aaaa}, {"MX", DnsType::mx}, {"PTR", DnsType::ptr}};
  for (const auto& [name, t] : types) {
    if (text == name) {
      type = t;
      return true;
    }
  }
  return false;
}

}  // namespace

void StubResolver::touch(std::string_view name) { names_.insert(dns_name_key(name)); }

namespace {

// "\\" and "\xHH" escapes, so names and values may hold spaces, newlines, anything.
std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == '\\') {
      out.push_back('\\');
      ++i;
    } else if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] == 'x' && isxdigit(static_cast<unsigned char>(s[i + 2])) &&
               isxdigit(static_cast<unsigned char>(s[i + 3]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 2, 2)), nullptr, 16)));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

Status StubResolver::load_zone(std::string_view text) {
  size_t line_no = 0;
  while (!text.empty()) {
    std::string_view line = next_line(text);
    ++line_no;
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string_view::npos || line[start] == '#') continue;
    line.remove_prefix(start);
    size_t sp = line.find_first_of(" \t");
    std::string name_text = unescape(line.substr(0, sp));
    std::string_view name = name_text;
    std::string_view rest = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
    size_t ts = rest.find_first_not_of(" \t");
    rest = ts == std::string_view::npos ? std::string_view() : rest.substr(ts);
    size_t te = rest.find_first_of(" \t");
    std::string_view type = rest.substr(0, te);
    std::string_view value;
    if (te != std::string_view::npos) {
      value = rest.substr(te + 1);
      size_t vs = value.find_first_not_of(" \t");
      value = vs == std::string_view::npos ? std::string_view() : value.substr(vs);
    }
    DnsType t;
    if (type == "TIMEOUT") {
      if (value.empty()) {
        fail(name);
      } else if (parse_type(value, t)) {
        fail(name, t);
      } else {
        return error(Code::invalid, "zone line " + std::to_string(line_no) + ": unknown type '" +
                                        std::string(value) + "'");
      }
    } else if (type == "EXISTS") {
      touch(name);
    } else if (parse_type(type, t)) {
      add(name, t, unescape(value));
    } else {
      return error(Code::invalid, "zone line " + std::to_string(line_no) + ": unknown type '" +
                                      std::string(type) + "'");
    }
  }
  return Status::ok();
}

Result<std::vector<std::string>> StubResolver::lookup(std::string_view name, DnsType type) {
  std::atomic_ref<size_t>(lookups_).fetch_add(1, std::memory_order_relaxed);
  std::string key = dns_name_key(name);
  bool timeout = failing_.count(key) || failing_types_.count({key, type});
  for (const auto& prefix : failing_prefixes_) timeout = timeout || key.compare(0, prefix.size(), prefix) == 0;
  if (timeout) return error(Code::temporary, "DNS timeout for " + key);
  auto it = records_.find({key, type});
  if (it != records_.end()) return it->second;
  if (names_.count(key)) return std::vector<std::string>();
  return error(Code::not_found, "no such domain: " + key);
}

// ---- libunbound -----------------------------------------------------------------

namespace {

// A wire-format name in rdata (uncompressed: libunbound expands it) as text.
bool wire_name(const unsigned char* p, size_t len, size_t& pos, std::string& out) {
  out.clear();
  while (pos < len) {
    unsigned n = p[pos++];
    if (n == 0) return true;
    if (n > 63 || pos + n > len) return false;
    if (!out.empty()) out.push_back('.');
    out.append(reinterpret_cast<const char*>(p + pos), n);
    pos += n;
  }
  return false;
}

// The records of a libunbound answer as text (see Resolver::lookup).
Result<std::vector<std::string>> answer_records(const ub_result* result, DnsType type, const std::string& qname) {
  if (result->rcode == 3) return error(Code::not_found, "no such domain: " + qname);
  if (result->rcode != 0) {
    return error(Code::temporary, "DNS server failure (rcode " + std::to_string(result->rcode) + ") for " + qname);
  }
  std::vector<std::string> out;
  if (!result->havedata) return out;
  for (int i = 0; result->data[i]; ++i) {
    const auto* p = reinterpret_cast<const unsigned char*>(result->data[i]);
    size_t len = static_cast<size_t>(result->len[i]);
    std::string text;
    switch (type) {
      case DnsType::txt: {
        size_t pos = 0;
        while (pos < len) {
          size_t n = p[pos++];
          if (pos + n > len) break;
          text.append(reinterpret_cast<const char*>(p + pos), n);
          pos += n;
        }
        break;
      }
      case DnsType::a:
      case DnsType::aaaa: {
        char buf[INET6_ADDRSTRLEN];
        int family = type == DnsType::a ? AF_INET : AF_INET6;
        if (len != (type == DnsType::a ? 4u : 16u) || !inet_ntop(family, p, buf, sizeof buf)) continue;
        text = buf;
        break;
      }
      case DnsType::mx: {
        if (len < 3) continue;
        unsigned pref = (p[0] << 8) | p[1];
        size_t pos = 2;
        std::string host;
        if (!wire_name(p, len, pos, host)) continue;
        text = std::to_string(pref) + " " + host;
        break;
      }
      case DnsType::ptr: {
        size_t pos = 0;
        if (!wire_name(p, len, pos, text)) continue;
        break;
      }
    }
    out.push_back(std::move(text));
  }
  return out;
}

int rr_type(DnsType type) {
  switch (type) {
    case DnsType::a: return 1;
    case DnsType::aaaa: return 28;
    case DnsType::mx: return 15;
    case DnsType::txt: return 16;
    case DnsType::ptr: return 12;
  }
  return 0;
}

// One ub_ctx for the process (its cache is shared by every caller). Queries
// are asynchronous: a thread of ours runs ub_process() and hands each answer
// to the caller waiting for it, so concurrent lookups do not queue behind each
// other and a caller stops waiting at its deadline (the query is cancelled).
class UnboundResolver : public Resolver {
 public:
  explicit UnboundResolver(ub_ctx* ctx) : ctx_(ctx), thread_([this] { serve(); }) {}
  ~UnboundResolver() override {
    stop_ = true;
    thread_.join();
    ub_ctx_delete(ctx_);
  }

  Result<std::vector<std::string>> lookup(std::string_view name, DnsType type) override {
    return lookup_until(name, type, std::chrono::steady_clock::now() + std::chrono::seconds(30));
  }

  Result<std::vector<std::string>> lookup_until(std::string_view name, DnsType type,
                                                std::chrono::steady_clock::time_point deadline) override {
    std::string qname(name);
    auto pending = std::make_shared<Pending>();
    // The callback owns one reference until it runs (or the query is cancelled).
    auto* box = new std::shared_ptr<Pending>(pending);
    int id = 0;
    int err = ub_resolve_async(ctx_, qname.c_str(), rr_type(type), 1, box, &UnboundResolver::done, &id);
    if (err != 0) {
      delete box;
      return error(Code::temporary, std::string("DNS: ") + ub_strerror(err));
    }
    std::unique_lock lock(pending->mu);
    if (!pending->cv.wait_until(lock, deadline, [&] { return pending->finished; })) {
      lock.unlock();
      // Cancelled before the answer came: the callback will never run.
      if (ub_cancel(ctx_, id) == 0) delete box;
      return error(Code::temporary, "DNS timeout for " + qname);
    }
    if (pending->err != 0) return error(Code::temporary, std::string("DNS: ") + ub_strerror(pending->err));
    std::unique_ptr<ub_result, void (*)(ub_result*)> guard(pending->result, ub_resolve_free);
    pending->result = nullptr;
    return answer_records(guard.get(), type, qname);
  }

 private:
  struct Pending {
    std::mutex mu;
    std::condition_variable cv;
    bool finished = false;
    int err = 0;
    ub_result* result = nullptr;
    ~Pending() {
      if (result) ub_resolve_free(result);
    }
  };

  static void done(void* data, int err, ub_result* result) {
    auto* box = static_cast<std::shared_ptr<Pending>*>(data);
    {
      std::lock_guard lock((*box)->mu);
      (*box)->err = err;
      (*box)->result = result;
      (*box)->finished = true;
    }
    (*box)->cv.notify_one();
    delete box;
  }

  void serve() {
    int fd = ub_fd(ctx_);
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 100) > 0) ub_process(ctx_);
    }
  }

  ub_ctx* ctx_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Answers from threads, not forked processes (the daemons are threaded).
ub_ctx* new_context() {
  ub_ctx* ctx = ub_ctx_create();
  if (ctx) ub_ctx_async(ctx, 1);
  return ctx;
}

}  // namespace

Result<std::vector<std::string>> Resolver::lookup_until(std::string_view name, DnsType type,
                                                        std::chrono::steady_clock::time_point deadline) {
  if (std::chrono::steady_clock::now() >= deadline) {
    return error(Code::temporary, "DNS time budget spent before " + dns_name_key(name));
  }
  return lookup(name, type);
}

Result<std::vector<std::string>> BudgetResolver::lookup(std::string_view name, DnsType type) {
  if (std::chrono::steady_clock::now() >= deadline_) {
    return error(Code::temporary, "DNS time budget spent before " + dns_name_key(name));
  }
  return inner_.lookup_until(name, type, deadline_);
}

Result<std::unique_ptr<Resolver>> make_system_resolver() {
  ub_ctx* ctx = new_context();
  if (!ctx) return error(Code::internal, "cannot create a DNS resolver");
  if (int err = ub_ctx_resolvconf(ctx, nullptr); err != 0) {
    ub_ctx_delete(ctx);
    return error(Code::config, std::string("cannot read /etc/resolv.conf: ") + ub_strerror(err));
  }
  ub_ctx_hosts(ctx, nullptr);  // optional
  return std::unique_ptr<Resolver>(new UnboundResolver(ctx));
}

Result<std::unique_ptr<Resolver>> make_forwarding_resolver(const std::string& server) {
  ub_ctx* ctx = new_context();
  if (!ctx) return error(Code::internal, "cannot create a DNS resolver");
  // libunbound never asks 127.0.0.1 unless told to: tests run their DNS server there.
  ub_ctx_set_option(ctx, "do-not-query-localhost:", "no");
  if (int err = ub_ctx_set_fwd(ctx, server.c_str()); err != 0) {
    ub_ctx_delete(ctx);
    return error(Code::config, "bad DNS server address " + server + ": " + ub_strerror(err));
  }
  return std::unique_ptr<Resolver>(new UnboundResolver(ctx));
}

}  // namespace mail::auth
