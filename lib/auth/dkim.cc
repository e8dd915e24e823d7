#include "auth/dkim.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "auth/dkim_internal.h"
#include "auth/tag_list.h"
#include "base/base64.h"

namespace mail::auth {

namespace {

using PkeyPtr = std::shared_ptr<EVP_PKEY>;

PkeyPtr wrap(EVP_PKEY* p) { return PkeyPtr(p, EVP_PKEY_free); }

struct MdCtx {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~MdCtx() { EVP_MD_CTX_free(ctx); }
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  out.reserve(1 + static_cast<size_t>(std::count(s.begin(), s.end(), sep)));  // h= lists: one allocation
  size_t pos = 0;
  while (true) {
    size_t e = s.find(sep, pos);
    out.push_back(trim(s.substr(pos, e == std::string_view::npos ? std::string_view::npos : e - pos)));
    if (e == std::string_view::npos) break;
    pos = e + 1;
  }
  return out;
}

// Fetched once: OpenSSL 3 looks an implicit EVP_sha256() up in its provider
// tables on every use.
const EVP_MD* sha256() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}
const EVP_MD* sha1() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  return md;
}

const EVP_MD* digest_of(DkimAlgorithm a) { return a == DkimAlgorithm::rsa_sha1 ? sha1() : sha256(); }

// One context per thread, reused: EVP_Digest would allocate and free a
// context and its provider state for every hash (two per signature).
// Writes the digest to `out` (EVP_MAX_MD_SIZE bytes of room); its length.
EVP_MD_CTX* md_ctx() {
  thread_local std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  return ctx.get();
}

size_t digest_into(const EVP_MD* md, std::string_view data, unsigned char* out) {
  EVP_MD_CTX* ctx = md_ctx();
  unsigned len = 0;
  if (!ctx || EVP_DigestInit_ex(ctx, md, nullptr) != 1 || EVP_DigestUpdate(ctx, data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx, out, &len) != 1) {
    EVP_Digest(data.data(), data.size(), out, &len, md, nullptr);  // not expected; the slow way then
  }
  return len;
}

// The hash of a body canonicalized with `canon` (its first `limit` bytes:
// l=), hashed piece by piece as it is made, never copied whole. Writes the
// digest to `out`; returns its length (0 when OpenSSL fails) and the whole
// canonical body's size in `size`.
size_t body_digest(const EVP_MD* md, std::string_view body, Canon canon, uint64_t limit, uint64_t& size,
                   unsigned char* out) {
  struct State {
    EVP_MD_CTX* ctx;
    uint64_t limit;
    uint64_t size = 0;
    bool ok = true;
  } st{md_ctx(), limit};
  if (!st.ctx || EVP_DigestInit_ex(st.ctx, md, nullptr) != 1) return 0;
  // One reference captured: std::function keeps it without allocating.
  canon_body_pieces(body, canon, [&st](std::string_view piece) {
    if (st.size < st.limit) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(piece.size(), st.limit - st.size));
      st.ok = st.ok && EVP_DigestUpdate(st.ctx, piece.data(), n) == 1;
    }
    st.size += piece.size();
  });
  size = st.size;
  unsigned len = 0;
  if (!st.ok || EVP_DigestFinal_ex(st.ctx, out, &len) != 1) return 0;
  return len;
}

std::string digest(const EVP_MD* md, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t len = digest_into(md, data, out);
  return std::string(reinterpret_cast<char*>(out), len);
}

// The signature input per RFC 6376 / RFC 8463: RSA signs the data with its
// hash; Ed25519 signs the SHA-256 of the data.
// Ed25519 signing and verification contexts, set up once per key and thread:
// a one-shot EVP_DigestSign/EVP_DigestVerify may be repeated on a context,
// and setting one up costs OpenSSL 3 a good part of an Ed25519 signature.
// Each context holds a reference to its key, so a cached key's address is
// never reused for another key while it is cached.
EVP_MD_CTX* ed25519_ctx(EVP_PKEY* pkey, bool sign) {
  struct Entry {
    EVP_PKEY* key;
    bool sign;
    std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx;
  };
  thread_local std::vector<Entry> cache;
  for (auto& e : cache) {
    if (e.key == pkey && e.sign == sign) return e.ctx.get();
  }
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx) return nullptr;
  int ok = sign ? EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey)
                : EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey);
  if (ok != 1) return nullptr;
  if (cache.size() >= 32) cache.clear();
  cache.push_back({pkey, sign, std::move(ctx)});
  return cache.back().ctx.get();
}

Result<std::string> sign_data(EVP_PKEY* pkey, DkimAlgorithm alg, std::string_view data) {
  auto in = [](std::string_view d) { return reinterpret_cast<const unsigned char*>(d.data()); };
  if (alg == DkimAlgorithm::ed25519_sha256) {
    std::string prehash = digest(sha256(), data);
    EVP_MD_CTX* ctx = ed25519_ctx(pkey, true);
    std::string sig(64, '\0');
    size_t len = sig.size();
    if (!ctx || EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len, in(prehash),
                               prehash.size()) != 1) {
      return error(Code::internal, "cannot sign");
    }
    sig.resize(len);
    return sig;
  }
  MdCtx md;
  if (EVP_DigestSignInit(md.ctx, nullptr, digest_of(alg), nullptr, pkey) != 1) {
    return error(Code::internal, "cannot start signing");
  }
  size_t len = 0;
  if (EVP_DigestSign(md.ctx, nullptr, &len, in(data), data.size()) != 1) return error(Code::internal, "cannot sign");
  std::string sig(len, '\0');
  if (EVP_DigestSign(md.ctx, reinterpret_cast<unsigned char*>(sig.data()), &len, in(data), data.size()) != 1) {
    return error(Code::internal, "cannot sign");
  }
  sig.resize(len);
  return sig;
}

// An RSA verification context, initialised once per key and thread and reused:
// setting one up costs OpenSSL 3 about as much as the verification itself.
// Each context holds a reference to its key, so a cached key's address is
// never reused for another key while it is cached.
EVP_PKEY_CTX* rsa_verify_ctx(EVP_PKEY* pkey) {
  struct Entry {
    EVP_PKEY* key;
    std::unique_ptr<EVP_PKEY_CTX, void (*)(EVP_PKEY_CTX*)> ctx;
  };
  thread_local std::vector<Entry> cache;
  for (auto& e : cache) {
    if (e.key == pkey) return e.ctx.get();
  }
  std::unique_ptr<EVP_PKEY_CTX, void (*)(EVP_PKEY_CTX*)> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr),
                                                            EVP_PKEY_CTX_free);
  if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1) {
    return nullptr;
  }
  if (cache.size() >= 32) cache.clear();
  cache.push_back({pkey, std::move(ctx)});
  return cache.back().ctx.get();
}

// The DER DigestInfo of RFC 8017 9.2 (note 1) before the hash: PKCS#1 v1.5
// verification of that block is what RSA_verify does with a digest set,
// without its encoding and allocation per call.
constexpr unsigned char kSha256Info[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                         0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
constexpr unsigned char kSha1Info[] = {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
                                       0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14};

bool verify_data(EVP_PKEY* pkey, DkimAlgorithm alg, std::string_view data, std::string_view sig) {
  if (alg != DkimAlgorithm::ed25519_sha256) {
    EVP_PKEY_CTX* ctx = rsa_verify_ctx(pkey);
    // RSA_verify's length check, which the raw verification leaves out.
    if (!ctx || sig.size() != static_cast<size_t>(EVP_PKEY_get_size(pkey))) return false;
    std::string_view info = alg == DkimAlgorithm::rsa_sha1
                                ? std::string_view(reinterpret_cast<const char*>(kSha1Info), sizeof kSha1Info)
                                : std::string_view(reinterpret_cast<const char*>(kSha256Info), sizeof kSha256Info);
    unsigned char block[sizeof kSha256Info + EVP_MAX_MD_SIZE];
    std::memcpy(block, info.data(), info.size());
    size_t len = info.size() + digest_into(digest_of(alg), data, block + info.size());
    return EVP_PKEY_verify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(), block, len) == 1;
  }
  std::string prehash = digest(sha256(), data);
  EVP_MD_CTX* ctx = ed25519_ctx(pkey, false);
  return ctx && EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                                 reinterpret_cast<const unsigned char*>(prehash.data()), prehash.size()) == 1;
}

const char* const kDefaultHeaders[] = {
    "from", "reply-to", "subject", "date", "to", "cc", "resent-date", "resent-from", "resent-to",
    "resent-cc", "in-reply-to", "references", "list-id", "list-help", "list-unsubscribe",
    "list-unsubscribe-post", "list-subscribe", "list-post", "list-owner", "list-archive", "message-id",
    "mime-version", "content-type", "content-transfer-encoding", "content-disposition"};

// Appends "h=" names with folding: the list may get long.
void fold_append(std::string& out, size_t& line_len, std::string_view piece, bool space_before) {
  if (line_len + piece.size() + (space_before ? 1 : 0) > 76) {
    out.append("\r\n\t");
    line_len = 1;
  } else if (space_before) {
    out.push_back(' ');
    ++line_len;
  }
  out.append(piece);
  line_len += piece.size();
}

int64_t clock_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The header fields named in `names`, each instance picked bottom-up
// (RFC 6376 5.4.2), canonicalized and appended to `out`.
void append_signed_headers(const MailMessage& msg, const std::vector<std::string>& names, Canon canon,
                           std::string& out) {
  const auto& headers = msg.headers();
  for (size_t n = 0; n < names.size(); ++n) {
    // The k-th listing of a name takes its k-th instance from the bottom
    // (counted, not kept in a map: h= lists are short).
    size_t skip = 0;
    for (size_t j = 0; j < n; ++j) skip += header_name_equal(names[j], names[n]);
    size_t seen = 0;
    for (size_t i = headers.size(); i-- > 0;) {
      if (!header_name_equal(headers[i].name, names[n])) continue;
      if (seen++ == skip) {
        canon_header(headers[i], canon, out);
        break;
      }
    }
  }
}

// Appends the signature header itself (b= blanked), canonicalized, without its CRLF.
void append_signature_field(const HeaderField& field, Canon canon, std::string& out) {
  canon_header(field, canon, out);
  out.resize(out.size() - 2);
}

}  // namespace

std::string_view dkim_algorithm_name(DkimAlgorithm a) {
  switch (a) {
    case DkimAlgorithm::rsa_sha256: return "rsa-sha256";
    case DkimAlgorithm::ed25519_sha256: return "ed25519-sha256";
    case DkimAlgorithm::rsa_sha1: return "rsa-sha1";
  }
  return "?";
}

std::string_view dkim_status_name(DkimStatus s) {
  switch (s) {
    case DkimStatus::pass: return "pass";
    case DkimStatus::fail: return "fail";
    case DkimStatus::neutral: return "neutral";
    case DkimStatus::policy: return "policy";
    case DkimStatus::temperror: return "temperror";
    case DkimStatus::permerror: return "permerror";
  }
  return "?";
}

// ---- keys ---------------------------------------------------------------------

Result<DkimKey> DkimKey::parse(std::string_view text) {
  DkimKey key;
  if (text.find("-----BEGIN") != std::string_view::npos) {
    BIO* bio = BIO_new_mem_buf(text.data(), static_cast<int>(text.size()));
    EVP_PKEY* p = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (!p) return error(Code::invalid, "not a PEM private key");
    key.pkey_ = wrap(p);
  } else {
    auto raw = base64_decode(strip_whitespace(text));
    if (!raw || raw->size() != 32) return error(Code::invalid, "not a PEM key nor a base64 Ed25519 seed");
    EVP_PKEY* p = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr,
                                               reinterpret_cast<const unsigned char*>(raw->data()), 32);
    if (!p) return error(Code::invalid, "bad Ed25519 key");
    key.pkey_ = wrap(p);
  }
  switch (EVP_PKEY_base_id(key.pkey_.get())) {
    case EVP_PKEY_RSA:
      key.algorithm_ = DkimAlgorithm::rsa_sha256;
      key.bits_ = EVP_PKEY_get_bits(key.pkey_.get());
      if (key.bits_ < 1024) {
        return error(Code::invalid, "RSA key of " + std::to_string(key.bits_) + " bits; at least 1024 needed");
      }
      break;
    case EVP_PKEY_ED25519:
      key.algorithm_ = DkimAlgorithm::ed25519_sha256;
      key.bits_ = 256;
      break;
    default: return error(Code::invalid, "the key is neither RSA nor Ed25519");
  }
  return key;
}

Result<DkimKey> DkimKey::load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return error(Code::io, "cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto key = parse(ss.str());
  if (!key) return error(key.code(), path + ": " + key.status().message());
  return key;
}

Result<DkimKey> DkimKey::generate(DkimAlgorithm algorithm, int rsa_bits) {
  EVP_PKEY* p = nullptr;
  if (algorithm == DkimAlgorithm::ed25519_sha256) {
    p = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  } else {
    p = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(rsa_bits));
  }
  if (!p) return error(Code::internal, "key generation failed");
  DkimKey key;
  key.pkey_ = wrap(p);
  key.algorithm_ = algorithm == DkimAlgorithm::ed25519_sha256 ? algorithm : DkimAlgorithm::rsa_sha256;
  key.bits_ = EVP_PKEY_get_bits(p);
  return key;
}

std::string DkimKey::dns_record() const {
  std::string pub;
  if (algorithm_ == DkimAlgorithm::ed25519_sha256) {
    size_t len = 32;
    pub.resize(len);
    EVP_PKEY_get_raw_public_key(pkey_.get(), reinterpret_cast<unsigned char*>(pub.data()), &len);
    pub.resize(len);
    return "v=DKIM1; k=ed25519; p=" + base64_encode(pub);
  }
  int len = i2d_PUBKEY(pkey_.get(), nullptr);
  pub.resize(static_cast<size_t>(std::max(len, 0)));
  auto* p = reinterpret_cast<unsigned char*>(pub.data());
  i2d_PUBKEY(pkey_.get(), &p);
  return "v=DKIM1; k=rsa; p=" + base64_encode(pub);
}

std::string DkimKey::private_pem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, pkey_.get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(len));
  BIO_free(bio);
  return out;
}

// ---- signing ------------------------------------------------------------------

Result<std::string> dkim_sign(std::string_view message, const DkimKey& key, const DkimSignOptions& options) {
  MailMessage msg(message);
  return dkim_sign(msg, key, options);
}

Result<std::string> dkim_sign(const MailMessage& msg, const DkimKey& key, const DkimSignOptions& options) {
  if (!key.pkey()) return error(Code::invalid, "no key");
  if (options.domain.empty() || options.selector.empty()) return error(Code::invalid, "domain and selector needed");
  std::vector<std::string> names;
  size_t from_count = 0;
  for (const auto& h : msg.headers()) {
    if (header_name_equal(h.name, "from")) ++from_count;
  }
  if (from_count == 0) return error(Code::invalid, "the message has no From header");
  if (options.headers.empty()) {
    for (const char* want : kDefaultHeaders) {
      for (const auto& h : msg.headers()) {
        if (header_name_equal(h.name, want)) names.emplace_back(want);
      }
    }
  } else {
    bool has_from = false;
    for (const auto& n : options.headers) {
      names.push_back(lower(trim(n)));
      has_from = has_from || names.back() == "from";
    }
    if (!has_from) names.insert(names.begin(), "from");
  }
  if (options.oversign_from) {
    size_t listed = static_cast<size_t>(std::count(names.begin(), names.end(), "from"));
    for (size_t i = listed; i <= from_count; ++i) names.emplace_back("from");
  }

  DkimAlgorithm alg = key.algorithm();
  if (options.algorithm) {
    if ((*options.algorithm == DkimAlgorithm::ed25519_sha256) != (alg == DkimAlgorithm::ed25519_sha256)) {
      return error(Code::invalid, "the algorithm does not fit the key");
    }
    alg = *options.algorithm;
  }
  uint64_t body_size = 0;
  unsigned char body_hash[EVP_MAX_MD_SIZE];
  size_t body_hash_len = body_digest(digest_of(alg), msg.body(), options.body_canon,
                                     options.body_length > 0 ? options.body_length : UINT64_MAX, body_size, body_hash);
  if (options.body_length > body_size) return error(Code::invalid, "l= is longer than the body");
  if (body_hash_len == 0) return error(Code::internal, "cannot hash the body");
  std::string bh = base64_encode(std::string_view(reinterpret_cast<const char*>(body_hash), body_hash_len));

  auto canon_name = [](Canon c) { return c == Canon::simple ? "simple" : "relaxed"; };
  std::string field = "DKIM-Signature: v=1; a=";
  field.append(dkim_algorithm_name(alg));
  field.append("; c=").append(canon_name(options.header_canon)).append("/").append(canon_name(options.body_canon));
  field.append(";");
  size_t line_len = field.size();
  fold_append(field, line_len, "d=" + options.domain + ";", true);
  fold_append(field, line_len, "s=" + options.selector + ";", true);
  if (!options.identity.empty()) fold_append(field, line_len, "i=" + options.identity + ";", true);
  int64_t t = options.timestamp < 0 ? clock_now() : options.timestamp;
  if (t > 0) fold_append(field, line_len, "t=" + std::to_string(t) + ";", true);
  if (options.body_length > 0) fold_append(field, line_len, "l=" + std::to_string(options.body_length) + ";", true);
  if (options.expire_after > 0) {
    fold_append(field, line_len, "x=" + std::to_string((t > 0 ? t : clock_now()) + options.expire_after) + ";", true);
  }
  for (size_t i = 0; i < names.size(); ++i) {
    std::string piece = (i == 0 ? "h=" : "") + names[i] + (i + 1 == names.size() ? ";" : ":");
    fold_append(field, line_len, piece, i == 0);
  }
  fold_append(field, line_len, "bh=" + bh + ";", true);
  fold_append(field, line_len, "b=", true);

  std::string data;
  data.reserve(1024);
  append_signed_headers(msg, names, options.header_canon, data);
  HeaderField self{"DKIM-Signature", field};
  append_signature_field(self, options.header_canon, data);
  MAIL_ASSIGN_OR_RETURN(std::string sig, sign_data(key.pkey(), alg, data));

  std::string b = base64_encode(sig);
  size_t pos = 0;
  size_t room = line_len < 76 ? 76 - line_len : 0;
  if (room < 8) {
    field.append("\r\n\t");
    room = 75;
  }
  while (pos < b.size()) {
    field.append(b, pos, room);
    pos += room;
    if (pos < b.size()) field.append("\r\n\t");
    room = 75;
  }
  field.append("\r\n");
  return field;
}

// ---- key records --------------------------------------------------------------

Result<DkimKeyRecord> parse_dkim_key_record(std::string_view text) {
  auto tags = parse_tag_list(text);
  if (!tags) return error(Code::invalid, "malformed key record: " + tags.status().message());
  DkimKeyRecord rec;
  if (const Tag* v = tags->find("v")) {
    if (v->value != "DKIM1" || &tags->tags.front() != v) return error(Code::invalid, "key record: bad v=");
  }
  if (const Tag* k = tags->find("k")) rec.key_type = lower(k->value);
  if (const Tag* h = tags->find("h")) rec.hashes = split(lower(h->value), ':');
  if (const Tag* s = tags->find("s")) rec.services = split(lower(s->value), ':');
  if (const Tag* f = tags->find("t")) rec.flags = split(lower(f->value), ':');
  const Tag* p = tags->find("p");
  if (!p) return error(Code::invalid, "key record without p=");
  std::string b64 = strip_whitespace(p->value);
  if (!b64.empty()) {
    auto raw = base64_decode_public(b64);
    if (!raw || raw->empty()) return error(Code::invalid, "key record: p= is not base64");
    rec.public_key = std::move(*raw);
  }
  return rec;
}

// ---- verification -------------------------------------------------------------

namespace {

bool parse_uint(std::string_view s, uint64_t& out, size_t max_digits = 18) {
  if (s.empty() || s.size() > max_digits) return false;
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + static_cast<uint64_t>(c - '0');
  }
  return true;
}

Result<Canon> parse_canon(std::string_view s) {
  if (s == "simple") return Canon::simple;
  if (s == "relaxed") return Canon::relaxed;
  return error(Code::invalid, "unknown canonicalization " + std::string(s));
}

bool is_subdomain(std::string_view child, std::string_view parent) {
  std::string c = lower(child), p = lower(parent);
  if (c == p) return true;
  return c.size() > p.size() && c.compare(c.size() - p.size(), p.size(), p) == 0 &&
         c[c.size() - p.size() - 1] == '.';
}

PkeyPtr decode_public_key(const DkimKeyRecord& rec, int& bits);

// A key record as verification needs it: parsed, its key decoded.
struct KeyEntry {
  std::string error;  // why the record is unusable (a permerror), or empty
  DkimKeyRecord rec;
  PkeyPtr pkey;
  int bits = 0;
};

// Parsing a record and decoding its key cost OpenSSL 3 more than verifying an
// RSA signature, and the same few keys sign most mail: entries are kept by
// the record's text, up to a bound.
std::shared_ptr<const KeyEntry> key_entry(const std::string& txt) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const KeyEntry>> cache;
  {
    std::lock_guard lock(mu);
    auto it = cache.find(txt);
    if (it != cache.end()) return it->second;
  }
  auto e = std::make_shared<KeyEntry>();
  auto rec = parse_dkim_key_record(txt);
  if (!rec) {
    e->error = rec.status().message();
  } else {
    e->rec = std::move(*rec);
    if (e->rec.public_key.empty()) {
      e->error = "key revoked";
    } else {
      e->pkey = decode_public_key(e->rec, e->bits);
      if (!e->pkey) e->error = "public key does not parse";
    }
  }
  std::lock_guard lock(mu);
  if (cache.size() >= 1024) cache.clear();
  cache[txt] = e;
  return e;
}

PkeyPtr decode_public_key(const DkimKeyRecord& rec, int& bits) {
  const auto* p = reinterpret_cast<const unsigned char*>(rec.public_key.data());
  long len = static_cast<long>(rec.public_key.size());
  EVP_PKEY* key = nullptr;
  if (rec.key_type == "ed25519") {
    if (rec.public_key.size() != 32) return nullptr;
    key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, p, 32);
    bits = 256;
  } else {
    const unsigned char* q = p;
    key = d2i_PUBKEY(nullptr, &q, len);
    if (!key || q != p + len || EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
      EVP_PKEY_free(key);
      q = p;  // some publish the bare RSAPublicKey (PKCS#1)
      key = d2i_PublicKey(EVP_PKEY_RSA, nullptr, &q, len);
      if (key && q != p + len) {
        EVP_PKEY_free(key);
        key = nullptr;
      }
    }
    if (key) bits = EVP_PKEY_get_bits(key);
  }
  return key ? wrap(key) : nullptr;
}

// The key of r's selector and domain, checked against the signature's
// algorithm and identity; nullptr, with r's status and reason set, when there
// is none to use.
std::shared_ptr<const KeyEntry> usable_key(Resolver& resolver, DkimAlgorithm alg, DkimResult& r) {
  auto no_key = [&r](std::string why) -> std::shared_ptr<const KeyEntry> {
    r.status = DkimStatus::permerror;
    r.reason = std::move(why);
    return nullptr;
  };
  std::string key_name = r.selector + "._domainkey." + r.domain;
  auto txt = resolver.lookup(key_name, DnsType::txt);
  if (!txt) {
    if (txt.code() == Code::not_found) return no_key("no key for " + key_name);
    r.status = DkimStatus::temperror;
    r.reason = "key lookup: " + txt.status().message();
    return nullptr;
  }
  if (txt->empty()) return no_key("no key for " + key_name);
  if (txt->size() > 1) return no_key("several key records for " + key_name);
  auto entry = key_entry(txt->front());
  if (!entry->error.empty()) return no_key(entry->error);
  const DkimKeyRecord* rec = &entry->rec;
  std::string want_type = alg == DkimAlgorithm::ed25519_sha256 ? "ed25519" : "rsa";
  if (rec->key_type != want_type) return no_key("key type " + rec->key_type + " does not fit " + r.algorithm);
  if (!rec->hashes.empty()) {
    std::string want_hash = alg == DkimAlgorithm::rsa_sha1 ? "sha1" : "sha256";
    if (std::find(rec->hashes.begin(), rec->hashes.end(), want_hash) == rec->hashes.end()) {
      return no_key("key does not allow " + want_hash);
    }
  }
  if (!rec->services.empty() && std::find(rec->services.begin(), rec->services.end(), "*") == rec->services.end() &&
      std::find(rec->services.begin(), rec->services.end(), "email") == rec->services.end()) {
    return no_key("key is not for email");
  }
  for (const auto& f : rec->flags) {
    if (f == "y") r.testing = true;
    if (f == "s") {
      size_t at = r.identity.rfind('@');
      if (lower(r.identity.substr(at + 1)) != lower(r.domain)) return no_key("key has t=s but i= is a subdomain");
    }
  }
  r.key_bits = entry->bits;
  if (want_type == "rsa" && r.key_bits < 1024) return no_key("RSA key too small: " + std::to_string(r.key_bits));
  return entry;

}

}  // namespace

namespace internal {

DkimResult verify_signature_field(const MailMessage& msg, const HeaderField& field, Resolver& resolver,
                                  const DkimVerifyOptions& options, std::string& scratch, bool arc) {
  DkimResult r;
  auto perm = [&r](std::string why) {
    r.status = DkimStatus::permerror;
    r.reason = std::move(why);
    return r;
  };
  size_t colon = field.raw.find(':');
  std::string_view value = field.raw.substr(colon + 1);
  if (value.size() >= 2 && value.substr(value.size() - 2) == "\r\n") value.remove_suffix(2);
  auto parsed = parse_tag_list(value);
  if (!parsed) return perm("malformed signature: " + parsed.status().message());
  const TagList& tags = *parsed;
  auto get = [&tags](std::string_view n) -> const Tag* { return tags.find(n); };
  if (const Tag* d = get("d")) r.domain = std::string(d->value);
  if (const Tag* s = get("s")) r.selector = std::string(s->value);
  if (const Tag* a = get("a")) r.algorithm = std::string(a->value);
  const Tag* v = get("v");
  if (!arc && (!v || v->value != "1")) return perm("v= missing or not 1");
  for (const char* required : {"a", "b", "bh", "d", "h", "s"}) {
    if (!get(required)) return perm(std::string(required) + "= missing");
  }
  if (r.domain.empty() || r.selector.empty()) return perm("empty d= or s=");
  DkimAlgorithm alg;
  if (r.algorithm == "rsa-sha256") alg = DkimAlgorithm::rsa_sha256;
  else if (r.algorithm == "ed25519-sha256") alg = DkimAlgorithm::ed25519_sha256;
  else if (r.algorithm == "rsa-sha1") alg = DkimAlgorithm::rsa_sha1;
  else return perm("unknown algorithm " + r.algorithm);

  // Without c=, DKIM means simple/simple; ARC implementations (and the ARC
  // test suite) read relaxed/relaxed.
  Canon hc = arc ? Canon::relaxed : Canon::simple, bc = hc;
  if (const Tag* c = get("c")) {
    std::string_view cv = c->value;
    size_t slash = cv.find('/');
    auto h = parse_canon(cv.substr(0, slash));
    if (!h) return perm(h.status().message());
    hc = *h;
    if (slash != std::string_view::npos) {
      auto b = parse_canon(cv.substr(slash + 1));
      if (!b) return perm(b.status().message());
      bc = *b;
    }
  }
  if (const Tag* q = get("q")) {
    bool dns = false;
    for (const auto& m : split(q->value, ':')) dns = dns || lower(m) == "dns/txt";
    if (!dns) return perm("no supported query method in q=");
  }
  r.identity = "@" + r.domain;
  if (const Tag* i = arc ? nullptr : get("i")) {
    r.identity = strip_whitespace(i->value);
    size_t at = r.identity.rfind('@');
    if (at == std::string::npos) return perm("i= without @");
    if (!is_subdomain(std::string_view(r.identity).substr(at + 1), r.domain)) {
      return perm("i= is not within d=");
    }
  }
  std::vector<std::string> names = split(get("h")->value, ':');
  bool signs_from = false;
  for (auto& n : names) {
    if (n.find_first_of(" \t\r\n") != std::string::npos) n = strip_whitespace(n);  // FWS inside a name: seldom
    signs_from = signs_from || header_name_equal(n, "from");
  }
  if (arc) {
    for (const auto& n : names) {
      if (header_name_equal(n, "ARC-Seal")) return perm("an ARC-Message-Signature may not sign ARC-Seal");
    }
  } else if (!signs_from) {
    return perm("From is not signed");
  }
  uint64_t t = 0, x = 0, l = 0;
  bool has_t = false, has_x = false, has_l = false;
  if (const Tag* tt = get("t")) {
    if (!parse_uint(tt->value, t)) return perm("bad t=");
    has_t = true;
  }
  if (const Tag* tx = get("x")) {
    if (!parse_uint(tx->value, x)) return perm("bad x=");
    has_x = true;
  }
  if (const Tag* tl = get("l")) {
    if (!parse_uint(tl->value, l)) return perm("bad l=");
    has_l = true;
  }
  if (has_t && has_x && x < t) return perm("x= is before t=");
  int64_t now = options.now < 0 ? clock_now() : options.now;
  if (has_x && static_cast<int64_t>(x) < now) return perm("signature expired");

  auto bh = base64_decode_public(strip_whitespace(get("bh")->value));
  if (!bh) return perm("bh= is not base64");
  auto b = base64_decode_public(strip_whitespace(get("b")->value));
  if (!b || b->empty()) return perm("b= is not base64");

  // The key.
  auto entry = usable_key(resolver, alg, r);
  if (!entry) return r;
  const PkeyPtr& pkey = entry->pkey;

  // The body.
  uint64_t body_size = 0;
  unsigned char body_hash[EVP_MAX_MD_SIZE];
  size_t body_hash_len =
      body_digest(digest_of(alg), msg.body(), bc, has_l ? l : UINT64_MAX, body_size, body_hash);
  if (has_l && l > body_size) return perm("l= is longer than the body");
  bool partial = has_l && l < body_size;
  if (body_hash_len == 0 ||
      std::string_view(reinterpret_cast<const char*>(body_hash), body_hash_len) != *bh) {
    r.status = DkimStatus::fail;
    r.reason = "body hash mismatch";
    return r;
  }

  // The headers, and this field with b= blanked.
  scratch.clear();
  append_signed_headers(msg, names, hc, scratch);
  const Tag* bt = get("b");
  thread_local std::string blanked;  // its room kept from one message to the next
  blanked.assign(field.raw.substr(0, colon + 1));
  blanked.append(value.substr(0, bt->value_start));
  blanked.append(value.substr(bt->end));
  blanked.append("\r\n");
  append_signature_field(HeaderField{field.name, blanked}, hc, scratch);
  if (!verify_data(pkey.get(), alg, scratch, *b)) {
    r.status = DkimStatus::fail;
    r.reason = "signature did not verify";
    return r;
  }
  if (alg == DkimAlgorithm::rsa_sha1) {
    r.status = DkimStatus::policy;
    r.reason = "rsa-sha1 is not acceptable (RFC 8301)";
    return r;
  }
  if (partial && !options.allow_partial_body) {
    r.status = DkimStatus::policy;
    r.reason = "l= leaves part of the body unsigned";
    return r;
  }
  r.status = DkimStatus::pass;
  return r;
}


bool verify_with_key(Resolver& resolver, DkimAlgorithm alg, DkimResult& r, std::string_view data,
                     std::string_view sig) {
  auto entry = usable_key(resolver, alg, r);
  if (!entry) return false;
  if (!verify_data(entry->pkey.get(), alg, data, sig)) {
    r.status = DkimStatus::fail;
    r.reason = "signature did not verify";
    return false;
  }
  r.status = DkimStatus::pass;
  return true;
}

Result<std::string> sign_header_data(const DkimKey& key, DkimAlgorithm alg, std::string_view data) {
  return sign_data(key.pkey(), alg, data);
}

std::string body_hash_for(DkimAlgorithm alg, std::string_view body, Canon canon) {
  uint64_t size = 0;
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t len = body_digest(digest_of(alg), body, canon, UINT64_MAX, size, out);
  return std::string(reinterpret_cast<char*>(out), len);
}

void append_signed_headers(const MailMessage& msg, const std::vector<std::string>& names, Canon canon,
                           std::string& out) {
  mail::auth::append_signed_headers(msg, names, canon, out);
}

}  // namespace internal

std::vector<DkimResult> dkim_verify(std::string_view message, Resolver& resolver, const DkimVerifyOptions& options) {
  MailMessage msg(message);
  return dkim_verify(msg, resolver, options);
}

std::vector<DkimResult> dkim_verify(const MailMessage& msg, Resolver& resolver, const DkimVerifyOptions& options) {
  std::vector<DkimResult> out;
  thread_local std::string scratch;  // its room kept from one message to the next
  for (const auto& h : msg.headers()) {
    if (!header_name_equal(h.name, "DKIM-Signature")) continue;
    if (out.size() >= options.max_signatures) break;
    out.push_back(internal::verify_signature_field(msg, h, resolver, options, scratch, false));
  }
  return out;
}

}  // namespace mail::auth
