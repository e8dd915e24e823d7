#include "base/date.h"

#include <ctime>

namespace mail {

std::string rfc5322_date(int64_t unix_time) {
  std::time_t tt = static_cast<std::time_t>(unix_time);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

}  // namespace mail
