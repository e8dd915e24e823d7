// What mail-import, mail-export and mail-backup print: a progress line on a
// terminal (rate and ETA, redrawn at most five times a second, nothing when
// stderr is not a terminal, e.g. in cron) and the summary table or JSON.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "transfer/importer.h"

namespace mail::transfer {

class Progress {
 public:
  // enabled: draw at all (false for --no-progress or when stderr is no tty).
  Progress(std::string label, bool enabled);
  ~Progress();
  // total 0: unknown (no ETA).
  void update(uint64_t done, uint64_t total);
  // Clears the line.
  void done();
  static bool stderr_is_terminal();

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

// "12.3 MiB"
std::string human_bytes(uint64_t n);

// One summary: per-mailbox rows with the named columns and a total row.
// format "table" or "json". In JSON, `totals` are top-level numbers and rows
// are under "mailboxes".
struct Summary {
  std::vector<std::string> columns;                                  // after "mailbox"
  std::vector<std::pair<std::string, std::vector<uint64_t>>> rows;   // mailbox, values
  std::vector<std::pair<std::string, uint64_t>> totals;
};
std::string render_summary(const Summary& summary, const std::string& format);

std::string json_string(std::string_view s);

}  // namespace mail::transfer
