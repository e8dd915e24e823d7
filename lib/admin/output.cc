// The one formatter for admin output, and the small parsers the table shares.
#include <cctype>
#include <limits>

#include "admin/admin.h"

namespace mail::admin {
namespace {

// Display width of a UTF-8 string, counted in code points (continuation bytes skipped).
size_t width(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xc0) != 0x80) ++n;
  return n;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Leading decimal digits of `s` as a number; `used` gets how many characters.
Result<uint64_t> leading_number(std::string_view s, size_t& used) {
  uint64_t v = 0;
  used = 0;
  while (used < s.size() && s[used] >= '0' && s[used] <= '9') {
    uint64_t d = static_cast<uint64_t>(s[used] - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return error(Code::invalid, "number too large");
    v = v * 10 + d;
    ++used;
  }
  if (used == 0) return error(Code::invalid, "expected a number");
  return v;
}

}  // namespace

bool Args::has(const std::string& name) const {
  auto it = values.find(name);
  return it != values.end() && !it->second.empty();
}

const std::string& Args::get(const std::string& name) const {
  static const std::string empty;
  auto it = values.find(name);
  return it == values.end() || it->second.empty() ? empty : it->second.front();
}

const std::vector<std::string>& Args::list(const std::string& name) const {
  static const std::vector<std::string> empty;
  auto it = values.find(name);
  return it == values.end() ? empty : it->second;
}

Result<Format> parse_format(std::string_view name) {
  if (name == "table") return Format::table;
  if (name == "json") return Format::json;
  return error(Code::invalid, "unknown output format '" + std::string(name) + "' (table or json)");
}

std::string render(const Output& out, Format format) {
  if (format == Format::json) return out.json.empty() ? std::string() : out.json + "\n";
  if (out.columns.empty()) return {};
  std::vector<size_t> widths;
  for (const auto& c : out.columns) widths.push_back(width(c));
  for (const auto& row : out.rows)
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) widths[i] = std::max(widths[i], width(row[i]));

  std::string text;
  auto line = [&](const std::vector<std::string>& cells, bool header) {
    std::string l;
    for (size_t i = 0; i < widths.size(); ++i) {
      std::string cell = i < cells.size() ? (header ? upper(cells[i]) : cells[i]) : std::string();
      l += cell;
      if (i + 1 < widths.size()) l.append(widths[i] - width(cell) + 2, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    text += l;
    text += '\n';
  };
  line(out.columns, true);
  for (const auto& row : out.rows) line(row, false);
  return text;
}

Result<uint64_t> parse_size(std::string_view text) {
  std::string_view s = trim(text);
  if (lower(s) == "unlimited") return uint64_t{0};
  size_t used = 0;
  auto number = leading_number(s, used);
  if (!number) return error(Code::invalid, "invalid size '" + std::string(text) + "' (e.g. 500M, 2G, unlimited)");
  std::string suffix = lower(s.substr(used));
  uint64_t unit = 1;
  if (!suffix.empty() && suffix != "b") {
    static constexpr std::string_view units = "kmgt";
    size_t k = units.find(suffix[0]);
    std::string_view rest = std::string_view(suffix).substr(1);
    if (k == std::string_view::npos || !(rest.empty() || rest == "b" || rest == "ib"))
      return error(Code::invalid, "invalid size '" + std::string(text) + "' (suffixes: K, M, G, T)");
    unit = uint64_t{1} << (10 * (k + 1));
  }
  if (*number > std::numeric_limits<uint64_t>::max() / unit)
    return error(Code::invalid, "size too large: " + std::string(text));
  return *number * unit;
}

Result<uint64_t> parse_count(std::string_view text) {
  std::string_view s = trim(text);
  if (lower(s) == "unlimited") return uint64_t{0};
  size_t used = 0;
  auto number = leading_number(s, used);
  if (!number || used != s.size())
    return error(Code::invalid, "invalid count '" + std::string(text) + "' (a number or unlimited)");
  return *number;
}

std::string format_size(uint64_t bytes, bool zero_is_unlimited) {
  if (bytes == 0) return zero_is_unlimited ? "unlimited" : "0";
  static constexpr const char* units[] = {"T", "G", "M", "K"};
  for (int i = 0; i < 4; ++i) {
    uint64_t unit = uint64_t{1} << (10 * (4 - i));
    if (bytes % unit == 0) return std::to_string(bytes / unit) + units[i];
  }
  return std::to_string(bytes);
}

}  // namespace mail::admin
