// Authentication-Results header fields (RFC 8601): reading the ones a message
// carries (ARC sealing, removing forgeries of ours) and writing ours.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "auth/canon.h"

namespace mail::auth {

// The ';'-separated parts of an Authentication-Results value, outside
// comments and quoted strings, trimmed; the first is the authserv-id.
std::vector<std::string> ar_parts(std::string_view value);

// The value of a header field (after the colon, CRLF included).
std::string_view header_value(const HeaderField& field);

// True for an Authentication-Results field whose authserv-id is `authserv_id`
// (case-insensitive).
bool is_our_auth_results(const HeaderField& field, std::string_view authserv_id);

// Builds "Authentication-Results: ID;\r\n\tres1;\r\n\tres2\r\n" ("ID; none"
// without results); values must be free of CR/LF.
std::string auth_results_field(std::string_view authserv_id, const std::vector<std::string>& results);

}  // namespace mail::auth
