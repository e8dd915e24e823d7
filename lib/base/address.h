// Mail addresses and domain names in one canonical form, decided once.
//
// Canonical domain: IDNA2008 A-label, lower case, no trailing dot
//   ("Bücher.Example." -> "xn--bcher-kva.example").
// Canonical address: local part with ASCII letters lower-cased (UTF-8 kept as
//   given, NFC), "@", canonical domain. Quoted local parts are kept quoted only
//   when they need to be.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace mail {

struct Address {
  std::string local;   // without quotes
  std::string domain;  // canonical
  std::string str() const;  // local@domain, quoting the local part if it must be
};

// Validates and canonicalises a domain name (U-label or A-label input).
Result<std::string> canonical_domain(std::string_view domain);

// Parses "local@domain" (RFC 5321 Mailbox, RFC 6531 UTF-8 allowed) into canonical
// form. Rejects empty parts, bad characters, over-long parts (local 64 octets,
// domain 255, address 254).
Result<Address> parse_address(std::string_view text);

// The domain as a person reads it (U-label), for display only.
std::string display_domain(std::string_view canonical);

// Splits a "+detail" off a canonical local part: "joe+lists" -> {"joe", "lists"}.
struct LocalPart {
  std::string user;
  std::string detail;
};
LocalPart split_detail(std::string_view local, char separator = '+');

}  // namespace mail
