#include "auth/auth_results.h"

namespace mail::auth {
namespace {

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

}  // namespace

std::string_view header_value(const HeaderField& f) {
  std::string_view v = f.raw.substr(f.raw.find(':') + 1);
  if (v.size() >= 2 && v.substr(v.size() - 2) == "\r\n") v.remove_suffix(2);
  return v;
}

std::vector<std::string> ar_parts(std::string_view v) {
  std::vector<std::string> out;
  std::string cur;
  int comment = 0;
  bool quoted = false;
  for (size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (quoted) {
      if (c == '\\' && i + 1 < v.size()) cur.push_back(v[i++]);
      else if (c == '"') quoted = false;
    } else if (comment) {
      if (c == '(') ++comment;
      else if (c == ')') --comment;
    } else if (c == '"') {
      quoted = true;
    } else if (c == '(') {
      comment = 1;
    } else if (c == ';') {
      out.push_back(trim(cur));
      cur.clear();
      continue;
    }
    cur.push_back(c);
  }
  out.push_back(trim(cur));
  return out;
}

bool is_our_auth_results(const HeaderField& field, std::string_view authserv_id) {
  if (!header_name_equal(field.name, "Authentication-Results")) return false;
  auto parts = ar_parts(header_value(field));
  // The authserv-id may be followed by a version ("example.org 1"); comments were kept in the part.
  std::string id;
  int depth = 0;
  for (char c : parts.empty() ? std::string() : parts[0]) {
    if (c == '(') ++depth;
    else if (c == ')' && depth > 0) --depth;
    else if (depth == 0) id.push_back(c);
  }
  id = trim(id);
  id = id.substr(0, id.find_first_of(" \t\r\n"));
  // header_name_equal is an ASCII case-insensitive comparison of any two strings.
  return !id.empty() && header_name_equal(id, authserv_id);
}

std::string auth_results_field(std::string_view authserv_id, const std::vector<std::string>& results) {
  std::string h = "Authentication-Results: ";
  h += authserv_id;
  if (results.empty()) return h + "; none\r\n";
  for (const auto& r : results) {
    h += ";\r\n\t";
    h += r;
  }
  return h + "\r\n";
}

}  // namespace mail::auth
