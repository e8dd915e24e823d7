// bench/auth: DKIM sign and verify, messages per second, for RSA-2048 and
// Ed25519 at 4 KiB and 64 KiB, printed beside `openssl speed` for the same
// primitives, run in the same process lifetime on the same machine.
//
// `openssl speed` signs and verifies a digest; a DKIM message also needs its
// body and header fields hashed, so the floor our rate is measured against is
// that raw operation plus SHA-256 over the message at OpenSSL's own rate
// (`openssl speed -evp sha256 -bytes 4096`, printed too).
//
//   bench_auth [--seconds S] [--no-openssl]
#include <CLI/CLI.hpp>

#include <time.h>

#include <cstdio>
#include <map>
#include <string>

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

// Operations per CPU second: `openssl speed` divides by CPU time too (unless
// -elapsed), so the figures compare on a machine shared with other work.
template <class F>
double rate(double seconds, F&& f) {
  f();  // warm up
  size_t n = 0;
  double start = cpu_seconds(), elapsed = 0;
  do {
    for (int i = 0; i < 16; ++i) f();
    n += 16;
    elapsed = cpu_seconds() - start;
  } while (elapsed < seconds);
  return static_cast<double>(n) / elapsed;
}

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

// Messages per second if the only work were the raw operation and hashing
// `bytes` at OpenSSL's SHA-256 rate.
double floor_rate(double raw_per_s, double bytes, double sha_bytes_per_s) {
  return 1 / (1 / raw_per_s + bytes / sha_bytes_per_s);
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

  std::printf("%-22s %5s %11s %11s %11s %11s %11s %11s\n", "algorithm", "size", "sign msg/s", "vfy msg/s",
              "ossl sign/s", "ossl vfy/s", "floor sign", "floor vfy");
  for (auto& alg : algs) {
    StubResolver dns;
    dns.add("s1._domainkey.example.org", DnsType::txt, alg.key.dns_record());
    for (size_t size : {size_t{4096}, size_t{65536}}) {
      std::string msg = make_message(size);
      DkimSignOptions opt;
      opt.domain = "example.org";
      opt.selector = "s1";
      double sign = rate(seconds, [&] {
        auto sig = dkim_sign(msg, alg.key, opt);
        if (!sig) std::abort();
      });
      std::string signed_msg = *dkim_sign(msg, alg.key, opt) + msg;
      double verify = rate(seconds, [&] {
        auto r = dkim_verify(signed_msg, dns);
        if (r.empty() || r[0].status != DkimStatus::pass) std::abort();
      });
      auto it = raw.ops.find(alg.openssl_name);
      std::printf("%-22s %4zuK %11.0f %11.0f", alg.name, size / 1024, sign, verify);
      if (it != raw.ops.end() && raw.sha256_bytes_per_s > 0) {
        double fs = floor_rate(it->second.first, static_cast<double>(size), raw.sha256_bytes_per_s);
        double fv = floor_rate(it->second.second, static_cast<double>(size), raw.sha256_bytes_per_s);
        std::printf(" %11.0f %11.0f %11.0f %11.0f  raw %.0f%%/%.0f%%, floor %.0f%%/%.0f%%\n", it->second.first,
                    it->second.second, fs, fv, 100 * sign / it->second.first, 100 * verify / it->second.second,
                    100 * sign / fs, 100 * verify / fv);
      } else {
        std::printf("\n");
      }
    }
  }
  return 0;
}
