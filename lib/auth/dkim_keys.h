// DKIM signing keys as the store keeps them: one per domain in the global data
// (account 0), namespace kDkimNamespace, key = the domain's A-label. Written by
// `mailctl dkim keygen`, read by the submission signing filter.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/codec.h"

namespace mail::auth {

constexpr std::string_view kDkimNamespace = "dkim";

struct DkimKeyEntry {
  std::string domain;       // d= (A-label)
  std::string selector;     // s=
  std::string algorithm;    // "ed25519-sha256" or "rsa-sha256"
  std::string private_pem;  // PKCS#8
  std::string dns_record;   // the TXT value published at selector._domainkey.domain
  int64_t created = 0;
  MAIL_FIELDS(domain, selector, algorithm, private_pem, dns_record, created)

  std::string dns_name() const { return selector + "._domainkey." + domain; }
};

}  // namespace mail::auth
