#include "auth/psl.h"

#include <fstream>
#include <sstream>
#include <vector>

#include "base/address.h"

namespace mail::auth {

namespace {

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// The labels of a domain from the right: "a.b.c" -> offsets of "c", "b.c", "a.b.c".
std::vector<std::string_view> suffixes(std::string_view d) {
  std::vector<std::string_view> out;
  size_t end = d.size();
  while (true) {
    size_t dot = d.rfind('.', end == 0 ? 0 : end - 1);
    if (dot == std::string_view::npos || end == 0) {
      out.push_back(d);
      break;
    }
    out.push_back(d.substr(dot + 1));
    end = dot;
  }
  return out;
}

}  // namespace

PublicSuffixList PublicSuffixList::parse(std::string_view text) {
  PublicSuffixList psl;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    size_t end = line.find_first_of(" \t\r");
    line = line.substr(0, end);
    if (line.empty() || line.substr(0, 2) == "//") continue;
    bool exception = line[0] == '!';
    if (exception) line.remove_prefix(1);
    bool wildcard = line.substr(0, 2) == "*.";
    if (wildcard) line.remove_prefix(2);
    std::string rule = lower_ascii(line);
    bool ascii = true;
    for (char c : rule) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
    if (!ascii) {
      auto a = canonical_domain(rule);
      if (!a) continue;
      rule = *a;
    }
    if (exception) psl.exceptions_.insert(rule);
    else if (wildcard) psl.wildcards_.insert(rule);
    else psl.rules_.insert(rule);
  }
  return psl;
}

Result<PublicSuffixList> PublicSuffixList::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return error(Code::io, "cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str());
}

const PublicSuffixList& PublicSuffixList::system() {
  static const PublicSuffixList list = [] {
    auto l = load();
    return l ? std::move(*l) : PublicSuffixList();
  }();
  return list;
}

std::string PublicSuffixList::public_suffix(std::string_view domain) const {
  std::string d = lower_ascii(domain);
  if (!d.empty() && d.back() == '.') d.pop_back();
  auto s = suffixes(d);
  // s[i] has i + 1 labels. The longest matching rule wins; an exception
  // rule's suffix is the rule without its leftmost label.
  size_t best = 1;  // the implicit "*" rule
  for (size_t i = 0; i < s.size(); ++i) {
    std::string key(s[i]);
    if (exceptions_.count(key)) return i == 0 ? key : std::string(s[i - 1]);
    if (rules_.count(key)) best = std::max(best, i + 1);
    if (i + 1 < s.size() && wildcards_.count(key)) best = std::max(best, i + 2);
  }
  return std::string(s[std::min(best, s.size()) - 1]);
}

std::string PublicSuffixList::organizational_domain(std::string_view domain) const {
  std::string d = lower_ascii(domain);
  if (!d.empty() && d.back() == '.') d.pop_back();
  std::string suffix = public_suffix(d);
  if (suffix.size() >= d.size()) return d;
  auto s = suffixes(d);
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i].size() == suffix.size()) return i + 1 < s.size() ? std::string(s[i + 1]) : d;
  }
  return d;
}

}  // namespace mail::auth
