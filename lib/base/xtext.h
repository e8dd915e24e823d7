// RFC 3461 xtext, the encoding of the DSN parameters ENVID and ORCPT.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mail {

// "+XX" hex escapes (upper-case hex), other characters 33..126 except '+' and
// '='. nullopt when malformed.
std::optional<std::string> xtext_decode(std::string_view text);
std::string xtext_encode(std::string_view text);

}  // namespace mail
