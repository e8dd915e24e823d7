#include "base/password.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <sodium.h>

#include <cstdlib>
#include <mutex>
#include <vector>

#include "base/base64.h"

namespace mail {
namespace {

void ensure_sodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Without a working random source no salt or nonce can be made: a broken machine.
    if (sodium_init() < 0) std::abort();
  });
}

std::string random_bytes(size_t n) {
  ensure_sodium();
  std::string out(n, '\0');
  randombytes_buf(out.data(), out.size());
  return out;
}

// OpenSSL wants a non-null pointer even for empty input.
const unsigned char* bytes_of(std::string_view s) {
  static const unsigned char empty = 0;
  return s.empty() ? &empty : reinterpret_cast<const unsigned char*>(s.data());
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), bytes_of(key), static_cast<int>(key.size()), bytes_of(data), data.size(), md,
       &len);
  return std::string(reinterpret_cast<const char*>(md), len);
}

std::string sha256(std::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(bytes_of(data), data.size(), md);
  return std::string(reinterpret_cast<const char*>(md), sizeof md);
}

void wipe(std::string& s) {
  if (!s.empty()) sodium_memzero(s.data(), s.size());
  s.clear();
}

// A secret made once per process: unknown users get a salt derived from it, the
// same on every attempt (a fresh random salt per attempt would give them away).
const std::string& process_secret() {
  static const std::string secret = random_bytes(32);
  return secret;
}

ScramKeys fake_scram_keys(std::string_view username) {
  const std::string& secret = process_secret();
  std::string name(username);
  ScramKeys k;
  k.salt = hmac_sha256(secret, "salt\n" + name).substr(0, 16);
  k.iterations = kScramDefaultIterations;
  k.stored_key = hmac_sha256(secret, "stored\n" + name);
  k.server_key = hmac_sha256(secret, "server\n" + name);
  return k;
}

bool usable(const ScramKeys& k) {
  return !k.salt.empty() && k.iterations > 0 && k.stored_key.size() == SHA256_DIGEST_LENGTH &&
         k.server_key.size() == SHA256_DIGEST_LENGTH;
}

// Splits "a=1,b=2" into its attributes.
std::vector<std::string_view> split_attrs(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t comma = s.find(',', start);
    if (comma == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
}

// "x=value" -> value when the attribute is `name`.
bool attr(std::string_view a, char name, std::string_view& value) {
  if (a.size() < 2 || a[0] != name || a[1] != '=') return false;
  value = a.substr(2);
  return true;
}

// saslname (RFC 5802): "=2C" is ',', "=3D" is '='; any other '=' is an error.
bool decode_saslname(std::string_view in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '\0' || c == ',') return false;
    if (c != '=') {
      out.push_back(c);
      continue;
    }
    std::string_view esc = in.substr(i + 1, 2);
    if (esc == "2C") {
      out.push_back(',');
    } else if (esc == "3D") {
      out.push_back('=');
    } else {
      return false;
    }
    i += 2;
  }
  return !out.empty();
}

// printable = %x21-2B / %x2D-7E: printable ASCII except ','.
bool valid_nonce(std::string_view n) {
  if (n.empty()) return false;
  for (char c : n) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

constexpr size_t kMaxScramMessage = 8192;

}  // namespace

// ---- argon2id ---------------------------------------------------------------

Result<std::string> hash_password(std::string_view plaintext) {
  if (plaintext.empty()) return error(Code::invalid, "empty password");
  ensure_sodium();
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, plaintext.data(), plaintext.size(),
                            crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return error(Code::internal, "argon2id hashing failed (out of memory?)");
  }
  return std::string(out);
}

bool verify_password(std::string_view encoded_hash, std::string_view plaintext) {
  // libsodium reads a NUL-terminated string of at most STRBYTES - 1 characters.
  if (encoded_hash.empty() || encoded_hash.size() >= crypto_pwhash_STRBYTES ||
      encoded_hash.find('\0') != std::string_view::npos) {
    return false;
  }
  ensure_sodium();
  std::string hash(encoded_hash);
  return crypto_pwhash_str_verify(hash.c_str(), plaintext.data(), plaintext.size()) == 0;
}

bool password_needs_rehash(std::string_view encoded) {
  if (encoded.empty() || encoded.size() >= crypto_pwhash_STRBYTES ||
      encoded.find('\0') != std::string_view::npos) {
    return true;
  }
  ensure_sodium();
  std::string hash(encoded);
  // 0: current limits; 1: other limits; -1: not an argon2id string (argon2i too).
  return crypto_pwhash_str_needs_rehash(hash.c_str(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

// ---- SCRAM-SHA-256 ----------------------------------------------------------

Result<std::string> saslprep(std::string_view text) {
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return error(Code::invalid, "password contains a control character");
    }
  }
  if (text.empty()) return error(Code::invalid, "empty password");
  return std::string(text);
}

ScramKeys derive_scram_keys(std::string_view password, uint32_t iterations) {
  return derive_scram_keys(password, random_bytes(16), iterations);
}

ScramKeys derive_scram_keys(std::string_view password, std::string_view salt, uint32_t iterations) {
  if (iterations < 1) iterations = 1;
  std::string salted(SHA256_DIGEST_LENGTH, '\0');
  PKCS5_PBKDF2_HMAC(
      reinterpret_cast<const char*>(bytes_of(password)), static_cast<int>(password.size()),
      bytes_of(salt), static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
      static_cast<int>(salted.size()), reinterpret_cast<unsigned char*>(salted.data()));
  std::string client_key = hmac_sha256(salted, "Client Key");
  ScramKeys k;
  k.salt.assign(salt);
  k.iterations = iterations;
  k.stored_key = sha256(client_key);
  k.server_key = hmac_sha256(salted, "Server Key");
  wipe(client_key);
  wipe(salted);
  return k;
}

ScramServer::ScramServer(Lookup lookup) : lookup_(std::move(lookup)) {}

Status ScramServer::fail(Code code, std::string error_value) {
  state_ = State::failed;
  wipe(keys_.stored_key);
  wipe(keys_.server_key);
  return Status(code, std::move(error_value));
}

Result<std::string> ScramServer::step(std::string_view client_message) {
  if (client_message.size() > kMaxScramMessage) return fail(Code::invalid, "other-error");
  switch (state_) {
    case State::start:
      return client_first(client_message);
    case State::first_sent:
      return client_final(client_message);
    case State::done:
    case State::failed:
      break;
  }
  return fail(Code::invalid, "other-error");
}

Result<std::string> ScramServer::client_first(std::string_view message) {
  // gs2-header: cbind-flag "," [authzid] ","
  if (message.empty()) return fail(Code::invalid, "invalid-encoding");
  if (message[0] == 'p') return fail(Code::invalid, "channel-binding-not-supported");
  if ((message[0] != 'n' && message[0] != 'y') || message.size() < 2 || message[1] != ',') {
    return fail(Code::invalid, "invalid-encoding");
  }
  size_t second = message.find(',', 2);
  if (second == std::string_view::npos) return fail(Code::invalid, "invalid-encoding");
  std::string_view authzid_attr = message.substr(2, second - 2);
  std::string authzid;
  if (!authzid_attr.empty()) {
    std::string_view v;
    if (!attr(authzid_attr, 'a', v) || !decode_saslname(v, authzid)) {
      return fail(Code::invalid, "invalid-encoding");
    }
  }
  gs2_header_.assign(message.substr(0, second + 1));
  std::string_view bare = message.substr(second + 1);

  // client-first-message-bare: [reserved-mext ","] username "," nonce ["," extensions]
  auto attrs = split_attrs(bare);
  std::string_view v;
  if (!attrs.empty() && attr(attrs[0], 'm', v)) {
    return fail(Code::invalid, "extensions-not-supported");
  }
  if (attrs.size() < 2) return fail(Code::invalid, "invalid-encoding");
  std::string username;
  if (!attr(attrs[0], 'n', v) || !decode_saslname(v, username)) {
    return fail(Code::invalid, "invalid-username-encoding");
  }
  std::string_view client_nonce;
  if (!attr(attrs[1], 'r', client_nonce) || !valid_nonce(client_nonce)) {
    return fail(Code::invalid, "invalid-encoding");
  }
  // Acting for another identity is not offered.
  if (!authzid.empty() && authzid != username) return fail(Code::denied, "other-error");

  username_ = std::move(username);
  client_first_bare_.assign(bare);

  std::optional<ScramKeys> keys = lookup_ ? lookup_(username_) : std::nullopt;
  // An account without a usable verifier looks exactly like an unknown one.
  known_user_ = keys.has_value() && usable(*keys);
  keys_ = known_user_ ? std::move(*keys) : fake_scram_keys(username_);

  if (server_nonce_.empty()) server_nonce_ = base64_encode(random_bytes(18));
  nonce_.assign(client_nonce);
  nonce_ += server_nonce_;
  server_first_ =
      "r=" + nonce_ + ",s=" + base64_encode(keys_.salt) + ",i=" + std::to_string(keys_.iterations);
  state_ = State::first_sent;
  return server_first_;
}

Result<std::string> ScramServer::client_final(std::string_view message) {
  // client-final-message: channel-binding "," nonce ["," extensions] "," proof
  auto attrs = split_attrs(message);
  if (attrs.size() < 3) return fail(Code::invalid, "invalid-encoding");
  std::string_view cbind, nonce, proof_b64;
  if (!attr(attrs[0], 'c', cbind) || !attr(attrs[1], 'r', nonce) ||
      !attr(attrs.back(), 'p', proof_b64)) {
    return fail(Code::invalid, "invalid-encoding");
  }
  auto cbind_input = base64_decode(cbind);
  if (!cbind_input) return fail(Code::invalid, "invalid-encoding");
  auto proof = base64_decode(proof_b64);
  if (!proof || proof->size() != SHA256_DIGEST_LENGTH) {
    return fail(Code::invalid, "invalid-encoding");
  }
  // Without channel binding, the cbind input is the gs2 header as sent first.
  if (*cbind_input != gs2_header_) return fail(Code::denied, "channel-bindings-dont-match");
  if (nonce != nonce_) return fail(Code::denied, "other-error");

  // Everything before ",p=": the proof is the last attribute.
  std::string_view without_proof = message.substr(0, message.size() - attrs.back().size() - 1);
  std::string auth_message = client_first_bare_;
  auth_message += ',';
  auth_message += server_first_;
  auth_message += ',';
  auth_message += without_proof;

  std::string client_key = hmac_sha256(keys_.stored_key, auth_message);  // ClientSignature
  for (size_t i = 0; i < client_key.size(); ++i) client_key[i] ^= (*proof)[i];
  bool ok = constant_time_equal(sha256(client_key), keys_.stored_key);
  wipe(client_key);
  if (!ok || !known_user_) return fail(Code::denied, "invalid-proof");

  std::string server_final = "v=" + base64_encode(hmac_sha256(keys_.server_key, auth_message));
  state_ = State::done;
  wipe(keys_.stored_key);
  wipe(keys_.server_key);
  return server_final;
}

}  // namespace mail
