#include "base/date.h"

#include <ctime>

namespace mail {

std::string utc_time(int64_t unix_time, const char* format) {
  std::time_t tt = static_cast<std::time_t>(unix_time);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

std::string rfc5322_date(int64_t unix_time) { return utc_time(unix_time, "%a, %d %b %Y %H:%M:%S +0000"); }

}  // namespace mail
