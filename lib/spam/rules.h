// Rules: tests on a message's facts, each with a name and a score. Built-in
// tests cover header sanity, links, mixed scripts, authentication results and
// the Bayes bands; admins add their own (header/body/uri regular expressions)
// and rescore any rule in a rule file, without recompiling:
//
//   # comment
//   header   NAME  Field-Name  /regex/flags     a field's decoded values
//   body     NAME  /regex/flags                 the decoded text (HTML as text)
//   uri      NAME  /regex/flags                 each link as written
//   score    NAME  2.5                          any rule, built-in ones too (0 disables)
//   describe NAME  text shown in reports
//
// Flags: i (ignore case). Regular expressions are PCRE2 (UTF-8), matched with
// limits so a pathological pattern or message cannot hang a classification.
// A new rule scores 1.0 until a `score` line says otherwise.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "spam/bayes.h"
#include "spam/tokenizer.h"

namespace mail::auth {
class Resolver;
}

namespace mail::spam {

struct Hit {
  std::string name;
  double score = 0;
  std::string description;
};

// What the caller knows beyond the message.
struct Context {
  std::string client_ip;    // the connecting client (SMTP); "" when unknown
  std::string authserv_id;  // trust only Authentication-Results of this id; "": the topmost one
  std::vector<uint64_t> local_recipients;  // accounts the message goes to (SMTP), for BULK_DIGEST
  bool bulk = false;        // set by the classifier: the body reached bulk.min_users users
};

struct Rule;      // rules.cc
struct DnsCache;  // rules.cc

class RuleSet {
 public:
  RuleSet();
  ~RuleSet();
  RuleSet(RuleSet&&) noexcept;
  RuleSet& operator=(RuleSet&&) noexcept;

  // Adds the rules and scores of a rule file's text; errors name the line
  // ("rules.cf:3: unknown rule kind \"hedaer\"").
  Status load(std::string_view text, std::string_view origin);
  Status load_file(const std::string& path);

  // DNS block lists (zones) for the client IP and link domains; none by default.
  // Answers (listed or not) are cached for 10 minutes, temporary failures not
  // at all, so a run of mail from one client or with one link asks DNS once.
  void set_dns(auth::Resolver* resolver, std::vector<std::string> dnsbl, std::vector<std::string> uribl);

  std::vector<Hit> evaluate(const Analysis& a, const BayesResult& bayes, const Context& context) const;

  // Every rule with its score and description (for `mail-spamscore rules`).
  std::vector<Hit> list() const;

 private:
  std::vector<std::unique_ptr<Rule>> rules_;
  std::map<std::string, double, std::less<>> scores_;
  std::map<std::string, std::string, std::less<>> descriptions_;
  auth::Resolver* resolver_ = nullptr;
  std::unique_ptr<DnsCache> dns_cache_;
  std::vector<std::string> dnsbl_, uribl_;
};

// True when a word mixes Latin letters with Cyrillic or Greek ones (the usual
// homograph trick: "pаypal" with a Cyrillic 'а').
bool mixed_script(std::string_view utf8);

}  // namespace mail::spam
