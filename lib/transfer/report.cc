#include "transfer/report.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

namespace mail::transfer {

Progress::Progress(std::string label, bool enabled)
    : label_(std::move(label)), enabled_(enabled), start_(std::chrono::steady_clock::now()) {}

Progress::~Progress() { done(); }

bool Progress::stderr_is_terminal() { return ::isatty(2) == 1; }

std::string human_bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", n) : fmt::format("{:.1f} {}", v, units[u]);
}

void Progress::update(uint64_t done, uint64_t total) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_ < std::chrono::milliseconds(200)) return;
  last_ = now;
  double secs = std::chrono::duration<double>(now - start_).count();
  double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
  std::string line = label_ + " " + human_bytes(done);
  if (total) {
    double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
    int width = 24;
    int fill = static_cast<int>(frac * width);
    line = fmt::format("{} [{}{}] {:3.0f}% {} / {}", label_, std::string(fill, '#'), std::string(width - fill, '.'),
                       frac * 100, human_bytes(done), human_bytes(total));
  }
  line += fmt::format("  {}/s", human_bytes(static_cast<uint64_t>(rate)));
  if (total && rate > 0 && done < total) {
    auto eta = static_cast<uint64_t>(static_cast<double>(total - done) / rate);
    line += fmt::format("  ETA {}:{:02}:{:02}", eta / 3600, eta / 60 % 60, eta % 60);
  }
  std::fprintf(stderr, "\r%s\033[K", line.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::done() {
  if (enabled_ && drawn_) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }
  drawn_ = false;
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) out += fmt::format("\\u{:04x}", c);
        else out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string render_summary(const Summary& s, const std::string& format) {
  if (format == "json") {
    std::string out = "{";
    for (const auto& [name, v] : s.totals) {
      out += json_string(name);
      out += ':';
      out += std::to_string(v);
      out += ',';
    }
    out += "\"mailboxes\":[";
    for (size_t r = 0; r < s.rows.size(); ++r) {
      if (r) out += ",";
      out += "{\"mailbox\":";
      out += json_string(s.rows[r].first);
      for (size_t c = 0; c < s.columns.size() && c < s.rows[r].second.size(); ++c) {
        out += ',';
        out += json_string(s.columns[c]);
        out += ':';
        out += std::to_string(s.rows[r].second[c]);
      }
      out += "}";
    }
    out += "]}\n";
    return out;
  }
  // Table: mailbox column, then right-aligned numbers; a total row.
  std::vector<std::vector<std::string>> cells;
  std::vector<std::string> head = {"MAILBOX"};
  for (const auto& c : s.columns) {
    std::string u = c;
    std::transform(u.begin(), u.end(), u.begin(), ::toupper);
    head.push_back(u);
  }
  cells.push_back(head);
  std::vector<uint64_t> sums(s.columns.size(), 0);
  for (const auto& [name, values] : s.rows) {
    std::vector<std::string> row = {name};
    for (size_t c = 0; c < s.columns.size(); ++c) {
      uint64_t v = c < values.size() ? values[c] : 0;
      sums[c] += v;
      row.push_back(std::to_string(v));
    }
    cells.push_back(row);
  }
  if (s.rows.size() != 1) {
    std::vector<std::string> row = {"total"};
    for (auto v : sums) row.push_back(std::to_string(v));
    cells.push_back(row);
  }
  std::vector<size_t> width(head.size(), 0);
  for (const auto& row : cells)
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  std::string out;
  for (const auto& row : cells) {
    for (size_t c = 0; c < row.size(); ++c) {
      if (c == 0) out += row[c] + std::string(width[c] - row[c].size(), ' ');
      else out += "  " + std::string(width[c] - row[c].size(), ' ') + row[c];
    }
    out += "\n";
  }
  return out;
}

}  // namespace mail::transfer
