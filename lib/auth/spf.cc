#include "auth/spf.h"

#include <arpa/inet.h>

#include <algorithm>
#include <chrono>
#include <cstring>

namespace mail::auth {

namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// ---- addresses -----------------------------------------------------------------

struct Ip {
  bool v6 = false;
  unsigned char bytes[16] = {};
};

bool parse_ip(std::string_view text, Ip& ip) {
  std::string s(text);
  if (inet_pton(AF_INET, s.c_str(), ip.bytes) == 1) {
    ip.v6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, s.c_str(), ip.bytes) == 1) {
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(ip.bytes, mapped, 12) == 0) {  // ::ffff:a.b.c.d is IPv4
      std::memmove(ip.bytes, ip.bytes + 12, 4);
      ip.v6 = false;
    } else {
      ip.v6 = true;
    }
    return true;
  }
  return false;
}

bool in_network(const Ip& ip, const Ip& net, int bits) {
  if (ip.v6 != net.v6) return false;
  int full = bits / 8, rest = bits % 8;
  if (std::memcmp(ip.bytes, net.bytes, static_cast<size_t>(full)) != 0) return false;
  if (rest == 0) return true;
  unsigned mask = (0xffu << (8 - rest)) & 0xffu;
  return (ip.bytes[full] & mask) == (net.bytes[full] & mask);
}

std::string ip_text(const Ip& ip) {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(ip.v6 ? AF_INET6 : AF_INET, ip.bytes, buf, sizeof buf);
  return buf;
}

// %{i}: dotted quad, or 32 dot-separated nibbles for IPv6. Upper-case
// nibbles, as the RFC 7208 test suite expects in explanations (RFC 7.4's
// example is lower case; DNS lookups do not care).
std::string ip_macro(const Ip& ip) {
  if (!ip.v6) return ip_text(ip);
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i) out.push_back('.');
    out.push_back(hex[ip.bytes[i] >> 4]);
    out.push_back('.');
    out.push_back(hex[ip.bytes[i] & 15]);
  }
  return out;
}

std::string reverse_name(const Ip& ip) {
  std::string s = ip_macro(ip);
  // reverse the dot-separated parts
  std::vector<std::string> parts;
  size_t pos = 0;
  while (true) {
    size_t d = s.find('.', pos);
    parts.push_back(s.substr(pos, d == std::string::npos ? std::string::npos : d - pos));
    if (d == std::string::npos) break;
    pos = d + 1;
  }
  std::string out;
  for (size_t i = parts.size(); i-- > 0;) out.append(parts[i]).push_back('.');
  out.append(ip.v6 ? "ip6.arpa" : "in-addr.arpa");
  return out;
}

// ---- syntax --------------------------------------------------------------------

bool valid_toplabel(std::string_view l) {
  if (l.empty()) return false;
  bool has_alpha = false, has_dash = false;
  for (char c : l) {
    if (is_alpha(c)) has_alpha = true;
    else if (c == '-') has_dash = true;
    else if (!is_digit(c)) return false;
  }
  if (l.front() == '-' || l.back() == '-') return false;
  return has_alpha || has_dash;
}

bool is_macro_letter(char c, bool exp) {
  switch (lower(c)) {
    case 's': case 'l': case 'o': case 'd': case 'i': case 'p': case 'h': case 'v': return true;
    case 'c': case 'r': case 't': return exp;
    default: return false;
  }
}

bool is_delimiter(char c) {
  return c == '.' || c == '-' || c == '+' || c == ',' || c == '/' || c == '_' || c == '=';
}

// Checks a macro-string; sets ends_with_macro when its last element is a macro-expand.
bool valid_macro_string(std::string_view s, bool exp, bool* ends_with_macro = nullptr) {
  bool last_macro = false;
  for (size_t i = 0; i < s.size();) {
    char c = s[i];
    if (c == '%') {
      if (i + 1 >= s.size()) return false;
      char n = s[i + 1];
      if (n == '%' || n == '_' || n == '-') {
        i += 2;
        last_macro = true;
        continue;
      }
      if (n != '{' || i + 2 >= s.size()) return false;
      size_t j = i + 2;
      if (!is_macro_letter(s[j], exp)) return false;
      ++j;
      while (j < s.size() && is_digit(s[j])) ++j;
      if (j < s.size() && lower(s[j]) == 'r') ++j;
      while (j < s.size() && is_delimiter(s[j])) ++j;
      if (j >= s.size() || s[j] != '}') return false;
      i = j + 1;
      last_macro = true;
      continue;
    }
    auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7e) {
      if (!(exp && c == ' ')) return false;
    }
    last_macro = false;
    ++i;
  }
  if (ends_with_macro) *ends_with_macro = last_macro;
  return true;
}

bool valid_domain_spec(std::string_view s) {
  if (s.empty()) return false;
  bool ends_macro = false;
  if (!valid_macro_string(s, false, &ends_macro)) return false;
  if (ends_macro) return true;
  std::string_view t = s;
  if (t.back() == '.') t.remove_suffix(1);
  size_t dot = t.rfind('.');
  if (dot == std::string_view::npos) return false;
  return valid_toplabel(t.substr(dot + 1));
}

bool parse_cidr(std::string_view digits, int max, int& out) {
  if (digits.empty() || digits.size() > 3) return false;
  if (digits.size() > 1 && digits[0] == '0') return false;
  int v = 0;
  for (char c : digits) {
    if (!is_digit(c)) return false;
    v = v * 10 + (c - '0');
  }
  if (v > max) return false;
  out = v;
  return true;
}

// Splits a trailing dual-cidr-length ("/24", "//64", "/24//64") off `arg`.
bool split_dual_cidr(std::string_view& arg, SpfTerm& term) {
  size_t dd = arg.rfind("//");
  if (dd != std::string_view::npos && arg.find('/', dd + 2) == std::string_view::npos) {
    if (!parse_cidr(arg.substr(dd + 2), 128, term.cidr6)) return false;
    arg = arg.substr(0, dd);
  }
  size_t d = arg.rfind('/');
  if (d != std::string_view::npos) {
    std::string_view num = arg.substr(d + 1);
    bool all_digits = !num.empty() && std::all_of(num.begin(), num.end(), is_digit);
    if (all_digits) {
      if (!parse_cidr(num, 32, term.cidr4)) return false;
      arg = arg.substr(0, d);
    }
  }
  return true;
}

Result<SpfTerm> parse_term(std::string_view tok) {
  auto bad = [&tok]() { return error(Code::invalid, "bad SPF term '" + std::string(tok) + "'"); };
  SpfTerm term;
  // A modifier: name "=" macro-string, name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ).
  size_t eq = tok.find('=');
  size_t name_end = 0;
  while (name_end < tok.size() && (is_alnum(tok[name_end]) || tok[name_end] == '-' || tok[name_end] == '_' ||
                                   tok[name_end] == '.')) {
    ++name_end;
  }
  if (eq != std::string_view::npos && eq == name_end && eq > 0 && is_alpha(tok[0])) {
    term.is_modifier = true;
    term.name = lower(tok.substr(0, eq));
    term.domain_spec = std::string(tok.substr(eq + 1));
    if (term.name == "redirect" || term.name == "exp") {
      if (!valid_domain_spec(term.domain_spec)) return bad();
    } else if (!valid_macro_string(term.domain_spec, false)) {
      return bad();
    }
    return term;
  }
  std::string_view rest = tok;
  if (!rest.empty() && (rest[0] == '+' || rest[0] == '-' || rest[0] == '~' || rest[0] == '?')) {
    term.qualifier = rest[0];
    rest.remove_prefix(1);
  }
  size_t sep = rest.find_first_of(":/");
  std::string name = lower(rest.substr(0, sep));
  std::string_view arg = sep == std::string_view::npos ? std::string_view() : rest.substr(sep);
  bool has_domain = !arg.empty() && arg[0] == ':';
  if (has_domain) arg.remove_prefix(1);
  if (name == "all") {
    if (!arg.empty() || has_domain) return bad();
    term.mechanism = SpfMechanism::all;
  } else if (name == "include" || name == "exists") {
    term.mechanism = name == "include" ? SpfMechanism::include : SpfMechanism::exists;
    if (!has_domain || !valid_domain_spec(arg)) return bad();
    term.domain_spec = std::string(arg);
  } else if (name == "a" || name == "mx") {
    term.mechanism = name == "a" ? SpfMechanism::a : SpfMechanism::mx;
    if (!split_dual_cidr(arg, term)) return bad();
    if (has_domain) {
      if (!valid_domain_spec(arg)) return bad();
      term.domain_spec = std::string(arg);
    } else if (!arg.empty()) {
      return bad();
    }
  } else if (name == "ptr") {
    term.mechanism = SpfMechanism::ptr;
    if (has_domain) {
      if (!valid_domain_spec(arg)) return bad();
      term.domain_spec = std::string(arg);
    } else if (!arg.empty()) {
      return bad();
    }
  } else if (name == "ip4" || name == "ip6") {
    bool v6 = name == "ip6";
    term.mechanism = v6 ? SpfMechanism::ip6 : SpfMechanism::ip4;
    if (!has_domain) return bad();
    size_t slash = arg.find('/');
    if (slash != std::string_view::npos) {
      if (!parse_cidr(arg.substr(slash + 1), v6 ? 128 : 32, v6 ? term.cidr6 : term.cidr4)) return bad();
      arg = arg.substr(0, slash);
    }
    unsigned char buf[16];
    std::string addr(arg);
    if (inet_pton(v6 ? AF_INET6 : AF_INET, addr.c_str(), buf) != 1) return bad();
    term.address = addr;
  } else {
    return bad();
  }
  return term;
}

int64_t clock_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string_view spf_result_name(SpfResult r) {
  switch (r) {
    case SpfResult::none: return "none";
    case SpfResult::neutral: return "neutral";
    case SpfResult::pass: return "pass";
    case SpfResult::fail: return "fail";
    case SpfResult::softfail: return "softfail";
    case SpfResult::temperror: return "temperror";
    case SpfResult::permerror: return "permerror";
  }
  return "?";
}

bool is_spf_record(std::string_view txt) {
  return txt.size() >= 6 && iequal(txt.substr(0, 6), "v=spf1") && (txt.size() == 6 || txt[6] == ' ');
}

Result<SpfRecord> parse_spf_record(std::string_view text) {
  if (!is_spf_record(text)) return error(Code::invalid, "not an SPF record");
  SpfRecord rec;
  std::string_view rest = text.substr(6);
  size_t pos = 0;
  while (pos < rest.size()) {
    if (rest[pos] == ' ') {
      ++pos;
      continue;
    }
    size_t end = rest.find(' ', pos);
    if (end == std::string_view::npos) end = rest.size();
    MAIL_ASSIGN_OR_RETURN(SpfTerm term, parse_term(rest.substr(pos, end - pos)));
    rec.terms.push_back(std::move(term));
    pos = end;
  }
  for (size_t i = 0; i < rec.terms.size(); ++i) {
    const auto& t = rec.terms[i];
    if (!t.is_modifier) continue;
    if (t.name == "redirect") {
      if (rec.redirect >= 0) return error(Code::invalid, "redirect= twice");
      rec.redirect = static_cast<int>(i);
    } else if (t.name == "exp") {
      if (rec.exp >= 0) return error(Code::invalid, "exp= twice");
      rec.exp = static_cast<int>(i);
    }
  }
  return rec;
}

// ---- evaluation -------------------------------------------------------------------

namespace {

enum class Match { yes, no, error };

class Evaluator {
 public:
  Evaluator(const SpfRequest& req, Resolver& dns, const SpfOptions& opt) : req_(req), dns_(dns), opt_(opt) {}

  SpfVerdict run() {
    SpfVerdict v;
    if (!parse_ip(req_.ip, ip_)) {
      v.result = SpfResult::permerror;
      v.problem = "bad client address " + req_.ip;
      return v;
    }
    std::string sender = req_.mail_from.empty() ? "postmaster@" + req_.helo : req_.mail_from;
    size_t at = sender.rfind('@');
    if (at == std::string::npos) {
      local_ = "postmaster";
      domain_ = sender;
    } else {
      local_ = sender.substr(0, at);
      domain_ = sender.substr(at + 1);
      if (local_.empty()) local_ = "postmaster";
    }
    sender_ = local_ + "@" + domain_;
    return check_host(domain_, 0);
  }

 private:
  struct Failure {
    SpfResult result;
    std::string problem;
  };

  static bool domain_ok(std::string_view d) {
    if (!d.empty() && d.back() == '.') d.remove_suffix(1);
    if (d.empty() || d.size() > 253) return false;
    size_t labels = 0, pos = 0;
    while (true) {
      size_t dot = d.find('.', pos);
      size_t len = (dot == std::string_view::npos ? d.size() : dot) - pos;
      if (len == 0 || len > 63) return false;
      ++labels;
      if (dot == std::string_view::npos) break;
      pos = dot + 1;
    }
    return labels >= 2;
  }

  SpfVerdict check_host(const std::string& domain, int depth) {
    SpfVerdict v;
    v.domain = domain;
    auto done = [&v](SpfResult r, std::string problem) {
      v.result = r;
      v.problem = std::move(problem);
      return v;
    };
    if (depth > 20) return done(SpfResult::permerror, "include/redirect nesting too deep");
    if (!domain_ok(domain)) return done(SpfResult::none, "not a valid domain: " + domain);
    auto txt = dns_.lookup(domain, DnsType::txt);
    if (!txt) {
      if (txt.code() == Code::not_found) return done(SpfResult::none, "no such domain: " + domain);
      return done(SpfResult::temperror, txt.status().message());
    }
    const std::string* found = nullptr;
    for (const auto& t : *txt) {
      if (!is_spf_record(t)) continue;
      if (found) return done(SpfResult::permerror, "several SPF records at " + domain);
      found = &t;
    }
    if (!found) return done(SpfResult::none, "no SPF record at " + domain);
    auto rec = parse_spf_record(*found);
    if (!rec) return done(SpfResult::permerror, rec.status().message());

    for (const auto& term : rec->terms) {
      if (term.is_modifier) continue;
      Failure failure{SpfResult::none, {}};
      Match m = evaluate(term, domain, depth, failure);
      if (m == Match::error) return done(failure.result, failure.problem);
      if (m == Match::no) continue;
      v.mechanism = std::string(1, term.qualifier) + mechanism_text(term);
      switch (term.qualifier) {
        case '-':
          v.result = SpfResult::fail;
          v.explanation = explain(*rec, domain);
          break;
        case '~': v.result = SpfResult::softfail; break;
        case '?': v.result = SpfResult::neutral; break;
        default: v.result = SpfResult::pass; break;
      }
      return v;
    }
    if (rec->redirect >= 0) {
      if (++dns_count_ > opt_.dns_mechanism_limit) return done(SpfResult::permerror, "too many DNS lookups");
      auto target = expand(rec->terms[static_cast<size_t>(rec->redirect)].domain_spec, domain, false);
      if (!target) return done(SpfResult::permerror, target.status().message());
      SpfVerdict r = check_host(*target, depth + 1);
      if (r.result == SpfResult::none) {
        r.result = SpfResult::permerror;
        r.problem = "redirect to a domain without SPF record: " + *target;
      }
      return r;
    }
    return done(SpfResult::neutral, "");
  }

  static std::string mechanism_text(const SpfTerm& t) {
    static const char* names[] = {"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"};
    std::string out = names[static_cast<int>(t.mechanism)];
    if (!t.domain_spec.empty()) out += ":" + t.domain_spec;
    if (!t.address.empty()) out += ":" + t.address;
    return out;
  }

  // A DNS query for a mechanism: counts void answers; a temporary failure is an error.
  bool query(const std::string& name, DnsType type, std::vector<std::string>& out, Failure& f, bool count_void) {
    auto r = dns_.lookup(name, type);
    if (!r) {
      if (r.code() != Code::not_found) {
        f = {SpfResult::temperror, r.status().message()};
        return false;
      }
      out.clear();
    } else {
      out = std::move(*r);
    }
    if (out.empty() && count_void && ++void_count_ > opt_.void_lookup_limit) {
      f = {SpfResult::permerror, "too many void DNS lookups"};
      return false;
    }
    return true;
  }

  bool count_lookup(Failure& f) {
    if (++dns_count_ > opt_.dns_mechanism_limit) {
      f = {SpfResult::permerror, "too many DNS lookups"};
      return false;
    }
    return true;
  }

  bool target_of(const SpfTerm& term, const std::string& domain, std::string& target, Failure& f) {
    if (term.domain_spec.empty()) {
      target = domain;
      return true;
    }
    auto t = expand(term.domain_spec, domain, false);
    if (!t) {
      f = {SpfResult::permerror, t.status().message()};
      return false;
    }
    target = std::move(*t);
    return true;
  }

  // Does any address of `host` (A or AAAA by the client's family) fall in the network?
  Match host_matches(const std::string& host, int cidr4, int cidr6, Failure& f, bool count_void) {
    std::vector<std::string> addrs;
    if (!query(host, ip_.v6 ? DnsType::aaaa : DnsType::a, addrs, f, count_void)) return Match::error;
    for (const auto& a : addrs) {
      Ip net;
      if (parse_ip(a, net) && in_network(ip_, net, ip_.v6 ? cidr6 : cidr4)) return Match::yes;
    }
    return Match::no;
  }

  Match evaluate(const SpfTerm& term, const std::string& domain, int depth, Failure& f) {
    std::string target;
    switch (term.mechanism) {
      case SpfMechanism::all: return Match::yes;
      case SpfMechanism::ip4:
      case SpfMechanism::ip6: {
        Ip net;
        parse_ip(term.address, net);
        if (term.mechanism == SpfMechanism::ip6 && !net.v6) return Match::no;  // ::ffff:... in ip6:
        return in_network(ip_, net, ip_.v6 ? term.cidr6 : term.cidr4) ? Match::yes : Match::no;
      }
      case SpfMechanism::include: {
        if (!count_lookup(f) || !target_of(term, domain, target, f)) return Match::error;
        SpfVerdict r = check_host(target, depth + 1);
        switch (r.result) {
          case SpfResult::pass: return Match::yes;
          case SpfResult::fail:
          case SpfResult::softfail:
          case SpfResult::neutral: return Match::no;
          case SpfResult::temperror: f = {SpfResult::temperror, r.problem}; return Match::error;
          default:
            f = {SpfResult::permerror, r.result == SpfResult::none ? "include of a domain without SPF: " + target
                                                                   : r.problem};
            return Match::error;
        }
      }
      case SpfMechanism::a:
        if (!count_lookup(f) || !target_of(term, domain, target, f)) return Match::error;
        return host_matches(target, term.cidr4, term.cidr6, f, true);
      case SpfMechanism::mx: {
        if (!count_lookup(f) || !target_of(term, domain, target, f)) return Match::error;
        std::vector<std::string> mxs;
        if (!query(target, DnsType::mx, mxs, f, true)) return Match::error;
        if (mxs.size() > 10) {
          f = {SpfResult::permerror, "more than 10 MX records at " + target};
          return Match::error;
        }
        for (const auto& mx : mxs) {
          size_t sp = mx.find(' ');
          std::string host = sp == std::string::npos ? mx : mx.substr(sp + 1);
          Match m = host_matches(host, term.cidr4, term.cidr6, f, false);
          if (m != Match::no) return m;
        }
        return Match::no;
      }
      case SpfMechanism::ptr: {
        if (!count_lookup(f) || !target_of(term, domain, target, f)) return Match::error;
        for (const auto& name : validated_names(target)) {
          if (iequal(name, target) || (name.size() > target.size() &&
                                       iequal(std::string_view(name).substr(name.size() - target.size()), target) &&
                                       name[name.size() - target.size() - 1] == '.')) {
            return Match::yes;
          }
        }
        return Match::no;
      }
      case SpfMechanism::exists: {
        if (!count_lookup(f) || !target_of(term, domain, target, f)) return Match::error;
        std::vector<std::string> addrs;
        if (!query(target, DnsType::a, addrs, f, true)) return Match::error;
        return addrs.empty() ? Match::no : Match::yes;
      }
    }
    return Match::no;
  }

  // The client's PTR names whose forward lookup includes the client, those
  // equal to or under `prefer` first (RFC 7208 5.5). DNS errors skip a name.
  std::vector<std::string> validated_names(const std::string& prefer) {
    std::vector<std::string> out;
    auto ptrs = dns_.lookup(reverse_name(ip_), DnsType::ptr);
    if (!ptrs) return out;
    std::vector<std::string> names = *ptrs;
    if (names.size() > 10) names.resize(10);
    std::stable_partition(names.begin(), names.end(), [&prefer](const std::string& n) {
      return n.size() >= prefer.size() && iequal(std::string_view(n).substr(n.size() - prefer.size()), prefer);
    });
    for (auto& n : names) {
      if (!n.empty() && n.back() == '.') n.pop_back();
      auto addrs = dns_.lookup(n, ip_.v6 ? DnsType::aaaa : DnsType::a);
      if (!addrs) continue;
      for (const auto& a : *addrs) {
        Ip x;
        if (parse_ip(a, x) && in_network(ip_, x, ip_.v6 ? 128 : 32)) {
          out.push_back(n);
          break;
        }
      }
    }
    return out;
  }

  std::string explain(const SpfRecord& rec, const std::string& domain) {
    if (rec.exp >= 0) {
      auto target = expand(rec.terms[static_cast<size_t>(rec.exp)].domain_spec, domain, false);
      if (target) {
        auto txt = dns_.lookup(*target, DnsType::txt);
        if (txt && txt->size() == 1) {
          auto text = expand(txt->front(), domain, true);
          if (text) {
            bool ascii = std::all_of(text->begin(), text->end(),
                                     [](char c) { return static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f; });
            if (ascii) return *text;
          }
        }
      }
    }
    return opt_.default_explanation;
  }

  Result<std::string> expand(std::string_view s, const std::string& domain, bool exp) {
    if (!valid_macro_string(s, exp)) return error(Code::invalid, "bad macro string '" + std::string(s) + "'");
    std::string out;
    for (size_t i = 0; i < s.size();) {
      if (s[i] != '%') {
        out.push_back(s[i++]);
        continue;
      }
      char n = s[i + 1];
      if (n == '%') { out.push_back('%'); i += 2; continue; }
      if (n == '_') { out.push_back(' '); i += 2; continue; }
      if (n == '-') { out.append("%20"); i += 2; continue; }
      size_t j = i + 2;
      char letter = s[j++];
      size_t digits = 0;
      bool has_digits = false;
      while (is_digit(s[j])) {
        digits = std::min<size_t>(digits * 10 + static_cast<size_t>(s[j] - '0'), 1000);
        has_digits = true;
        ++j;
      }
      bool reverse = false;
      if (lower(s[j]) == 'r') {
        reverse = true;
        ++j;
      }
      std::string delims;
      while (s[j] != '}') delims.push_back(s[j++]);
      i = j + 1;
      if (has_digits && digits == 0) return error(Code::invalid, "macro keeps zero labels");
      std::string value = macro_value(lower(letter), domain);
      if (delims.empty()) delims.push_back('.');
      std::vector<std::string> parts;
      size_t pos = 0;
      while (true) {
        size_t d = value.find_first_of(delims, pos);
        parts.push_back(value.substr(pos, d == std::string::npos ? std::string::npos : d - pos));
        if (d == std::string::npos) break;
        pos = d + 1;
      }
      if (reverse) std::reverse(parts.begin(), parts.end());
      size_t first = has_digits && digits < parts.size() ? parts.size() - digits : 0;
      std::string joined;
      for (size_t k = first; k < parts.size(); ++k) {
        if (k > first) joined.push_back('.');
        joined.append(parts[k]);
      }
      if (letter >= 'A' && letter <= 'Z') joined = url_escape(joined);
      out.append(joined);
    }
    if (!exp) {
      // RFC 7208 7.3: over 253 octets, drop labels from the left.
      while (out.size() > 253) {
        size_t dot = out.find('.');
        if (dot == std::string::npos) break;
        out.erase(0, dot + 1);
      }
    }
    return out;
  }

  static std::string url_escape(const std::string& s) {
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    for (char c : s) {
      auto u = static_cast<unsigned char>(c);
      if (is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
        out.push_back(c);
      } else {
        out.push_back('%');
        out.push_back(hex[u >> 4]);
        out.push_back(hex[u & 15]);
      }
    }
    return out;
  }

  std::string macro_value(char letter, const std::string& domain) {
    switch (letter) {
      case 's': return sender_;
      case 'l': return local_;
      case 'o': return domain_;
      case 'd': return domain;
      case 'i': return ip_macro(ip_);
      case 'p': {
        if (!p_done_) {
          auto names = validated_names(domain);
          p_value_ = names.empty() ? "unknown" : names.front();
          p_done_ = true;
        }
        return p_value_;
      }
      case 'v': return ip_.v6 ? "ip6" : "in-addr";
      case 'h': return req_.helo;
      case 'c': return ip_text(ip_);
      case 'r': return req_.receiver;
      case 't': return std::to_string(opt_.now < 0 ? clock_now() : opt_.now);
      default: return "";
    }
  }

  const SpfRequest& req_;
  Resolver& dns_;
  const SpfOptions& opt_;
  Ip ip_;
  std::string sender_, local_, domain_;
  size_t dns_count_ = 0, void_count_ = 0;
  bool p_done_ = false;
  std::string p_value_;
};

}  // namespace

SpfVerdict spf_check(const SpfRequest& request, Resolver& resolver, const SpfOptions& options) {
  Evaluator e(request, resolver, options);
  return e.run();
}

}  // namespace mail::auth
