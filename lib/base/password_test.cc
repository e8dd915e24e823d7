#include "base/password.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <sodium.h>

#include <map>

#include "base/base64.h"

namespace mail {
namespace {

// ---- base64 -----------------------------------------------------------------

TEST(PasswordBase64, RoundTripsAndRejectsNonCanonical) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode(std::string("\0\xff", 2)), "AP8=");
  EXPECT_EQ(*base64_decode("Zm9vYg=="), "foob");
  EXPECT_EQ(*base64_decode(""), "");
  for (const char* bad :
       {"Zg", "Zg=", "Zh==", "Zm9v YQ==", "Zm9v\n", "====", "Z===", "Zm9-",
        "Zm9vYg==Zg==", "\xa7\xcd\xcd\xa5NY7soEsUEjb6gQ==", "Zm9v\xff\xff\xff\xff"}) {
    auto r = base64_decode(bad);
    EXPECT_EQ(r.code(), Code::invalid) << bad;
  }
  EXPECT_EQ(base64_decode(std::string("Zm\0v", 4)).code(), Code::invalid);
}

// ---- argon2id ---------------------------------------------------------------

TEST(PasswordHash, RoundTrip) {
  auto h = hash_password("correct horse battery staple");
  ASSERT_TRUE(h) << h.status().to_string();
  EXPECT_EQ(h->rfind("$argon2id$", 0), 0u) << *h;
  EXPECT_TRUE(verify_password(*h, "correct horse battery staple"));
  EXPECT_FALSE(verify_password(*h, "correct horse battery stapl"));
  EXPECT_FALSE(verify_password(*h, ""));
  EXPECT_FALSE(password_needs_rehash(*h));
  // Two hashes of one password differ (random salt) and both verify.
  auto h2 = hash_password("correct horse battery staple");
  ASSERT_TRUE(h2);
  EXPECT_NE(*h, *h2);
  EXPECT_TRUE(verify_password(*h2, "correct horse battery staple"));
}

TEST(PasswordHash, Utf8AndEmbeddedNul) {
  std::string pw("p\xc3\xa4ss\0word", 9);
  auto h = hash_password(pw);
  ASSERT_TRUE(h);
  EXPECT_TRUE(verify_password(*h, pw));
  EXPECT_FALSE(verify_password(*h, "p\xc3\xa4ss"));
}

TEST(PasswordHash, MalformedInputs) {
  EXPECT_EQ(hash_password("").code(), Code::invalid);
  EXPECT_FALSE(verify_password("", "x"));
  EXPECT_FALSE(verify_password("not a hash", "x"));
  EXPECT_FALSE(verify_password("$argon2id$v=19$m=65536,t=2,p=1$", "x"));
  EXPECT_FALSE(verify_password(std::string(500, '$'), "x"));
  EXPECT_FALSE(verify_password(std::string("$argon2id\0$", 11), "x"));
  EXPECT_TRUE(password_needs_rehash(""));
  EXPECT_TRUE(password_needs_rehash("garbage"));
  // Not argon2id at all (argon2i): rehash.
  EXPECT_TRUE(password_needs_rehash(
      "$argon2i$v=19$m=32768,t=4,p=1$c29tZXNhbHRzb21lc2FsdA$"
      "2LzVq1b1mJ0ziHJdPBqCzmj2HsylJaGdBv1PMy+iYqQ"));
}

TEST(PasswordHash, WeakerLimitsNeedRehash) {
  ASSERT_GE(sodium_init(), 0);
  char weak[crypto_pwhash_STRBYTES];
  ASSERT_EQ(crypto_pwhash_str_alg(weak, "pw", 2, crypto_pwhash_OPSLIMIT_MIN,
                                  crypto_pwhash_MEMLIMIT_MIN, crypto_pwhash_ALG_ARGON2ID13),
            0);
  EXPECT_TRUE(verify_password(weak, "pw"));
  EXPECT_TRUE(password_needs_rehash(weak));
}

TEST(PasswordCompare, ConstantTimeEqual) {
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
}

// ---- SCRAM-SHA-256 ----------------------------------------------------------

std::string b64d(std::string_view s) { return *base64_decode(s); }

// RFC 7677 section 3.
constexpr const char* kSalt = "W22ZaJ0SNY7soEsUEjb6gQ==";
constexpr const char* kServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr const char* kClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr const char* kServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr const char* kClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr const char* kServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

ScramServer::Lookup rfc_lookup() {
  return [](std::string_view user) -> std::optional<ScramKeys> {
    if (user != "user") return std::nullopt;
    return derive_scram_keys("pencil", b64d(kSalt), 4096);
  };
}

TEST(ScramKeys, DerivationIsDeterministicForASalt) {
  ScramKeys a = derive_scram_keys("pencil", b64d(kSalt), 4096);
  ScramKeys b = derive_scram_keys("pencil", b64d(kSalt), 4096);
  EXPECT_EQ(a.salt, b64d(kSalt));
  EXPECT_EQ(a.iterations, 4096u);
  EXPECT_EQ(a.stored_key.size(), 32u);
  EXPECT_EQ(a.server_key.size(), 32u);
  EXPECT_EQ(a.stored_key, b.stored_key);
  EXPECT_EQ(a.server_key, b.server_key);
  ScramKeys c = derive_scram_keys("pencil", 1000);
  EXPECT_EQ(c.salt.size(), 16u);
  EXPECT_EQ(c.iterations, 1000u);
  EXPECT_NE(c.salt, derive_scram_keys("pencil", 1000).salt);
}

TEST(ScramServer, Rfc7677Example) {
  ScramServer server(rfc_lookup());
  server.set_nonce_for_testing(kServerNonce);
  auto first = server.step(kClientFirst);
  ASSERT_TRUE(first) << first.status().to_string();
  EXPECT_EQ(*first, kServerFirst);
  EXPECT_EQ(server.username(), "user");
  EXPECT_FALSE(server.done());
  auto final = server.step(kClientFinal);
  ASSERT_TRUE(final) << final.status().to_string();
  EXPECT_EQ(*final, kServerFinal);
  EXPECT_TRUE(server.done());
  // The exchange is over.
  EXPECT_EQ(server.step("").code(), Code::invalid);
}

TEST(ScramServer, WrongProofIsDenied) {
  ScramServer server(rfc_lookup());
  server.set_nonce_for_testing(kServerNonce);
  ASSERT_TRUE(server.step(kClientFirst));
  std::string bad = kClientFinal;
  bad[bad.size() - 3] = bad[bad.size() - 3] == 'A' ? 'B' : 'A';
  auto r = server.step(bad);
  EXPECT_EQ(r.code(), Code::denied);
  EXPECT_EQ(r.status().message(), "invalid-proof");
  EXPECT_FALSE(server.done());
  EXPECT_FALSE(server.step(kClientFinal));  // no second try
}

TEST(ScramServer, WrongPasswordIsDenied) {
  ScramServer server([](std::string_view) -> std::optional<ScramKeys> {
    return derive_scram_keys("not pencil", b64d(kSalt), 4096);
  });
  server.set_nonce_for_testing(kServerNonce);
  ASSERT_EQ(*server.step(kClientFirst), kServerFirst);
  EXPECT_EQ(server.step(kClientFinal).code(), Code::denied);
}

// A minimal SCRAM-SHA-256 client, to exercise random salts and nonces.
std::string hmac(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len);
  return std::string(reinterpret_cast<char*>(md), len);
}

std::map<char, std::string> parse(std::string_view msg) {
  std::map<char, std::string> out;
  size_t start = 0;
  while (start <= msg.size()) {
    size_t comma = msg.find(',', start);
    if (comma == std::string_view::npos) comma = msg.size();
    std::string_view a = msg.substr(start, comma - start);
    if (a.size() >= 2) out[a[0]] = std::string(a.substr(2));
    start = comma + 1;
  }
  return out;
}

// Runs a whole exchange; returns the server's final step.
Result<std::string> login(ScramServer& server, std::string_view gs2, std::string_view user,
                          std::string_view password) {
  std::string bare = "n=" + std::string(user) + ",r=clientnonce123";
  auto first = server.step(std::string(gs2) + bare);
  if (!first) return first.status();
  auto a = parse(*first);
  std::string salted(32, '\0');
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(b64d(a['s']).data()),
                    static_cast<int>(b64d(a['s']).size()), std::stoi(a['i']), EVP_sha256(), 32,
                    reinterpret_cast<unsigned char*>(salted.data()));
  std::string client_key = hmac(salted, "Client Key");
  unsigned char stored[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(client_key.data()), client_key.size(), stored);
  std::string without_proof = "c=" + base64_encode(gs2) + ",r=" + a['r'];
  std::string auth = bare + "," + *first + "," + without_proof;
  std::string sig = hmac(std::string(reinterpret_cast<char*>(stored), sizeof stored), auth);
  std::string proof = client_key;
  for (size_t i = 0; i < proof.size(); ++i) proof[i] ^= sig[i];
  auto final = server.step(without_proof + ",p=" + base64_encode(proof));
  if (final && *final != "v=" + base64_encode(hmac(hmac(salted, "Server Key"), auth))) {
    return error(Code::internal, "bad server signature");
  }
  return final;
}

TEST(ScramServer, ClientRoundTripWithRandomSaltAndNonce) {
  ScramKeys keys = derive_scram_keys("s3cret p\xc3\xa4ss");
  auto lookup = [&](std::string_view u) -> std::optional<ScramKeys> {
    if (u == "a,b=c@example.org") return keys;
    return std::nullopt;
  };
  for (const char* gs2 : {"n,,", "y,,", "n,a=a=2Cb=3Dc@example.org,"}) {
    ScramServer server(lookup);
    auto r = login(server, gs2, "a=2Cb=3Dc@example.org", "s3cret p\xc3\xa4ss");
    ASSERT_TRUE(r) << gs2 << ": " << r.status().to_string();
    EXPECT_TRUE(server.done());
    EXPECT_EQ(server.username(), "a,b=c@example.org");
  }
  ScramServer server(lookup);
  EXPECT_EQ(login(server, "n,,", "a=2Cb=3Dc@example.org", "wrong").code(), Code::denied);
}

TEST(ScramServer, UnknownUserLooksLikeAWrongPassword) {
  auto nobody = [](std::string_view) -> std::optional<ScramKeys> { return std::nullopt; };
  ScramServer s1(nobody), s2(nobody), s3(nobody);
  auto f1 = s1.step("n,,n=ghost,r=abc");
  auto f2 = s2.step("n,,n=ghost,r=abc");
  auto f3 = s3.step("n,,n=phantom,r=abc");
  ASSERT_TRUE(f1 && f2 && f3);
  auto a1 = parse(*f1), a2 = parse(*f2), a3 = parse(*f3);
  EXPECT_EQ(a1['s'], a2['s']);  // stable per user, so probing twice reveals nothing
  EXPECT_NE(a1['s'], a3['s']);
  EXPECT_EQ(b64d(a1['s']).size(), 16u);
  EXPECT_EQ(a1['i'], "4096");
  EXPECT_NE(a1['r'], a2['r']);  // server nonces are random
  EXPECT_EQ(a1['r'].rfind("abc", 0), 0u);

  ScramServer s4(nobody);
  auto r = login(s4, "n,,", "ghost", "anything");
  EXPECT_EQ(r.code(), Code::denied);
  EXPECT_EQ(r.status().message(), "invalid-proof");

  // An account without a verifier (iterations 0) behaves the same way.
  ScramServer s5([](std::string_view) -> std::optional<ScramKeys> { return ScramKeys{}; });
  EXPECT_EQ(login(s5, "n,,", "ghost", "").code(), Code::denied);
}

TEST(ScramServer, MalformedClientFirst) {
  struct Case {
    const char* msg;
    Code code;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"", Code::invalid},
           {"n", Code::invalid},
           {"n,", Code::invalid},
           {"n,,", Code::invalid},
           {"x,,n=user,r=abc", Code::invalid},
           {"p=tls-unique,,n=user,r=abc", Code::invalid},
           {"n,,r=abc", Code::invalid},
           {"n,,n=user", Code::invalid},
           {"n,,n=,r=abc", Code::invalid},
           {"n,,n=us=2Xer,r=abc", Code::invalid},
           {"n,,n=user=,r=abc", Code::invalid},
           {"n,,n=user,r=", Code::invalid},
           {"n,,n=user,r=a b", Code::invalid},
           {"n,,n=user,x=abc", Code::invalid},
           {"n,,m=ext,n=user,r=abc", Code::invalid},
           {"n,b=x,n=user,r=abc", Code::invalid},
           {"n,a=other,n=user,r=abc", Code::denied},
       }) {
    ScramServer server(rfc_lookup());
    auto r = server.step(c.msg);
    EXPECT_EQ(r.code(), c.code) << c.msg;
    EXPECT_FALSE(server.done());
    EXPECT_FALSE(server.step(kClientFinal)) << c.msg;
  }
  ScramServer server(rfc_lookup());
  EXPECT_EQ(server.step("p=tls-unique,,n=user,r=abc").status().message(),
            "channel-binding-not-supported");
  ScramServer big(rfc_lookup());
  EXPECT_EQ(big.step("n,,n=user,r=" + std::string(100000, 'a')).code(), Code::invalid);
}

TEST(ScramServer, MalformedClientFinal) {
  const std::string nonce = std::string("rOprNGfwEbeRWgbNEkqO") + kServerNonce;
  const std::string proof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  struct Case {
    std::string msg;
    Code code;
  };
  for (const Case& c : std::vector<Case>{
           {"", Code::invalid},
           {"c=biws", Code::invalid},
           {"c=biws,r=" + nonce, Code::invalid},
           {"r=" + nonce + "," + proof, Code::invalid},
           {"c=biws,r=" + nonce + ",p=", Code::invalid},
           {"c=biws,r=" + nonce + ",p=!!!!", Code::invalid},
           {"c=biws,r=" + nonce + ",p=AAAA", Code::invalid},
           {"c=bi,r=" + nonce + "," + proof, Code::invalid},
           {"c=eSws,r=" + nonce + "," + proof, Code::denied},  // "y,," but "n,," was sent
           {"c=biws,r=rOprNGfwEbeRWgbNEkqO," + proof, Code::denied},
           {"c=biws," + proof + ",r=" + nonce, Code::invalid},
           {"c=biws,r=" + nonce + ",x=ext," + proof, Code::denied},  // alters AuthMessage
       }) {
    ScramServer server(rfc_lookup());
    server.set_nonce_for_testing(kServerNonce);
    ASSERT_TRUE(server.step(kClientFirst));
    auto r = server.step(c.msg);
    EXPECT_EQ(r.code(), c.code) << c.msg;
    EXPECT_FALSE(server.done()) << c.msg;
  }
}

TEST(ScramSaslprep, AsciiCheckedUtf8PassedThrough) {
  EXPECT_EQ(*saslprep("pencil"), "pencil");
  EXPECT_EQ(*saslprep("p\xc3\xa4ss w\xc3\xb6rd"), "p\xc3\xa4ss w\xc3\xb6rd");
  EXPECT_EQ(saslprep("").code(), Code::invalid);
  EXPECT_EQ(saslprep("a\tb").code(), Code::invalid);
  EXPECT_EQ(saslprep(std::string("a\0b", 3)).code(), Code::invalid);
  EXPECT_EQ(saslprep("a\x7f").code(), Code::invalid);
}

}  // namespace
}  // namespace mail
