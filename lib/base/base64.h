// Base64 (RFC 4648, standard alphabet, with padding) as SASL, SCRAM and the
// protocol layers use it. Decoding is strict: no whitespace, padding required,
// non-zero trailing bits rejected, so one text has exactly one meaning.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace mail {

std::string base64_encode(std::string_view data);

// Code::invalid when `text` is not canonical base64. "" decodes to "".
// Constant time (libsodium), as secrets need.
Result<std::string> base64_decode(std::string_view text);

// The same result for public data only (signatures, public keys, digests):
// a table lookup per character, several times faster, in variable time.
Result<std::string> base64_decode_public(std::string_view text);

}  // namespace mail
