// ARC (RFC 8617): validating the chain of ARC sets a message carries.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "auth/canon.h"
#include "auth/dkim.h"
#include "auth/resolver.h"

namespace mail::auth {

enum class ArcStatus { none, pass, fail };
std::string_view arc_status_name(ArcStatus s);

struct ArcResult {
  ArcStatus status = ArcStatus::none;
  int instances = 0;   // ARC sets on the message
  std::string reason;  // why it failed
};

// The chain validation status (RFC 8617 5.2): none without ARC sets; fail
// when a set is missing, malformed or duplicated, a seal says cv=fail or a
// wrong cv, the newest ARC-Message-Signature or any ARC-Seal does not verify;
// pass otherwise. A temporary DNS failure is reported as fail with its reason.
ArcResult arc_validate(const MailMessage& message, Resolver& resolver, const DkimVerifyOptions& options = {});

struct ArcSealOptions {
  std::string domain;       // d=
  std::string selector;     // s=
  std::string authserv_id;  // whose Authentication-Results go into the AAR
  std::vector<std::string> headers;  // h= of the ARC-Message-Signature; empty: DKIM's usual set
  int64_t timestamp = -1;   // t=; -1: now
};

// The ARC set to prepend when forwarding (RFC 8617 5.1): ARC-Seal,
// ARC-Message-Signature and ARC-Authentication-Results, CRLF line ends. The
// chain status (cv=) is the arc= result in our newest Authentication-Results
// (authserv_id). A chain whose newest seal already says cv=fail gets nothing
// (empty string). Code::invalid when there is no arc= result of ours or
// already 50 sets.
Result<std::string> arc_seal(const MailMessage& message, const DkimKey& key, const ArcSealOptions& options);

}  // namespace mail::auth
