// Passwords: argon2id hashes for plaintext logins (AUTH PLAIN/LOGIN, IMAP LOGIN)
// and SCRAM-SHA-256 (RFC 5802, RFC 7677) verifiers and the server side of the
// exchange, so SCRAM logins work without the plaintext.
//
// The store keeps ScramKeys as store::ScramCredential (same fields); base cannot
// see the store, so the conversion lives above it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace mail {

// ---- argon2id ---------------------------------------------------------------

// libsodium's encoded argon2id string ("$argon2id$v=19$m=...,t=...,p=1$salt$hash"),
// with the interactive limits. Code::invalid for an empty password,
// Code::internal when the hash cannot be computed (out of memory).
Result<std::string> hash_password(std::string_view plaintext);

// True when `plaintext` matches; false for a wrong password or a malformed hash.
bool verify_password(std::string_view encoded_hash, std::string_view plaintext);

// True when the hash was made with other limits than the current ones (or is
// not an argon2id string at all): rehash it at the next successful login.
bool password_needs_rehash(std::string_view encoded);

// Compares two secrets in time independent of their contents (sodium_memcmp).
// Different lengths compare unequal at once; the length is not secret.
bool constant_time_equal(std::string_view a, std::string_view b);

// ---- SCRAM-SHA-256 ----------------------------------------------------------

// The verifier stored per account. All fields are raw bytes (not base64).
struct ScramKeys {
  std::string salt;
  uint32_t iterations = 0;
  std::string stored_key;  // SHA-256(HMAC(SaltedPassword, "Client Key")), 32 bytes
  std::string server_key;  // HMAC(SaltedPassword, "Server Key"), 32 bytes
};

constexpr uint32_t kScramDefaultIterations = 4096;  // RFC 7677's minimum

// SASLprep (RFC 4013), minimally: ASCII is checked (control characters are
// prohibited: Code::invalid, as is an empty result) and otherwise kept as is;
// non-ASCII UTF-8 is passed through unchanged, without normalisation or
// mapping. A client that normalises a non-ASCII password differently from
// how it was typed at set-up will fail SCRAM but still pass PLAIN.
Result<std::string> saslprep(std::string_view text);

// Derives the verifier with a random 16-byte salt. The password is used as
// given; callers setting a password should check it with saslprep() first.
// Iterations below 1 count as 1.
ScramKeys derive_scram_keys(std::string_view password,
                            uint32_t iterations = kScramDefaultIterations);
// The same with a given salt (raw bytes): for tests and re-derivation.
ScramKeys derive_scram_keys(std::string_view password, std::string_view salt, uint32_t iterations);

// The server side of one SCRAM-SHA-256 exchange, without channel binding.
//
//   step(client-first)  -> server-first  ("r=...,s=...,i=...")
//   step(client-final)  -> server-final  ("v=...")    then done() is true
//
// Messages are the decoded SASL payloads (not base64). Errors are
// Code::invalid for malformed messages and Code::denied for a failed login;
// the Status message is then an RFC 5802 server-error-value ("invalid-proof",
// "invalid-encoding", "channel-binding-not-supported", ...) that a protocol
// may send as "e=<message>". After an error the exchange is over: every
// further step() fails. An unknown user gets a plausible server-first (salt
// derived from a per-process secret) and fails at the end with invalid-proof,
// exactly like a wrong password, so the exchange does not reveal who exists.
class ScramServer {
 public:
  // Returns the user's verifier, or nullopt when the user is unknown (or may
  // not log in). Called once, from the first step().
  using Lookup = std::function<std::optional<ScramKeys>(std::string_view username)>;

  explicit ScramServer(Lookup lookup);

  Result<std::string> step(std::string_view client_message);

  bool done() const { return state_ == State::done; }  // authenticated
  // The authentication identity from client-first ("=2C"/"=3D" decoded);
  // empty before the first step.
  const std::string& username() const { return username_; }

  // Tests only: use this server nonce instead of a random one. Printable
  // ASCII without ','; call before the first step().
  void set_nonce_for_testing(std::string nonce) { server_nonce_ = std::move(nonce); }

 private:
  enum class State { start, first_sent, done, failed };

  Result<std::string> client_first(std::string_view message);
  Result<std::string> client_final(std::string_view message);
  Status fail(Code code, std::string error_value);

  Lookup lookup_;
  State state_ = State::start;
  bool known_user_ = false;
  std::string username_;
  std::string gs2_header_;
  std::string client_first_bare_;
  std::string server_first_;
  std::string nonce_;  // client nonce + server nonce
  std::string server_nonce_;
  ScramKeys keys_;
};

}  // namespace mail
