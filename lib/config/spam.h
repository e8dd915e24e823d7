// The [spam] section (mail-spamscore, the SMTP spam filter, IMAP training),
// kept in its own header so config.h stays a list of sections.
#pragma once

#include <cstdint>
#include <string>

namespace mail {

struct SpamConfig {
  bool enabled = true;                 // the SMTP server scores incoming mail
  std::string required_score = "5.0";  // at or above: spam, filed into Junk
  std::string reject_score = "12.0";   // at or above: refused at DATA (5xx); "0": never
  std::string rules_file;              // admin rules and scores; empty: the built-in ones
  std::string dnsbl;                   // comma-separated DNSBL zones for the client IP; empty: none
  std::string uribl;                   // comma-separated URIBL zones for link domains; empty: none
  uint32_t token_expiry_days = 180;    // tokens not trained for this long are dropped; 0: never
  bool learn_from_imap = true;         // moving mail into or out of Junk trains the account
  uint32_t bulk_min_users = 10;        // BULK_DIGEST: one body to this many local users; 0: off
  uint32_t bulk_window_hours = 24;     // ... within this many hours

  bool operator==(const SpamConfig&) const = default;
};

}  // namespace mail
