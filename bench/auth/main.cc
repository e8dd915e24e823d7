// bench/auth: DKIM sign and verify, messages per second, for RSA-2048 and
// Ed25519 at 4 KiB and 64 KiB, printed beside `openssl speed` for the same
// primitives, run in the same process lifetime on the same machine.
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

// sign/s and verify/s from `openssl speed`, keyed "rsa2048" and "ed25519".
std::map<std::string, std::pair<double, double>> openssl_speed(int seconds) {
  std::map<std::string, std::pair<double, double>> out;
  std::string cmd = "openssl speed -seconds " + std::to_string(seconds) + " rsa2048 ed25519 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char line[512];
  while (fgets(line, sizeof line, p)) {
    double s1, s2, sign, verify;
    // "rsa 2048 bits 0.000718s 0.000021s   1393.4  47619.0"
    if (sscanf(line, "rsa 2048 bits %lfs %lfs %lf %lf", &s1, &s2, &sign, &verify) == 4) {
      out["rsa2048"] = {sign, verify};
    }
    // " 253 bits EdDSA (Ed25519)   0.0000s   0.0001s  23567.3   8537.6"
    if (sscanf(line, " 253 bits EdDSA (Ed25519) %lfs %lfs %lf %lf", &s1, &s2, &sign, &verify) == 4) {
      out["ed25519"] = {sign, verify};
    }
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

  std::map<std::string, std::pair<double, double>> raw;
  if (!no_openssl) raw = openssl_speed(static_cast<int>(seconds < 1 ? 1 : seconds));

  std::printf("%-22s %7s %12s %12s %14s %14s\n", "algorithm", "size", "sign msg/s", "verify msg/s",
              "openssl sign/s", "openssl vfy/s");
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
      auto it = raw.find(alg.openssl_name);
      std::printf("%-22s %6zuK %12.0f %12.0f", alg.name, size / 1024, sign, verify);
      if (it != raw.end()) {
        std::printf(" %14.0f %14.0f   (%.0f%% / %.0f%% of openssl)\n", it->second.first, it->second.second,
                    100 * sign / it->second.first, 100 * verify / it->second.second);
      } else {
        std::printf(" %14s %14s\n", "-", "-");
      }
    }
  }
  return 0;
}
