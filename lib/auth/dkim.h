// DKIM signing and verification: RFC 6376, RFC 8463 (ed25519-sha256),
// RFC 8301 (rsa-sha1 is not acceptable; RSA keys under 1024 bits refused).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/canon.h"
#include "auth/resolver.h"
#include "base/status.h"

struct evp_pkey_st;

namespace mail::auth {

enum class DkimAlgorithm { rsa_sha256, ed25519_sha256, rsa_sha1 };

std::string_view dkim_algorithm_name(DkimAlgorithm a);

// A private signing key: RSA (PEM, PKCS#1 or PKCS#8) or Ed25519 (PEM PKCS#8,
// or a bare base64 32-byte seed as dkimpy's dknewkey writes it).
class DkimKey {
 public:
  static Result<DkimKey> parse(std::string_view text);
  static Result<DkimKey> load_file(const std::string& path);
  // A new key: Ed25519, or RSA with `rsa_bits` bits.
  static Result<DkimKey> generate(DkimAlgorithm algorithm, int rsa_bits = 2048);

  DkimAlgorithm algorithm() const { return algorithm_; }
  int bits() const { return bits_; }
  // The TXT record that publishes the public key: "v=DKIM1; k=...; p=...".
  std::string dns_record() const;
  // PKCS#8 PEM of the private key.
  std::string private_pem() const;

  evp_pkey_st* pkey() const { return pkey_.get(); }

 private:
  std::shared_ptr<evp_pkey_st> pkey_;
  DkimAlgorithm algorithm_ = DkimAlgorithm::rsa_sha256;
  int bits_ = 0;
};

struct DkimSignOptions {
  std::string domain;    // d=
  std::string selector;  // s=
  std::string identity;  // i=, empty: none
  Canon header_canon = Canon::relaxed;
  Canon body_canon = Canon::relaxed;
  // Header names to sign; empty: the usual set (From, To, Cc, Subject, Date,
  // Message-ID, Reply-To, MIME headers, List-*, ...), each as often as it occurs.
  std::vector<std::string> headers;
  bool oversign_from = true;  // list From once more than it occurs, so none can be added
  int64_t timestamp = -1;     // t=: -1 now, 0 none
  int64_t expire_after = 0;   // x= = t + this, when > 0
  uint64_t body_length = 0;   // l=, when > 0 (discouraged: content may be appended)
  // Tests only: rsa-sha1 with an RSA key (RFC 8301 forbids signing with it).
  std::optional<DkimAlgorithm> algorithm;
};

// The DKIM-Signature header field to prepend to `message` (CRLF line ends,
// folded, ending in CRLF). Code::invalid when the message has no From.
Result<std::string> dkim_sign(std::string_view message, const DkimKey& key, const DkimSignOptions& options);
// The same on a message already split.
Result<std::string> dkim_sign(const MailMessage& message, const DkimKey& key, const DkimSignOptions& options);

// RFC 8601 result names.
enum class DkimStatus { pass, fail, neutral, policy, temperror, permerror };
std::string_view dkim_status_name(DkimStatus s);

struct DkimResult {
  DkimStatus status = DkimStatus::permerror;
  std::string domain;    // d=
  std::string selector;  // s=
  std::string identity;  // i= (default "@" + d)
  std::string algorithm; // a=
  std::string reason;    // why it did not pass
  bool testing = false;  // the key record has t=y
  int key_bits = 0;
};

struct DkimVerifyOptions {
  int64_t now = -1;            // for x=; -1: the clock
  size_t max_signatures = 8;   // further signatures are not checked
  // l= shorter than the body leaves content unsigned: "policy" unless allowed.
  bool allow_partial_body = false;
};

// One result per DKIM-Signature field, top first; empty when there is none.
std::vector<DkimResult> dkim_verify(std::string_view message, Resolver& resolver,
                                    const DkimVerifyOptions& options = {});
std::vector<DkimResult> dkim_verify(const MailMessage& message, Resolver& resolver,
                                    const DkimVerifyOptions& options = {});

// A key record (the TXT at selector._domainkey.domain), for tools and tests.
struct DkimKeyRecord {
  std::string key_type = "rsa";  // k=
  std::vector<std::string> hashes;  // h=, empty: any
  std::vector<std::string> services;  // s=, empty: "*"
  std::vector<std::string> flags;     // t=
  std::string public_key;           // p= decoded; empty: revoked
};
Result<DkimKeyRecord> parse_dkim_key_record(std::string_view text);

}  // namespace mail::auth
