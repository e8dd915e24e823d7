// DKIM verification pieces that ARC (arc.cc) shares; not for other callers.
#pragma once

#include <string>
#include <string_view>
#include <vector>

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

// The signature of `data` as DKIM and ARC sign header hashes with `alg`.
Result<std::string> sign_header_data(const DkimKey& key, DkimAlgorithm alg, std::string_view data);
// SHA-256 (or SHA-1 for rsa-sha1) of `body` canonicalized with `canon`, raw
// (empty when OpenSSL fails).
std::string body_hash_for(DkimAlgorithm alg, std::string_view body, Canon canon);
// Appends the header fields named in `names`, each instance picked bottom-up
// (RFC 6376 5.4.2), canonicalized.
void append_signed_headers(const MailMessage& msg, const std::vector<std::string>& names, Canon canon,
                           std::string& out);

}  // namespace mail::auth::internal
