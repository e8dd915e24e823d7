// bench/auth: DKIM sign and verify, messages per second, for RSA-2048 and
// Ed25519 at 4 KiB and 64 KiB, printed beside `openssl speed` for the same
// primitives, run in the same process lifetime on the same machine.
//
// `openssl speed` signs and verifies a digest; a DKIM message also needs its
// body and header fields hashed, so the floor our rate is measured against is
// that raw operation plus SHA-256 over the message (OpenSSL's SHA-256 rate,
// `openssl speed -evp sha256 -bytes 4096`, is printed too). The floor is also
// run in this process, the same EVP calls `openssl speed` makes, alternating
// with ours in short slices: on a machine busy with other work both see the
// same load, so "% of floor" holds where the separate figures wander.
//
//   bench_auth [--seconds S] [--no-openssl]
#include <CLI/CLI.hpp>

#include <time.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "auth/dkim.h"

namespace {

using namespace mail::auth;

std::string make_message(size_t size) {
  std::string m =
      "From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: benchmark message\r\n"
      "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <bench@example.org>\r\nMIME-Version: 1.0\r\n"
      "Content-Type: text/plain; charset=utf-8\r\n\r\n";
  static const char words[] = "lorem ipsum dolor sit amet, consectetur  adipiscing elit\t ";
  size_t i = 0;
  while (m.size() < size) {
    std::string line;
    while (line.size() < 70) line.push_back(words[i++ % (sizeof words - 1)]);
    m += line + "\r\n";
  }
  m.resize(size - 2);
  m += "\r\n";
  return m;
}

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Operations per CPU second of `ours` and `floor`, run in alternating slices
// of about 50 ms for `seconds` of CPU each. `openssl speed` divides by CPU
// time too (unless -elapsed).
template <class F, class G>
std::pair<double, double> rates(double seconds, F&& ours, G&& floor) {
  ours();  // warm up
  floor();
  size_t n[2] = {0, 0};
  double spent[2] = {0, 0};
  while (spent[0] < seconds || spent[1] < seconds) {
    for (int which = 0; which < 2; ++which) {
      double start = cpu_seconds(), elapsed = 0;
      do {
        for (int i = 0; i < 4; ++i) which ? floor() : ours();
        n[which] += 4;
        elapsed = cpu_seconds() - start;
      } while (elapsed < 0.05);
      spent[which] += elapsed;
    }
  }
  return {static_cast<double>(n[0]) / spent[0], static_cast<double>(n[1]) / spent[1]};
}

// The primitive alone, as `openssl speed` runs it: a context set up once, a
// 32-byte digest signed (PKCS#1 v1.5 for RSA) or a signature of one verified.
class RawOps {
 public:
  explicit RawOps(EVP_PKEY* key) : rsa_(EVP_PKEY_base_id(key) == EVP_PKEY_RSA) {
    if (rsa_) {
      sign_ctx_ = EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr);
      verify_ctx_ = EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr);
      if (EVP_PKEY_sign_init(sign_ctx_) != 1 || EVP_PKEY_CTX_set_rsa_padding(sign_ctx_, RSA_PKCS1_PADDING) != 1 ||
          EVP_PKEY_verify_init(verify_ctx_) != 1 ||
          EVP_PKEY_CTX_set_rsa_padding(verify_ctx_, RSA_PKCS1_PADDING) != 1) {
        std::abort();
      }
    } else {
      md_sign_ = EVP_MD_CTX_new();
      md_verify_ = EVP_MD_CTX_new();
      if (EVP_DigestSignInit(md_sign_, nullptr, nullptr, nullptr, key) != 1 ||
          EVP_DigestVerifyInit(md_verify_, nullptr, nullptr, nullptr, key) != 1) {
        std::abort();
      }
    }
    sig_.resize(512);
    scratch_.resize(512);
    sig_len_ = sign_into(digest_, sig_);
  }
  ~RawOps() {
    EVP_PKEY_CTX_free(sign_ctx_);
    EVP_PKEY_CTX_free(verify_ctx_);
    EVP_MD_CTX_free(md_sign_);
    EVP_MD_CTX_free(md_verify_);
  }
  size_t sign(const unsigned char* md) { return sign_into(md, scratch_); }
  void verify() {
    int ok = rsa_ ? EVP_PKEY_verify(verify_ctx_, sig_.data(), sig_len_, digest_, 32)
                  : EVP_DigestVerify(md_verify_, sig_.data(), sig_len_, digest_, 32);
    if (ok != 1) std::abort();
  }
  // SHA-256 of `bytes`, as the message's hashing costs at least.
  static void hash(const std::string& bytes, unsigned char* out) {
    unsigned len = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), out, &len, EVP_sha256(), nullptr) != 1) std::abort();
  }

 private:
  bool rsa_;
  EVP_PKEY_CTX* sign_ctx_ = nullptr;
  EVP_PKEY_CTX* verify_ctx_ = nullptr;
  EVP_MD_CTX* md_sign_ = nullptr;
  EVP_MD_CTX* md_verify_ = nullptr;
  unsigned char digest_[32] = {1, 2, 3};
  std::vector<unsigned char> sig_, scratch_;
  size_t sig_len_ = 0;

  size_t sign_into(const unsigned char* md, std::vector<unsigned char>& out) {
    size_t len = out.size();
    int ok = rsa_ ? EVP_PKEY_sign(sign_ctx_, out.data(), &len, md, 32)
                  : EVP_DigestSign(md_sign_, out.data(), &len, md, 32);
    if (ok != 1) std::abort();
    return len;
  }
};

struct OpensslSpeed {
  std::map<std::string, std::pair<double, double>> ops;  // sign/s, verify/s by "rsa2048", "ed25519"
  double sha256_bytes_per_s = 0;                         // over 4 KiB blocks
};

OpensslSpeed openssl_speed(int seconds) {
  OpensslSpeed out;
  std::string s = std::to_string(seconds);
  std::string cmd = "openssl speed -seconds " + s + " rsa2048 ed25519 2>/dev/null; openssl speed -seconds " + s +
                    " -bytes 4096 -evp sha256 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char line[512];
  while (fgets(line, sizeof line, p)) {
    double s1, s2, sign, verify, kbytes;
    // "rsa 2048 bits 0.000718s 0.000021s   1393.4  47619.0"
    if (sscanf(line, "rsa 2048 bits %lfs %lfs %lf %lf", &s1, &s2, &sign, &verify) == 4) {
      out.ops["rsa2048"] = {sign, verify};
    }
    // " 253 bits EdDSA (Ed25519)   0.0000s   0.0001s  23567.3   8537.6"
    if (sscanf(line, " 253 bits EdDSA (Ed25519) %lfs %lfs %lf %lf", &s1, &s2, &sign, &verify) == 4) {
      out.ops["ed25519"] = {sign, verify};
    }
    // "sha256         1241668.27k" (1000s of bytes per second)
    if (sscanf(line, "sha256 %lfk", &kbytes) == 1) out.sha256_bytes_per_s = kbytes * 1000;
  }
  pclose(p);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"DKIM sign/verify throughput beside openssl speed", "bench_auth"};
  double seconds = 2;
  bool no_openssl = false;
  app.add_option("--seconds", seconds, "CPU time per figure (default 2)");
  app.add_flag("--no-openssl", no_openssl, "do not run openssl speed");
  CLI11_PARSE(app, argc, argv);
  setvbuf(stdout, nullptr, _IOLBF, 0);

  struct Alg {
    const char* name;
    const char* openssl_name;
    DkimKey key;
  };
  Alg algs[] = {{"rsa-sha256 (RSA-2048)", "rsa2048", *DkimKey::generate(DkimAlgorithm::rsa_sha256, 2048)},
                {"ed25519-sha256", "ed25519", *DkimKey::generate(DkimAlgorithm::ed25519_sha256)}};

  OpensslSpeed raw;
  if (!no_openssl) raw = openssl_speed(static_cast<int>(seconds < 1 ? 1 : seconds));
  if (raw.sha256_bytes_per_s > 0) {
    std::printf("openssl speed -evp sha256, 4 KiB blocks: %.0f MB/s (%.0f per second)\n",
                raw.sha256_bytes_per_s / 1e6, raw.sha256_bytes_per_s / 4096);
  }

  std::printf("%-22s %5s %10s %10s %10s %10s %12s %12s\n", "algorithm", "size", "sign/s", "floor", "verify/s",
              "floor", "ossl sign/s", "ossl vfy/s");
  for (auto& alg : algs) {
    StubResolver dns;
    dns.add("s1._domainkey.example.org", DnsType::txt, alg.key.dns_record());
    RawOps raw_ops(alg.key.pkey());
    for (size_t size : {size_t{4096}, size_t{65536}}) {
      std::string msg = make_message(size);
      DkimSignOptions opt;
      opt.domain = "example.org";
      opt.selector = "s1";
      unsigned char md[EVP_MAX_MD_SIZE];
      auto [sign, sign_floor] = rates(
          seconds,
          [&] {
            if (!dkim_sign(msg, alg.key, opt)) std::abort();
          },
          [&] {
            RawOps::hash(msg, md);
            raw_ops.sign(md);
          });
      std::string signed_msg = *dkim_sign(msg, alg.key, opt) + msg;
      auto [verify, verify_floor] = rates(
          seconds,
          [&] {
            auto r = dkim_verify(signed_msg, dns);
            if (r.empty() || r[0].status != DkimStatus::pass) std::abort();
          },
          [&] {
            RawOps::hash(msg, md);
            raw_ops.verify();
          });
      std::printf("%-22s %4zuK %10.0f %10.0f %10.0f %10.0f", alg.name, size / 1024, sign, sign_floor, verify,
                  verify_floor);
      auto it = raw.ops.find(alg.openssl_name);
      if (it != raw.ops.end()) {
        std::printf(" %12.0f %12.0f", it->second.first, it->second.second);
      } else {
        std::printf(" %12s %12s", "-", "-");
      }
      std::printf("   of floor: sign %.0f%%, verify %.0f%%\n", 100 * sign / sign_floor, 100 * verify / verify_floor);
    }
  }
  return 0;
}
