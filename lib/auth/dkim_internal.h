// DKIM verification pieces that ARC (arc.cc) shares; not for other callers.
#pragma once

#include <string>
#include <string_view>

#include "auth/dkim.h"

namespace mail::auth::internal {

// Verifies a DKIM-Signature, or with `arc` an ARC-Message-Signature (no v=,
// i= is the instance, From need not be signed, ARC-Seal may not be).
DkimResult verify_signature_field(const MailMessage& msg, const HeaderField& field, Resolver& resolver,
                                  const DkimVerifyOptions& options, std::string& scratch, bool arc);

// Verifies `sig` over `data` with the key published for r.selector and
// r.domain; sets r.status (pass, fail, permerror, temperror) and r.reason.
bool verify_with_key(Resolver& resolver, DkimAlgorithm alg, DkimResult& r, std::string_view data,
                     std::string_view sig);

}  // namespace mail::auth::internal
