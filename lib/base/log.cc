#include "base/log.h"

#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>

namespace mail::log {
namespace {
std::string g_program = "mail";
std::atomic<int> g_level{static_cast<int>(Level::info)};
bool g_syslog = false;

const char* level_name(Level l) {
  switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "info";
}
}  // namespace

void init(std::string_view program, Level min_level, bool use_syslog) {
  g_program.assign(program);
  g_level = static_cast<int>(min_level);
  g_syslog = use_syslog;
  if (g_syslog) openlog(g_program.c_str(), LOG_PID, LOG_MAIL);
}

void set_level(Level level) { g_level = static_cast<int>(level); }
bool enabled(Level level) { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }
std::string_view program() { return g_program; }

void write(Level level, std::string_view message) {
  if (g_syslog) {
    int prio = level == Level::error ? LOG_ERR : level == Level::warn ? LOG_WARNING
             : level == Level::info  ? LOG_INFO : LOG_DEBUG;
    syslog(prio, "%.*s", static_cast<int>(message.size()), message.data());
    return;
  }
  // One write(2) per line so lines from several threads never interleave.
  std::string line = fmt::format("{} {}[{}]: {}\n", level_name(level), g_program, getpid(), message);
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace mail::log
