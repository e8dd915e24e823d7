// The field table below is the configuration's single description: parsing,
// checking, rendering (`mailctl config show`) and the help text all read it.
// A new setting is one member in config.h and one line here.
#include "config/config.h"

#include <arpa/inet.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string_view>
#include <tuple>
#include <variant>
#include <vector>

// Heavy: included here only, never from a header.
#include <toml++/toml.h>

namespace mail {
namespace {

// Where a field lives in a Config; the alternative is the field's type
// (string, unsigned integer of that width, bool).
using Ref = std::variant<std::string*, uint32_t*, uint64_t*, bool*>;
// A value as read from the file, before it is stored.
using Value = std::variant<std::string, uint64_t, bool>;
// Returns what is wrong with a value ("" when it is fine).
using Check = std::string (*)(const Value&);

template <auto Section, auto Member>
Ref ref_to(Config& c) {
  return &((c.*Section).*Member);
}

struct Field {
  std::string_view section;
  std::string_view key;
  Ref (*ref)(Config&);
  std::string_view help;
  Check check;  // nullptr: any value of the type
};

// ---- checks -------------------------------------------------------------------

const std::string* as_string(const Value& v) { return std::get_if<std::string>(&v); }

std::string positive(const Value& v) {
  const auto* n = std::get_if<uint64_t>(&v);
  return n && *n == 0 ? "expected a number greater than 0" : "";
}

std::string non_empty(const Value& v) {
  const auto* s = as_string(v);
  return s && s->empty() ? "must not be empty" : "";
}

std::string log_level(const Value& v) {
  const auto* s = as_string(v);
  if (!s || *s == "debug" || *s == "info" || *s == "warn" || *s == "error") return "";
  return "expected one of debug, info, warn, error (got \"" + *s + "\")";
}

std::string tls_version(const Value& v) {
  const auto* s = as_string(v);
  if (!s || *s == "1.2" || *s == "1.3") return "";
  return "expected \"1.2\" or \"1.3\" (got \"" + *s + "\")";
}

bool host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.';
}

std::string hostname(const Value& v) {
  const auto* s = as_string(v);
  if (!s || s->empty()) return "";
  if (std::all_of(s->begin(), s->end(), host_char) && s->front() != '.' && s->front() != '-') {
    return "";
  }
  return "expected a host name (letters, digits, '-' and '.') or \"\" (got \"" + *s + "\")";
}

// What is wrong with "host:port" / "[ipv6]:port" ("" when nothing).
std::string host_port_problem(std::string_view s) {
  std::string_view host, port;
  if (s.front() == '[') {
    size_t close = s.find("]:");
    if (close == std::string_view::npos) return "expected [ipv6]:port";
    std::string addr(s.substr(1, close - 1));
    in6_addr a6;
    if (inet_pton(AF_INET6, addr.c_str(), &a6) != 1) return "not an IPv6 address: " + addr;
    port = s.substr(close + 2);
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) return "missing :port";
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return "an IPv6 address goes in brackets, [::1]:25";
    }
    if (host.empty()) return "missing host";
    if (!std::all_of(host.begin(), host.end(), host_char)) {
      return "not a host name or IPv4 address: " + std::string(host);
    }
  }
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return "the port must be a number from 1 to 65535";
  }
  unsigned long n = std::strtoul(std::string(port).c_str(), nullptr, 10);
  if (n < 1 || n > 65535) return "the port must be a number from 1 to 65535";
  return "";
}

std::string listen_address(const Value& v) {
  const auto* s = as_string(v);
  if (!s || s->empty()) return "";
  std::string problem = host_port_problem(*s);
  if (problem.empty()) return "";
  return "expected host:port, [ipv6]:port or \"\" for off (got \"" + *s + "\": " + problem + ")";
}

std::string lmtp_address(const Value& v) {
  const auto* s = as_string(v);
  if (!s || s->empty()) return "";
  std::string problem;
  if (s->rfind("unix:", 0) == 0) {
    std::string_view path = std::string_view(*s).substr(5);
    if (path.empty() || path.front() != '/') {
      problem = "the socket path must be absolute";
    } else if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
      problem = "the socket path is longer than " +
                std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes";
    }
  } else {
    problem = host_port_problem(*s);
  }
  if (problem.empty()) return "";
  return "expected unix:/path, host:port, [ipv6]:port or \"\" for off (got \"" + *s +
         "\": " + problem + ")";
}

std::string retry_schedule(const Value& v) {
  const auto* s = as_string(v);
  if (!s) return "";
  auto parsed = parse_retry_schedule(*s);
  return parsed ? "" : parsed.status().message();
}

std::string smarthost_address(const Value& v) {
  const auto* s = as_string(v);
  if (!s || s->empty()) return "";
  std::string problem = host_port_problem(*s);
  return problem.empty() ? "" : "expected host:port or \"\" for none (got \"" + *s + "\": " + problem + ")";
}

std::string port_number(const Value& v) {
  const auto* n = std::get_if<uint64_t>(&v);
  return n && (*n == 0 || *n > 65535) ? "expected a port from 1 to 65535" : "";
}

std::string dmarc_policy(const Value& v) {
  const auto* s = as_string(v);
  if (!s || *s == "reject" || *s == "quarantine" || *s == "tag") return "";
  return "expected one of reject, quarantine, tag (got \"" + *s + "\")";
}

// A score such as "5.0" or "-1.5" ([spam] thresholds are decimals; TOML floats are not a field type).
std::string spam_score(const Value& v) {
  const auto* score = as_string(v);
  char* score_end = nullptr;
  if (!score || (!score->empty() && (std::strtod(score->c_str(), &score_end), *score_end == '\0'))) return "";
  return "expected a number such as \"5.0\" (got \"" + *score + "\")";
}

// ---- the table ----------------------------------------------------------------

#define MAIL_FIELD(sec, name, help, check) \
  Field { #sec, #name, &ref_to<&Config::sec, &decltype(Config::sec)::name>, help, check }

const Field kFields[] = {
    MAIL_FIELD(general, hostname,
               "Host name in greetings, Received headers and bounces; empty: the machine's name.",
               hostname),
    MAIL_FIELD(general, data_dir, "Directory of the store, its sockets, keys and queue.",
               non_empty),
    MAIL_FIELD(general, user, "Daemons started as root drop to this user; empty: stay as started.",
               nullptr),
    MAIL_FIELD(general, log_level, "Least severe messages logged: debug, info, warn or error.",
               log_level),
    MAIL_FIELD(general, syslog, "Log to syslog instead of stderr.", nullptr),

    MAIL_FIELD(tls, cert_file,
               "Certificate chain (PEM); empty: <data_dir>/tls/cert.pem, generated for the demo.",
               nullptr),
    MAIL_FIELD(tls, key_file, "Private key (PEM) of cert_file; set both or neither.", nullptr),
    MAIL_FIELD(tls, min_version, "Oldest TLS version accepted: \"1.2\" or \"1.3\".", tls_version),

    MAIL_FIELD(store, socket, "Socket of mail-stored; empty: <data_dir>/stored.sock.", nullptr),
    MAIL_FIELD(store, block_cache_mb, "RocksDB block cache, in MiB.", positive),
    MAIL_FIELD(store, max_clients, "Most local connections mail-stored serves at once.", positive),
    MAIL_FIELD(store, max_frame_bytes, "Largest request on the local protocol, in bytes.",
               positive),

    MAIL_FIELD(smtp, listen_mx, "MX listener (port 25 in production), host:port; \"\": off.",
               listen_address),
    MAIL_FIELD(smtp, listen_submission,
               "Submission listener with STARTTLS (port 587), host:port; \"\": off.",
               listen_address),
    MAIL_FIELD(smtp, listen_submissions,
               "Submission listener with implicit TLS (port 465), host:port; \"\": off.",
               listen_address),
    MAIL_FIELD(smtp, listen_lmtp, "LMTP listener, unix:/path or host:port; \"\": off.",
               lmtp_address),
    MAIL_FIELD(smtp, max_message_size, "Largest message accepted (SIZE), in bytes.", positive),
    MAIL_FIELD(smtp, max_recipients, "Most recipients of one message.", positive),
    MAIL_FIELD(smtp, max_line_length, "Longest command or text line, in bytes.", positive),
    MAIL_FIELD(smtp, command_timeout_s, "Seconds to wait for the next command.", positive),
    MAIL_FIELD(smtp, data_timeout_s, "Seconds to wait for more message data.", positive),
    MAIL_FIELD(smtp, max_sessions_per_ip, "Most concurrent sessions from one client address.",
               positive),
    MAIL_FIELD(smtp, max_unauth_commands,
               "Commands a client may send before authenticating or sending mail.", positive),
    MAIL_FIELD(smtp, max_auth_failures, "Failed AUTH attempts before the session is closed.",
               positive),
    MAIL_FIELD(smtp, allow_plain_auth_on_loopback,
               "Allow AUTH PLAIN/LOGIN without TLS on loopback connections.", nullptr),
    MAIL_FIELD(smtp, vrfy, "Enable the VRFY command.", nullptr),

    MAIL_FIELD(imap, listen, "IMAP listener with STARTTLS (port 143), host:port; \"\": off.",
               listen_address),
    MAIL_FIELD(imap, listen_tls,
               "IMAP listener with implicit TLS (port 993), host:port; \"\": off.", listen_address),
    MAIL_FIELD(imap, max_literal, "Largest literal a client may send (APPEND), in bytes.",
               positive),
    MAIL_FIELD(imap, max_line_length, "Longest command line, in bytes.", positive),
    MAIL_FIELD(imap, idle_timeout_s, "Seconds an idle client is kept before it is logged out.",
               positive),
    MAIL_FIELD(imap, allow_plain_auth_on_loopback,
               "Allow LOGIN and AUTHENTICATE PLAIN without TLS on loopback connections.", nullptr),

    MAIL_FIELD(queue, retry_schedule,
               "Delays between delivery attempts (s, m, h, d), the last one repeating.", retry_schedule),
    MAIL_FIELD(queue, max_age_s, "Seconds a message may stay queued before it bounces.", positive),
    MAIL_FIELD(queue, poll_interval_ms, "Milliseconds between scans of the queue for due mail.", positive),
    MAIL_FIELD(queue, max_connections, "Outbound deliveries at once.", positive),
    MAIL_FIELD(queue, max_per_destination, "Outbound deliveries at once to one domain.", positive),
    MAIL_FIELD(queue, remote_port, "SMTP port of remote mail exchangers.", port_number),
    MAIL_FIELD(queue, resolver, "DNS server for MX lookups, IP or IP@PORT; empty: /etc/resolv.conf.",
               nullptr),
    MAIL_FIELD(queue, helo_name, "Name sent in EHLO; empty: general.hostname.", hostname),
    MAIL_FIELD(queue, connect_timeout_s, "Seconds to wait for a remote host to answer.", positive),
    MAIL_FIELD(queue, command_timeout_s, "Seconds to wait for each remote reply.", positive),
    MAIL_FIELD(queue, smarthost, "Relay all (or smarthost_domains') outbound mail here, host:port; \"\": none.",
               smarthost_address),
    MAIL_FIELD(queue, smarthost_domains,
               "Comma-separated destination domains sent to the smarthost; empty: all.", nullptr),
    MAIL_FIELD(queue, smarthost_user, "User for AUTH PLAIN at the smarthost; empty: no AUTH.", nullptr),
    MAIL_FIELD(queue, smarthost_password_file, "File holding the smarthost password.", nullptr),
    MAIL_FIELD(queue, smarthost_require_tls, "Send to the smarthost only over TLS.", nullptr),
    MAIL_FIELD(queue, smarthost_tls_verify, "Verify the smarthost's certificate and host name.", nullptr),
    MAIL_FIELD(queue, mta_sts, "Apply the MTA-STS policies (RFC 8461) of destination domains.", nullptr),
    MAIL_FIELD(queue, mta_sts_port, "HTTPS port of MTA-STS policy hosts.", port_number),
    MAIL_FIELD(queue, tls_ca_file, "PEM file of CAs trusted besides the system's for verified TLS (MTA-STS, smarthost).", nullptr),
    MAIL_FIELD(queue, dane, "Apply DANE (RFC 7672) TLSA records of MX hosts; needs a readable dnssec_trust_anchor.", nullptr),
    MAIL_FIELD(queue, dnssec_trust_anchor, "DNSSEC trust anchors (DS/DNSKEY zone lines) the DANE lookups validate from.", nullptr),
    MAIL_FIELD(queue, dane_recheck_s, "Seconds DANE stays off after the anchor could not be read or validated, before asking again.", positive),
    MAIL_FIELD(queue, delay_warning_s, "Seconds after which deferred recipients with NOTIFY=DELAY get one delay report; 0: never.", nullptr),
    MAIL_FIELD(queue, session_idle_s, "Seconds an SMTP session stays open for the next message to the same host; 0: one session per message.", nullptr),
    MAIL_FIELD(auth, verify_inbound, "Check SPF, DKIM, DMARC and ARC of MX mail and add Authentication-Results.", nullptr),
    MAIL_FIELD(auth, authserv_id, "Our name in Authentication-Results; empty: general.hostname.", hostname),
    MAIL_FIELD(auth, dmarc_policy, "DMARC failures: reject (p=reject refused, p=quarantine to Junk), quarantine (both to Junk) or tag (header only).", dmarc_policy),
    MAIL_FIELD(auth, resolver, "DNS server for the checks, IP or IP@PORT; empty: /etc/resolv.conf.", nullptr),
    MAIL_FIELD(auth, dns_budget_ms, "Time all DNS lookups of one message may take together, in ms (then temperror).", positive),
    MAIL_FIELD(auth, check_loopback, "Also check clients on loopback addresses (local software is trusted otherwise).", nullptr),
    MAIL_FIELD(auth, dmarc_reports, "Record DMARC results per source for aggregate reports (mailctl dmarc report).", nullptr),
    MAIL_FIELD(spam, enabled, "Score incoming mail in the SMTP server (headers, Junk, rejection).", nullptr),
    MAIL_FIELD(spam, required_score, "Score at or above which a message is spam and filed into Junk.", spam_score),
    MAIL_FIELD(spam, reject_score, "Score at or above which SMTP refuses a message (5xx); \"0\": never.", spam_score),
    MAIL_FIELD(spam, rules_file, "Rule file adding rules and changing scores; empty: built-in rules only.", nullptr),
    MAIL_FIELD(spam, dnsbl, "Comma-separated DNS block lists for the client IP; empty: none (offline).", nullptr),
    MAIL_FIELD(spam, uribl, "Comma-separated URI block lists for link domains; empty: none (offline).", nullptr),
    MAIL_FIELD(spam, token_expiry_days, "Days after which a token not trained again is forgotten; 0: never.", nullptr),
    MAIL_FIELD(spam, learn_from_imap, "Train an account's filter when mail is moved into or out of Junk.", nullptr),
    MAIL_FIELD(spam, bulk_min_users, "BULK_DIGEST fires when one body reaches this many local users; 0: off.", nullptr),
    MAIL_FIELD(spam, bulk_window_hours, "Hours over which BULK_DIGEST counts the users a body reached.", nullptr),
};

#undef MAIL_FIELD

// Sections in the order of their first field, so a new section is only its fields.
const std::vector<std::string_view>& sections() {
  static const std::vector<std::string_view> out = [] {
    std::vector<std::string_view> v;
    for (const Field& f : kFields)
      if (std::find(v.begin(), v.end(), f.section) == v.end()) v.push_back(f.section);
    return v;
  }();
  return out;
}

const Field* find_field(std::string_view section, std::string_view key) {
  for (const Field& f : kFields) {
    if (f.section == section && f.key == key) return &f;
  }
  return nullptr;
}

bool known_section(std::string_view section) {
  return std::find(sections().begin(), sections().end(), section) != sections().end();
}

Value read(const Field& f, const Config& c) {
  Ref r = f.ref(const_cast<Config&>(c));  // only read
  return std::visit([](auto* p) -> Value { return Value(*p); }, r);
}

std::string dotted(const Field& f) { return std::string(f.section) + "." + std::string(f.key); }

// Checks that span fields: (field, problem) pairs.
std::vector<std::pair<const Field*, std::string>> cross_checks(const Config& c) {
  std::vector<std::pair<const Field*, std::string>> out;
  if (c.tls.cert_file.empty() != c.tls.key_file.empty()) {
    // Reported at the key that is set, so that a file's error has a line.
    if (c.tls.cert_file.empty()) {
      out.emplace_back(find_field("tls", "key_file"), "set tls.cert_file too, or neither");
    } else {
      out.emplace_back(find_field("tls", "cert_file"), "set tls.key_file too, or neither");
    }
  }
  return out;
}

// ---- TOML -----------------------------------------------------------------------

std::string toml_quote(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04X", c);
          out += buf;
        } else {
          out.push_back(ch);
        }
    }
  }
  out += '"';
  return out;
}

std::string render_value(const Value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return toml_quote(*s);
  if (const auto* n = std::get_if<uint64_t>(&v)) return std::to_string(*n);
  return std::get<bool>(v) ? "true" : "false";
}

// ---- [services.NAME] --------------------------------------------------------------

std::string service_name_problem(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 32 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
  return ok ? "" : "a service name is 1 to 32 of a-z, 0-9, '-' and '_'";
}

// "NAME=ADDRESS" as handed down in LISTEN_FDNAMES; what is wrong with it.
std::string service_listen_problem(std::string_view entry) {
  size_t eq = entry.find('=');
  if (eq == std::string_view::npos || eq == 0) return "expected NAME=ADDRESS (got \"" + std::string(entry) + "\")";
  std::string_view name = entry.substr(0, eq);
  if (name.find(':') != std::string_view::npos) return "a listener name may not contain ':'";
  return lmtp_address(Value(std::string(entry.substr(eq + 1))));
}

// Checks that need the whole service.
std::string service_problem(const std::string& name, const ServiceConfig& svc) {
  if (svc.program.empty()) return "program is required for a service that is not built in";
  if (svc.processes == 0 || svc.processes > 64) return "processes must be from 1 to 64";
  if (name == "store" && svc.processes != 1) return "the store runs as one process (processes = 1)";
  for (const auto& l : svc.listen)
    if (std::string problem = service_listen_problem(l); !problem.empty()) return "listen: " + problem;
  return "";
}

std::string string_list(const toml::node& node, std::vector<std::string>& out) {
  const toml::array* a = node.as_array();
  if (!a) return "expected an array of strings";
  std::vector<std::string> v;
  for (const toml::node& item : *a) {
    const auto* s = item.as_string();
    if (!s) return "expected an array of strings";
    v.push_back(s->get());
  }
  out = std::move(v);
  return "";
}

std::string assign_service_field(ServiceConfig& svc, std::string_view field, const toml::node& node) {
  auto text = [&](std::string& out) -> std::string {
    const auto* s = node.as_string();
    if (!s) return "expected a string";
    out = s->get();
    return "";
  };
  auto flag = [&](bool& out) -> std::string {
    const auto* b = node.as_boolean();
    if (!b) return "expected true or false";
    out = b->get();
    return "";
  };
  if (field == "program") return text(svc.program);
  if (field == "user") return text(svc.user);
  if (field == "args") return string_list(node, svc.args);
  if (field == "listen") return string_list(node, svc.listen);
  if (field == "enabled") return flag(svc.enabled);
  if (field == "notify") return flag(svc.notify);
  if (field == "processes") {
    const auto* i = node.as_integer();
    if (!i || i->get() < 1 || i->get() > 64) return "expected an integer from 1 to 64";
    svc.processes = static_cast<uint32_t>(i->get());
    return "";
  }
  return "unknown key (program, args, listen, processes, user, enabled, notify)";
}

struct Problem {
  uint32_t line = 0;
  uint32_t column = 0;
  std::string text;
};

class Loader {
 public:
  Loader(std::string path, Config& config) : path_(std::move(path)), config_(config) {}

  void root(const toml::table& t) {
    for (auto&& [key, node] : t) {
      std::string_view name = key.str();
      if (name == "services") {
        if (const toml::table* services = node.as_table()) {
          this->services(*services);
        } else {
          add(node.source(), "services: expected tables ([services.NAME])");
        }
      } else if (!known_section(name)) {
        add(key.source(), std::string(name) + ": unknown section");
      } else if (const toml::table* section = node.as_table()) {
        this->section(name, *section);
      } else {
        add(node.source(), std::string(name) + ": expected a table ([" + std::string(name) + "])");
      }
    }
    for (auto& [field, problem] : cross_checks(config_)) {
      auto it = seen_.find(field);
      toml::source_region where = it != seen_.end() ? it->second : toml::source_region{};
      add(where, dotted(*field) + ": " + problem);
    }
  }

  Status status() {
    if (problems_.empty()) return Status::ok();
    std::stable_sort(problems_.begin(), problems_.end(), [](const Problem& a, const Problem& b) {
      return std::tie(a.line, a.column) < std::tie(b.line, b.column);
    });
    std::string text;
    for (const Problem& p : problems_) {
      if (!text.empty()) text += '\n';
      text += p.text;
    }
    return error(Code::config, std::move(text));
  }

 private:
  void section(std::string_view name, const toml::table& t) {
    for (auto&& [key, node] : t) {
      const Field* f = find_field(name, key.str());
      if (!f) {
        add(key.source(), std::string(name) + "." + std::string(key.str()) + ": unknown key");
        continue;
      }
      seen_[f] = node.source();
      std::string problem = assign(*f, node);
      if (!problem.empty()) add(node.source(), dotted(*f) + ": " + problem);
    }
  }

  // [services.NAME] tables: each key changes one setting of a built-in
  // service or describes a service of the admin's own.
  void services(const toml::table& t) {
    for (auto&& [key, node] : t) {
      std::string name(key.str());
      std::string where = "services." + name;
      if (std::string problem = service_name_problem(name); !problem.empty()) {
        add(key.source(), where + ": " + problem);
        continue;
      }
      const toml::table* table = node.as_table();
      if (!table) {
        add(node.source(), where + ": expected a table ([" + where + "])");
        continue;
      }
      ServiceConfig& svc = config_.services[name];
      for (auto&& [field, value] : *table) {
        std::string problem = assign_service_field(svc, field.str(), value);
        if (!problem.empty()) add(value.source(), where + "." + std::string(field.str()) + ": " + problem);
      }
      if (std::string problem = service_problem(name, svc); !problem.empty())
        add(key.source(), where + ": " + problem);
    }
  }

  // Stores the node's value in the field; returns the problem, if any.
  std::string assign(const Field& f, const toml::node& node) {
    Ref ref = f.ref(config_);
    Value v;
    if (std::holds_alternative<std::string*>(ref)) {
      const auto* s = node.as_string();
      if (!s) return "expected a string";
      v = s->get();
    } else if (std::holds_alternative<bool*>(ref)) {
      const auto* b = node.as_boolean();
      if (!b) return "expected true or false";
      v = b->get();
    } else {
      const auto* i = node.as_integer();
      if (!i) return "expected an integer";
      uint64_t max = std::holds_alternative<uint32_t*>(ref) ? std::numeric_limits<uint32_t>::max()
                                                            : std::numeric_limits<int64_t>::max();
      if (i->get() < 0 || static_cast<uint64_t>(i->get()) > max) {
        return "expected an integer from 0 to " + std::to_string(max);
      }
      v = static_cast<uint64_t>(i->get());
    }
    if (f.check) {
      std::string problem = f.check(v);
      if (!problem.empty()) return problem;
    }
    std::visit(
        [&](auto* p) {
          using T = std::remove_pointer_t<decltype(p)>;
          if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, bool>) {
            *p = std::get<T>(v);
          } else {
            *p = static_cast<T>(std::get<uint64_t>(v));
          }
        },
        ref);
    return "";
  }

  void add(const toml::source_region& where, std::string text) {
    Problem p;
    p.line = where.begin.line;
    p.column = where.begin.column;
    p.text = path_ + ":";
    if (p.line > 0) p.text += std::to_string(p.line) + ":" + std::to_string(p.column) + ":";
    p.text += " " + text;
    problems_.push_back(std::move(p));
  }

  std::string path_;
  Config& config_;
  std::map<const Field*, toml::source_region> seen_;
  std::vector<Problem> problems_;
};

}  // namespace

std::map<std::string, ServiceConfig> default_services() {
  std::map<std::string, ServiceConfig> out;
  out["store"].program = "mail-stored";
  out["smtpd"].program = "mail-smtpd";
  out["imapd"].program = "mail-imapd";
  out["queued"].program = "mail-queued";
  return out;
}

namespace {
std::string render_string_list(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + toml_quote(v[i]);
  return out + "]";
}

// Each service with its program and the settings that differ from a
// service's defaults, every key under its help line.
std::string render_services(const std::map<std::string, ServiceConfig>& services) {
  const ServiceConfig plain;
  std::string out;
  for (const auto& [name, svc] : services) {
    out += "\n[services." + name + "]\n";
    auto key = [&](const char* help, const char* key, const std::string& value) {
      out += std::string("# ") + help + "\n" + key + " = " + value + "\n";
    };
    auto flag = [](bool b) { return std::string(b ? "true" : "false"); };
    key("Executable; relative: next to mail-master.", "program", toml_quote(svc.program));
    if (svc.args != plain.args) key("Extra arguments.", "args", render_string_list(svc.args));
    if (svc.listen != plain.listen)
      key("Sockets handed down (LISTEN_FDS), NAME=ADDRESS.", "listen", render_string_list(svc.listen));
    if (svc.processes != plain.processes)
      key("Processes sharing the sockets.", "processes", std::to_string(svc.processes));
    if (svc.user != plain.user) key("User it runs as (started as root).", "user", toml_quote(svc.user));
    if (svc.enabled != plain.enabled) key("Run it.", "enabled", flag(svc.enabled));
    if (svc.notify != plain.notify) key("Ready when it sends READY=1 (sd_notify), not when started.", "notify", flag(svc.notify));
  }
  return out;
}
}  // namespace

std::string Config::store_socket() const {
  if (!store.socket.empty()) return store.socket;
  std::string dir = general.data_dir;
  if (!dir.empty() && dir.back() != '/') dir += '/';
  return dir + "stored.sock";
}

Result<Config> load_config(const std::string& path) {
  Config config;
  if (path.empty()) return config;

  std::ifstream in(path, std::ios::binary);
  if (!in) return error(Code::config, path + ": cannot read: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return error(Code::config, path + ": cannot read: " + std::strerror(errno));

  toml::table root;
  try {
    root = toml::parse(text.str(), path);
  } catch (const toml::parse_error& e) {
    const auto& at = e.source().begin;
    return error(Code::config, path + ":" + std::to_string(at.line) + ":" +
                                   std::to_string(at.column) + ": " + std::string(e.description()));
  }

  Loader loader(path, config);
  loader.root(root);
  MAIL_TRY(loader.status());
  config.source = path;
  return config;
}

Status validate_config(const Config& config) {
  std::string text;
  auto add = [&](std::string line) {
    if (!text.empty()) text += '\n';
    text += line;
  };
  for (const Field& f : kFields) {
    if (!f.check) continue;
    std::string problem = f.check(read(f, config));
    if (!problem.empty()) add(dotted(f) + ": " + problem);
  }
  for (auto& [field, problem] : cross_checks(config)) add(dotted(*field) + ": " + problem);
  for (const auto& [name, svc] : config.services) {
    std::string problem = service_name_problem(name);
    if (problem.empty()) problem = service_problem(name, svc);
    if (!problem.empty()) add("services." + name + ": " + problem);
  }
  if (text.empty()) return Status::ok();
  return error(Code::config, std::move(text));
}

std::string default_config_path() {
  if (const char* env = std::getenv("MAIL_CONFIG"); env && *env) return env;
  std::error_code ec;
  if (std::filesystem::exists("mail.toml", ec)) return "mail.toml";
  return "";
}

std::string render_config(const Config& config, bool only_defaults) {
  const Config defaults;
  const Config& c = only_defaults ? defaults : config;
  std::string out;
  if (only_defaults) {
    out += "# mail configuration: the built-in defaults.\n";
  } else if (!c.source.empty()) {
    out += "# mail configuration, read from " + c.source + ".\n";
  } else {
    out += "# mail configuration (no file: the built-in defaults).\n";
  }
  for (std::string_view section : sections()) {
    out += "\n[" + std::string(section) + "]\n";
    for (const Field& f : kFields) {
      if (f.section != section) continue;
      out += "# " + std::string(f.help) + "\n";
      out += std::string(f.key) + " = " + render_value(read(f, c)) + "\n";
    }
  }
  out += "\n# The programs mail-master runs, [services.NAME] with program, args, listen ([\"NAME=ADDRESS\"]),\n"
         "# processes, user, enabled, notify. Built-in services listen where their section says.\n";
  out += render_services(c.services);
  return out;
}

Result<std::vector<uint32_t>> parse_retry_schedule(std::string_view text) {
  std::vector<uint32_t> out;
  auto bad = [&](std::string_view item) {
    return error(Code::config, "expected delays like \"5m,1h,2d\" (got \"" + std::string(item) + "\")");
  };
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    uint64_t unit = 1;
    if (!item.empty() && std::string_view("smhd").find(item.back()) != std::string_view::npos) {
      unit = item.back() == 's' ? 1 : item.back() == 'm' ? 60 : item.back() == 'h' ? 3600 : 86400;
      item.remove_suffix(1);
    }
    if (item.empty() || item.size() > 6 || !std::all_of(item.begin(), item.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return bad(item);
    uint64_t n = std::stoull(std::string(item)) * unit;
    if (n == 0 || n > 365ull * 86400) return bad(item);
    out.push_back(static_cast<uint32_t>(n));
  }
  if (out.empty()) return error(Code::config, "the retry schedule is empty");
  return out;
}

}  // namespace mail
