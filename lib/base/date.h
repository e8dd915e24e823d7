// Dates as mail header fields carry them.
#pragma once

#include <cstdint>
#include <string>

namespace mail {

// RFC 5322 date-time in UTC: "Sun, 29 Nov 2026 17:04:19 +0000".
std::string rfc5322_date(int64_t unix_time);

// `unix_time` in UTC through strftime's `format` (e.g. "%Y-%m-%d"); at most 63 bytes.
std::string utc_time(int64_t unix_time, const char* format);

}  // namespace mail
