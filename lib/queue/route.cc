#include "queue/route.h"

#include <arpa/inet.h>

#include <algorithm>
#include <random>

namespace mail::queue {

namespace {

bool is_ip(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

}  // namespace

Result<std::vector<std::string>> host_addresses(auth::Resolver& resolver, const std::string& name) {
  if (is_ip(name)) return std::vector<std::string>{name};
  std::vector<std::string> out;
  auto v6 = resolver.lookup(name, auth::DnsType::aaaa);
  if (!v6 && v6.code() == Code::temporary) return v6.status();
  if (v6) out = *v6;
  auto v4 = resolver.lookup(name, auth::DnsType::a);
  if (!v4 && v4.code() == Code::temporary) return v4.status();
  if (v4) out.insert(out.end(), v4->begin(), v4->end());
  return out;
}

bool uses_smarthost(const QueueConfig& config, std::string_view domain) {
  if (config.smarthost.empty()) return false;
  if (config.smarthost_domains.empty()) return true;
  std::string_view list = config.smarthost_domains;
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (auth::dns_name_key(item) == auth::dns_name_key(domain)) return true;
  }
  return false;
}

Result<Route> find_route(auth::Resolver& resolver, const QueueConfig& config, std::string_view domain) {
  Route route;
  route.port = static_cast<uint16_t>(config.remote_port);
  if (uses_smarthost(config, domain)) {
    const std::string& hp = config.smarthost;
    size_t colon = hp.rfind(':');
    std::string host = hp.substr(0, colon);
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    route.port = static_cast<uint16_t>(std::stoul(hp.substr(colon + 1)));
    route.smarthost = true;
    auto addrs = host_addresses(resolver, host);
    if (!addrs) return error(Code::temporary, "smarthost " + host + ": " + addrs.status().message());
    if (addrs->empty()) return error(Code::temporary, "smarthost " + host + " has no address");
    route.hosts.push_back({host, std::move(*addrs)});
    return route;
  }
  std::string name(domain);
  auto mx = resolver.lookup(name, auth::DnsType::mx);
  if (!mx && mx.code() == Code::not_found) return error(Code::not_found, "no such domain: " + name);
  if (!mx) return error(Code::temporary, "MX lookup for " + name + ": " + mx.status().message());
  struct Pref {
    unsigned pref;
    std::string host;
  };
  std::vector<Pref> prefs;
  for (const auto& rr : *mx) {
    size_t sp = rr.find(' ');
    if (sp == std::string::npos) continue;
    std::string host = rr.substr(sp + 1);
    while (!host.empty() && host.back() == '.') host.pop_back();
    prefs.push_back({static_cast<unsigned>(std::strtoul(rr.c_str(), nullptr, 10)), host});
  }
  if (prefs.size() == 1 && prefs[0].host.empty())
    return error(Code::denied, name + " accepts no mail (null MX)");
  if (prefs.empty()) {  // implicit MX: the domain itself
    prefs.push_back({0, name});
  }
  // Equal preferences in random order spread the load (RFC 5321 5.1).
  static thread_local std::mt19937 rng{std::random_device{}()};
  std::shuffle(prefs.begin(), prefs.end(), rng);
  std::stable_sort(prefs.begin(), prefs.end(), [](const Pref& a, const Pref& b) { return a.pref < b.pref; });
  bool temporary = false;
  for (const auto& p : prefs) {
    if (p.host.empty()) continue;
    auto addrs = host_addresses(resolver, p.host);
    if (!addrs) {
      temporary = true;
      continue;
    }
    if (!addrs->empty()) route.hosts.push_back({p.host, std::move(*addrs)});
  }
  if (route.hosts.empty()) {
    if (temporary) return error(Code::temporary, "cannot resolve the mail hosts of " + name);
    return error(Code::not_found, "no address for the mail hosts of " + name);
  }
  return route;
}

}  // namespace mail::queue
