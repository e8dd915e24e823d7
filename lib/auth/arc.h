// ARC (RFC 8617): validating the chain of ARC sets a message carries.
#pragma once

#include <string>

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

}  // namespace mail::auth
