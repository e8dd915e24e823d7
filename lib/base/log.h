// Logging: one greppable line per event, to stderr (the supervisor collects it)
// or syslog. Format: "<level> <program>[<pid>]: <message>"; the supervisor or
// journald adds the timestamp.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace mail::log {

enum class Level { debug = 0, info, warn, error };

// Called once at start-up by each program.
void init(std::string_view program, Level min_level = Level::info, bool use_syslog = false);
void set_level(Level level);
bool enabled(Level level);
void write(Level level, std::string_view message);
std::string_view program();

template <class... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::debug)) write(Level::debug, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::info)) write(Level::info, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::warn)) write(Level::warn, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::error)) write(Level::error, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace mail::log
