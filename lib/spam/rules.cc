#define PCRE2_CODE_UNIT_WIDTH 8
#include "spam/rules.h"

#include <idn2.h>
#include <pcre2.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "auth/psl.h"
#include "auth/resolver.h"
#include "base/lines.h"

namespace mail::spam {

struct Rule {
  enum class Kind { builtin, header, body, uri };
  Kind kind = Kind::builtin;
  std::string name;
  std::string field;  // header rules
  pcre2_code* re = nullptr;
  std::function<bool(const Analysis&, const BayesResult&, const Context&)> test;  // built-in rules
  ~Rule() {
    if (re) pcre2_code_free(re);
  }
};

namespace {

// Limits on one regex match: backtracking steps and depth.
constexpr uint32_t kMatchLimit = 200000;
constexpr uint32_t kDepthLimit = 5000;

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return r;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string domain_of(std::string_view address) {
  size_t at = address.rfind('@');
  if (at == std::string_view::npos) return {};
  std::string_view d = address.substr(at + 1);
  size_t end = d.find_first_of("> \t\"");
  return lower(d.substr(0, end));
}

bool is_ipv4(std::string_view s) {
  int dots = 0, digits = 0;
  for (char c : s) {
    if (c == '.') {
      if (!digits) return false;
      ++dots, digits = 0;
    } else if (c >= '0' && c <= '9') {
      if (++digits > 3) return false;
    } else {
      return false;
    }
  }
  return dots == 3 && digits;
}

// The words of a decoded header: display names are checked for mixed scripts.
std::string_view display_name(std::string_view from) {
  size_t lt = from.find('<');
  return lt == std::string_view::npos ? std::string_view() : from.substr(0, lt);
}

// The Authentication-Results field the rules trust: ours (authserv-id) or the topmost.
std::string trusted_results(const Analysis& a, const Context& c) {
  for (const auto& ar : a.authentication_results) {
    std::string_view id = trim(std::string_view(ar).substr(0, ar.find(';')));
    size_t sp = id.find_first_of(" \t");
    if (sp != std::string_view::npos) id = id.substr(0, sp);
    if (c.authserv_id.empty() || lower(id) == lower(c.authserv_id)) return lower(ar);
  }
  return {};
}

bool has_result(const Analysis& a, const Context& c, std::string_view method_result) {
  std::string ar = trusted_results(a, c);
  size_t p = ar.find(method_result);
  while (p != std::string::npos) {
    // A whole "method=result" at a word start, not "header.dkim=fail" or "spf=failure".
    bool start = p == 0 || ar[p - 1] == ';' || ar[p - 1] == ' ' || ar[p - 1] == '\t' || ar[p - 1] == '\n';
    size_t e = p + method_result.size();
    bool end = e == ar.size() || !std::isalnum(static_cast<unsigned char>(ar[e]));
    if (start && end) return true;
    p = ar.find(method_result, p + 1);
  }
  return false;
}

// The HELO and bracketed IP of a Received field ("from HELO (rdns [ip])").
bool received_parts(std::string_view rcv, std::string& helo, std::string& ip) {
  rcv = trim(rcv);
  if (rcv.substr(0, 5) != "from ") return false;
  std::string_view rest = trim(rcv.substr(5));
  size_t sp = rest.find_first_of(" \t(");
  helo = lower(rest.substr(0, sp));
  size_t ob = rest.find('['), cb = rest.find(']');
  if (ob == std::string_view::npos || cb == std::string_view::npos || cb < ob) return false;
  ip = std::string(rest.substr(ob + 1, cb - ob - 1));
  if (ip.rfind("IPv6:", 0) == 0) ip = ip.substr(5);
  return true;
}

bool all_caps_subject(const Analysis& a) {
  size_t upper = 0, lowerc = 0;
  for (unsigned char c : a.subject) {
    if (c >= 'A' && c <= 'Z') ++upper;
    else if (c >= 'a' && c <= 'z') ++lowerc;
  }
  return upper >= 10 && lowerc == 0;
}

std::string unicode_host(const std::string& host) {
  if (host.find("xn--") == std::string::npos) return host;
  char* out = nullptr;
  if (idn2_to_unicode_8z8z(host.c_str(), &out, 0) != IDN2_OK || !out) return host;
  std::string r(out);
  idn2_free(out);
  return r;
}

struct Builtin {
  const char* name;
  double score;
  const char* description;
  std::function<bool(const Analysis&, const BayesResult&, const Context&)> test;
};

bool bayes_in(const BayesResult& b, double lo, double hi) {
  return b.used && b.probability >= lo && b.probability < hi;
}

std::vector<Builtin> builtins() {
  using A = const Analysis&;
  using B = const BayesResult&;
  using C = const Context&;
  return {
      {"BAYES_00", -3.0, "Bayes spam probability is 0 to 1%", [](A, B b, C) { return bayes_in(b, 0, 0.01); }},
      {"BAYES_05", -1.5, "Bayes spam probability is 1 to 5%", [](A, B b, C) { return bayes_in(b, 0.01, 0.05); }},
      {"BAYES_20", -0.5, "Bayes spam probability is 5 to 20%", [](A, B b, C) { return bayes_in(b, 0.05, 0.2); }},
      {"BAYES_40", 0.0, "Bayes spam probability is 20 to 40%", [](A, B b, C) { return bayes_in(b, 0.2, 0.4); }},
      {"BAYES_50", 1.0, "Bayes spam probability is 40 to 60%", [](A, B b, C) { return bayes_in(b, 0.4, 0.6); }},
      {"BAYES_60", 3.0, "Bayes spam probability is 60 to 80%", [](A, B b, C) { return bayes_in(b, 0.6, 0.8); }},
      {"BAYES_80", 4.5, "Bayes spam probability is 80 to 95%", [](A, B b, C) { return bayes_in(b, 0.8, 0.95); }},
      {"BAYES_95", 5.0, "Bayes spam probability is 95 to 99%", [](A, B b, C) { return bayes_in(b, 0.95, 0.99); }},
      {"BAYES_99", 5.5, "Bayes spam probability is 99 to 100%", [](A, B b, C) { return bayes_in(b, 0.99, 1.01); }},
      {"MISSING_DATE", 1.0, "no Date header", [](A a, B, C) { return !a.has_date; }},
      {"INVALID_DATE", 1.0, "Date header that cannot be read",
       [](A a, B, C) { return a.has_date && a.date_time == 0; }},
      {"MISSING_MID", 0.5, "no Message-ID header", [](A a, B, C) { return !a.has_message_id; }},
      {"INVALID_MID", 0.8, "Message-ID not of the form <left@right>",
       [](A a, B, C) {
         std::string_view m = trim(a.message_id);
         return a.has_message_id &&
                (m.size() < 5 || m.front() != '<' || m.back() != '>' || m.find('@') == std::string_view::npos);
       }},
      {"MISSING_FROM", 1.5, "no From header", [](A a, B, C) { return !a.has_from; }},
      {"MISSING_SUBJECT", 0.5, "no Subject header", [](A a, B, C) { return !a.has_subject; }},
      {"SUBJ_ALL_CAPS", 1.0, "Subject is all capitals", [](A a, B, C) { return all_caps_subject(a); }},
      {"FROM_REPLYTO_DIFFER", 0.5, "Reply-To goes to another domain than From",
       [](A a, B, C) {
         std::string f = domain_of(a.from), r = domain_of(a.reply_to);
         return !f.empty() && !r.empty() && f != r;
       }},
      {"RCVD_HELO_IP_MISMATCH", 1.0, "Received: a client greeted with an IP address not its own",
       [](A a, B, C) {
         for (size_t i = 0; i < std::min<size_t>(a.received.size(), 3); ++i) {
           std::string helo, ip;
           if (!received_parts(a.received[i], helo, ip)) continue;
           std::string h = helo;
           if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
           if (is_ipv4(h) && is_ipv4(ip) && h != ip) return true;
         }
         return false;
       }},
      {"RCVD_HELO_LOCALHOST", 1.0, "Received: a remote client greeted as localhost",
       [](A a, B, C) {
         for (size_t i = 0; i < std::min<size_t>(a.received.size(), 3); ++i) {
           std::string helo, ip;
           if (!received_parts(a.received[i], helo, ip)) continue;
           if ((helo == "localhost" || helo == "localhost.localdomain") && ip.rfind("127.", 0) != 0 && ip != "::1")
             return true;
         }
         return false;
       }},
      {"MIME_HTML_ONLY", 0.3, "HTML without a plain-text alternative", [](A a, B, C) { return a.html_only; }},
      {"URI_IP", 1.0, "a link to a bare IP address",
       [](A a, B, C) {
         return std::any_of(a.links.begin(), a.links.end(),
                            [](const Link& l) { return is_ipv4(l.host) || (!l.host.empty() && l.host[0] == '['); });
       }},
      {"MIXED_SCRIPT_FROM", 2.0, "From display name mixes Latin with Cyrillic or Greek letters",
       [](A a, B, C) { return mixed_script(display_name(a.from)); }},
      {"MIXED_SCRIPT_SUBJECT", 1.0, "Subject mixes Latin with Cyrillic or Greek letters in a word",
       [](A a, B, C) { return mixed_script(a.subject); }},
      {"URI_MIXED_SCRIPT", 2.5, "a link's domain mixes scripts (IDN homograph)",
       [](A a, B, C) {
         return std::any_of(a.links.begin(), a.links.end(),
                            [](const Link& l) { return mixed_script(unicode_host(l.host)); });
       }},
      {"SPF_FAIL", 1.0, "SPF failed (Authentication-Results)",
       [](A a, B, C c) { return has_result(a, c, "spf=fail"); }},
      {"SPF_SOFTFAIL", 0.5, "SPF soft-failed (Authentication-Results)",
       [](A a, B, C c) { return has_result(a, c, "spf=softfail"); }},
      {"DKIM_FAIL", 0.5, "a DKIM signature failed (Authentication-Results)",
       [](A a, B, C c) { return has_result(a, c, "dkim=fail"); }},
      {"DMARC_FAIL", 2.0, "DMARC failed (Authentication-Results)",
       [](A a, B, C c) { return has_result(a, c, "dmarc=fail"); }},
      {"DMARC_PASS", -0.5, "DMARC passed (Authentication-Results)",
       [](A a, B, C c) { return has_result(a, c, "dmarc=pass"); }},
      {"BULK_DIGEST", 2.0, "the same body reached many local users (spam.bulk_min_users)",
       [](A, B, C c) { return c.bulk; }},
  };
}

// Phrases shipped as rules in the file format itself.
constexpr std::string_view kDefaultRules = R"(
body PHRASE_CLICK_HERE    /\bclick (?:here|below)\b/i
describe PHRASE_CLICK_HERE "click here"
score PHRASE_CLICK_HERE 0.3
body PHRASE_UNSUBSCRIBE   /\b(?:to be removed|remove me|unsubscribe)\b/i
describe PHRASE_UNSUBSCRIBE asks to be removed from a list
score PHRASE_UNSUBSCRIBE 0.2
body PHRASE_MONEY         /\b(?:make money|earn \$|cash bonus|100% (?:free|guaranteed)|risk[- ]free)\b/i
describe PHRASE_MONEY money-making claims
score PHRASE_MONEY 1.0
body PHRASE_ACT_NOW       /\b(?:act now|limited time|order now|don'?t delay|urgent response)\b/i
describe PHRASE_ACT_NOW urgency
score PHRASE_ACT_NOW 0.5
header SUBJ_MONEY Subject /\$\d|\bfree\b|!!!/i
describe SUBJ_MONEY Subject offers money or free things
score SUBJ_MONEY 0.5
uri URI_SHORTENER /^https?:\/\/(?:bit\.ly|tinyurl\.com|goo\.gl|t\.co|ow\.ly|is\.gd)\//i
describe URI_SHORTENER a link through a URL shortener
score URI_SHORTENER 0.5
)";

// Splits "/regex/flags" into its parts.
bool split_regex(std::string_view s, std::string& pattern, std::string& flags) {
  s = trim(s);
  if (s.size() < 2 || s.front() != '/') return false;
  size_t close = s.rfind('/');
  if (close == 0) return false;
  pattern = std::string(s.substr(1, close - 1));
  flags = std::string(s.substr(close + 1));
  return std::all_of(flags.begin(), flags.end(), [](char c) { return c == 'i'; });
}

bool matches(const pcre2_code* re, std::string_view subject) {
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(re, nullptr);
  pcre2_match_context* mc = pcre2_match_context_create(nullptr);
  pcre2_set_match_limit(mc, kMatchLimit);
  pcre2_set_depth_limit(mc, kDepthLimit);
  int rc = pcre2_match(re, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), 0, 0, md, mc);
  pcre2_match_context_free(mc);
  pcre2_match_data_free(md);
  return rc >= 0;  // a limit reached is no match
}

std::string zone_rule_name(std::string_view prefix, std::string_view zone) {
  std::string n(prefix);
  for (char c : zone) n += (c == '.' || c == '-') ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return n;
}

// Listed (an A record in 127/8), not listed (NXDOMAIN, other answers), or
// unknown (a failure: never held against the message, not cached).
std::optional<bool> listed(auth::Resolver& r, const std::string& name) {
  auto v = r.lookup(name, auth::DnsType::a);
  if (!v) {
    if (v.code() == Code::not_found) return false;
    return std::nullopt;
  }
  return std::any_of(v->begin(), v->end(), [](const std::string& a) { return a.rfind("127.", 0) == 0; });
}

}  // namespace

struct DnsCache {
  static constexpr std::chrono::seconds kTtl{600};
  static constexpr size_t kMaxEntries = 20000;  // then it starts afresh: bounded memory
  std::mutex mu;
  std::unordered_map<std::string, std::pair<std::chrono::steady_clock::time_point, bool>> answers;

  std::optional<bool> get(const std::string& name) {
    std::lock_guard lock(mu);
    auto it = answers.find(name);
    if (it == answers.end() || it->second.first < std::chrono::steady_clock::now()) return std::nullopt;
    return it->second.second;
  }
  void put(const std::string& name, bool listed) {
    std::lock_guard lock(mu);
    if (answers.size() >= kMaxEntries) answers.clear();
    answers[name] = {std::chrono::steady_clock::now() + kTtl, listed};
  }
};

bool mixed_script(std::string_view s) {
  bool latin = false, other = false;
  size_t i = 0;
  auto flush = [&]() {
    bool mixed = latin && other;
    latin = other = false;
    return mixed;
  };
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    uint32_t cp = c;
    size_t len = 1;
    if (c >= 0xc0 && c < 0xe0 && i + 1 < s.size()) {
      cp = ((c & 0x1fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3fu);
      len = 2;
    } else if (c >= 0xe0 && c < 0xf0 && i + 2 < s.size()) {
      cp = ((c & 0x0fu) << 12) | ((static_cast<unsigned char>(s[i + 1]) & 0x3fu) << 6) |
           (static_cast<unsigned char>(s[i + 2]) & 0x3fu);
      len = 3;
    } else if (c >= 0xf0 && i + 3 < s.size()) {
      len = 4;
      cp = 0x10000;
    }
    i += len;
    bool letter_latin = (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= 0xc0 && cp <= 0x24f && cp != 0xd7 && cp != 0xf7);
    bool letter_other = (cp >= 0x370 && cp <= 0x3ff) || (cp >= 0x400 && cp <= 0x52f);
    if (letter_latin) latin = true;
    else if (letter_other) other = true;
    else if (!(cp >= '0' && cp <= '9') && cp != '-' && flush()) return true;  // a word ends
  }
  return flush();
}

RuleSet::RuleSet() {
  for (auto& b : builtins()) {
    auto r = std::make_unique<Rule>();
    r->name = b.name;
    r->test = std::move(b.test);
    scores_[b.name] = b.score;
    descriptions_[b.name] = b.description;
    rules_.push_back(std::move(r));
  }
  Status st = load(kDefaultRules, "built-in rules");
  (void)st;  // the built-in text is tested (rules_test)
}
RuleSet::~RuleSet() = default;
RuleSet::RuleSet(RuleSet&&) noexcept = default;
RuleSet& RuleSet::operator=(RuleSet&&) noexcept = default;

Status RuleSet::load(std::string_view text, std::string_view origin) {
  size_t line_no = 0;
  std::string errors;
  auto fail = [&](const std::string& what) {
    if (!errors.empty()) errors += "\n";
    errors += std::string(origin) + ":" + std::to_string(line_no) + ": " + what;
  };
  while (!text.empty()) {
    std::string_view line = trim(next_line(text));
    ++line_no;
    if (line.empty() || line.front() == '#') continue;
    auto word = [&]() {
      line = trim(line);
      size_t sp = line.find_first_of(" \t");
      std::string_view w = line.substr(0, sp);
      line = sp == std::string_view::npos ? std::string_view() : trim(line.substr(sp));
      return std::string(w);
    };
    std::string kind = word(), name = word();
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
        })) {
      fail("expected a rule name of letters, digits and _ after \"" + kind + "\"");
      continue;
    }
    if (kind == "score") {
      std::string v(line);
      char* end = nullptr;
      double d = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || d != d) {
        fail("expected a number after score " + name);
        continue;
      }
      scores_[name] = d;
      continue;
    }
    if (kind == "describe") {
      std::string d(line);
      if (d.size() >= 2 && d.front() == '"' && d.back() == '"') d = d.substr(1, d.size() - 2);
      descriptions_[name] = d;
      continue;
    }
    Rule::Kind k;
    if (kind == "header") k = Rule::Kind::header;
    else if (kind == "body") k = Rule::Kind::body;
    else if (kind == "uri") k = Rule::Kind::uri;
    else {
      fail("unknown rule kind \"" + kind + "\" (header, body, uri, score, describe)");
      continue;
    }
    auto r = std::make_unique<Rule>();
    r->kind = k;
    r->name = name;
    if (k == Rule::Kind::header) {
      r->field = word();
      if (r->field.empty()) {
        fail("expected a header field name after header " + name);
        continue;
      }
    }
    std::string pattern, flags;
    if (!split_regex(line, pattern, flags)) {
      fail("expected /regex/ with flags i or none for " + name);
      continue;
    }
    uint32_t options = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_UCP;
    if (flags.find('i') != std::string::npos) options |= PCRE2_CASELESS;
    int err = 0;
    PCRE2_SIZE offset = 0;
    r->re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &err, &offset,
                          nullptr);
    if (!r->re) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      fail("bad regex for " + name + " at offset " + std::to_string(offset) + ": " +
           reinterpret_cast<const char*>(msg));
      continue;
    }
    pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE);  // optional speed-up; matching works without
    if (!scores_.count(name)) scores_[name] = 1.0;
    auto same = std::find_if(rules_.begin(), rules_.end(), [&](const auto& x) { return x->name == name; });
    if (same != rules_.end()) *same = std::move(r);  // a file redefines a rule
    else rules_.push_back(std::move(r));
  }
  if (!errors.empty()) return error(Code::config, errors);
  return Status::ok();
}

Status RuleSet::load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return error(Code::config, "cannot read rule file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return load(ss.str(), path);
}

void RuleSet::set_dns(auth::Resolver* resolver, std::vector<std::string> dnsbl, std::vector<std::string> uribl) {
  resolver_ = resolver;
  dns_cache_ = std::make_unique<DnsCache>();
  dnsbl_ = std::move(dnsbl);
  uribl_ = std::move(uribl);
  for (const auto& z : dnsbl_) {
    std::string n = zone_rule_name("RCVD_IN_", z);
    if (!scores_.count(n)) scores_[n] = 2.0;
    descriptions_[n] = "the client's IP is listed in " + z;
  }
  for (const auto& z : uribl_) {
    std::string n = zone_rule_name("URI_IN_", z);
    if (!scores_.count(n)) scores_[n] = 2.0;
    descriptions_[n] = "a link's domain is listed in " + z;
  }
}

std::vector<Hit> RuleSet::evaluate(const Analysis& a, const BayesResult& bayes, const Context& context) const {
  std::vector<Hit> hits;
  auto hit = [&](const std::string& name) {
    auto s = scores_.find(name);
    double score = s == scores_.end() ? 1.0 : s->second;
    if (score == 0) return;  // disabled
    auto d = descriptions_.find(name);
    hits.push_back({name, score, d == descriptions_.end() ? std::string() : d->second});
  };
  for (const auto& r : rules_) {
    auto s = scores_.find(r->name);
    if (s != scores_.end() && s->second == 0) continue;  // disabled: not even run
    bool fired = false;
    switch (r->kind) {
      case Rule::Kind::builtin:
        fired = r->test(a, bayes, context);
        break;
      case Rule::Kind::body:
        fired = matches(r->re, a.text);
        break;
      case Rule::Kind::uri:
        for (const auto& l : a.links)
          if ((fired = matches(r->re, l.url))) break;
        break;
      case Rule::Kind::header: {
        std::string f = lower(r->field);
        const std::string* v = f == "subject" ? &a.subject : f == "from" ? &a.from : f == "to" ? &a.to
                               : f == "reply-to" ? &a.reply_to : f == "date" ? &a.date
                               : f == "message-id" ? &a.message_id : (f == "x-mailer" || f == "user-agent") ? &a.mailer
                                                                                                         : nullptr;
        if (v) {
          fired = matches(r->re, *v);
        } else if (f == "received") {
          for (const auto& x : a.received)
            if ((fired = matches(r->re, x))) break;
        } else {
          for (const auto& x : a.other_headers(r->field))
            if ((fired = matches(r->re, x))) break;
        }
        break;
      }
    }
    if (fired) hit(r->name);
  }
  if (resolver_) {
    std::vector<std::pair<std::string, std::string>> queries;  // name, the rule it fires
    if (is_ipv4(context.client_ip)) {
      std::string rev;
      std::string_view ip = context.client_ip;
      for (int i = 0; i < 4; ++i) {
        size_t dot = ip.rfind('.');
        rev += std::string(dot == std::string_view::npos ? ip : ip.substr(dot + 1)) + ".";
        ip = dot == std::string_view::npos ? std::string_view() : ip.substr(0, dot);
      }
      for (const auto& z : dnsbl_) queries.emplace_back(rev + z, zone_rule_name("RCVD_IN_", z));
    }
    std::set<std::string> domains;
    for (const auto& l : a.links) {
      if (l.host.empty() || is_ipv4(l.host) || l.host[0] == '[') continue;
      domains.insert(auth::PublicSuffixList::system().organizational_domain(l.host));
      if (domains.size() >= 10) break;  // bounded lookups per message
    }
    for (const auto& z : uribl_)
      for (const auto& d : domains) queries.emplace_back(d + "." + z, zone_rule_name("URI_IN_", z));
    // What the cache does not know is asked all at once (the resolver is
    // thread-safe): a message waits for its slowest lookup, not their sum.
    std::vector<std::optional<bool>> answers(queries.size());
    std::vector<size_t> ask;
    for (size_t i = 0; i < queries.size(); ++i)
      if (!(answers[i] = dns_cache_->get(queries[i].first))) ask.push_back(i);
    std::atomic<size_t> next{0};
    auto asker = [this, &queries, &answers, &ask, &next] {
      for (size_t k; (k = next++) < ask.size();) answers[ask[k]] = listed(*resolver_, queries[ask[k]].first);
    };
    std::vector<std::thread> askers;
    for (size_t t = 1; t < std::min<size_t>(ask.size(), 8); ++t) askers.emplace_back(asker);
    asker();
    for (auto& t : askers) t.join();
    std::set<std::string> fired;
    for (size_t i = 0; i < queries.size(); ++i) {
      if (answers[i] && !dns_cache_->get(queries[i].first)) dns_cache_->put(queries[i].first, *answers[i]);
      if (answers[i].value_or(false) && fired.insert(queries[i].second).second) hit(queries[i].second);  // once per zone
    }
  }
  return hits;
}

std::vector<Hit> RuleSet::list() const {
  std::vector<Hit> out;
  for (const auto& [name, score] : scores_) {
    auto d = descriptions_.find(name);
    out.push_back({name, score, d == descriptions_.end() ? std::string() : d->second});
  }
  return out;
}

}  // namespace mail::spam
