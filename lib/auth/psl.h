// The Public Suffix List (publicsuffix.org; Debian's `publicsuffix` package),
// for the organizational domain of DMARC (RFC 7489 3.2).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>

#include "base/status.h"

namespace mail::auth {

constexpr const char* kDefaultPslPath = "/usr/share/publicsuffix/public_suffix_list.dat";

class PublicSuffixList {
 public:
  // Parses the list's text (rules in UTF-8 are stored as A-labels).
  static PublicSuffixList parse(std::string_view text);
  static Result<PublicSuffixList> load(const std::string& path = kDefaultPslPath);
  // The list at kDefaultPslPath, loaded once; an empty list (every TLD a
  // suffix) when it cannot be read.
  static const PublicSuffixList& system();

  // The public suffix of a canonical (lower-case A-label) domain: the longest
  // matching rule, exceptions first, "*" when none matches.
  std::string public_suffix(std::string_view domain) const;
  // The suffix and one more label; the domain itself when it is a suffix.
  std::string organizational_domain(std::string_view domain) const;

  size_t size() const { return rules_.size() + wildcards_.size() + exceptions_.size(); }

 private:
  std::unordered_set<std::string> rules_;       // "co.uk"
  std::unordered_set<std::string> wildcards_;   // "*.ck" stored as "ck"
  std::unordered_set<std::string> exceptions_;  // "!www.ck" stored as "www.ck"
};

}  // namespace mail::auth
