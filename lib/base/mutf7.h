// Modified UTF-7 (RFC 3501 5.1.3): mailbox names as IMAP4rev1 clients and
// Maildir++ folders spell them; the store keeps UTF-8.
#pragma once

#include <string>
#include <string_view>

namespace mail {

std::string mutf7_decode(std::string_view in);  // invalid sequences are kept as they are
std::string mutf7_encode(std::string_view utf8);

}  // namespace mail
