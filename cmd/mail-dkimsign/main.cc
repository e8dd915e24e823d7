// mail-dkimsign: a DKIM filter. Signs the message on stdin and writes it to
// stdout with a DKIM-Signature prepended, or (--verify) prints one line per
// signature. See mail-dkimsign(8).
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "auth/arc.h"
#include "auth/dkim.h"
#include "auth/resolver.h"
#include "auth/spf.h"
#include "base/completion.h"
#include "base/status.h"

namespace {

constexpr int kUsage = 64;    // EX_USAGE
constexpr int kNoInput = 66;  // EX_NOINPUT

int fail(int code, const std::string& message) {
  std::cerr << "mail-dkimsign: " << message << "\n";
  return code;
}

bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

std::string read_stdin() {
  std::string data;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(0, buf, sizeof buf)) > 0) data.append(buf, static_cast<size_t>(n));
  return data;
}

bool write_stdout(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(1, data.data(), data.size());
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// A key record file holds the TXT value, possibly split over lines or quoted
// as zone-file character-strings ("v=DKIM1; " "p=...").
std::string record_from_file(const std::string& text) {
  std::string out;
  bool quoted = text.find('"') != std::string::npos;
  bool in_quote = false;
  for (char c : text) {
    if (quoted) {
      if (c == '"') in_quote = !in_quote;
      else if (in_quote) out.push_back(c);
    } else if (c != '\n' && c != '\r') {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Sign a message with DKIM (stdin to stdout), or verify its DKIM signatures.", "mail-dkimsign"};
  std::string domain, selector, key_file, canon = "relaxed/relaxed", headers, identity;
  int64_t expire = 0;
  bool no_oversign = false, verify = false, print_record = false, allow_partial = false;
  std::vector<std::string> key_records;
  std::string zone_file;
  int64_t now = -1;

  app.add_option("--domain,-d", domain, "signing domain (d=)")->type_name("DOMAIN");
  app.add_option("--selector,-s", selector, "selector (s=)")->type_name("SELECTOR");
  app.add_option("--key,-k", key_file, "private key: PEM (RSA or Ed25519) or a base64 Ed25519 seed")
      ->type_name("FILE");
  app.add_option("--canonicalization,-c", canon, "header/body canonicalization (default: relaxed/relaxed)")
      ->type_name("CANON")
      ->check(CLI::IsMember({"relaxed/relaxed", "relaxed/simple", "simple/relaxed", "simple/simple", "relaxed",
                             "simple"}));
  app.add_option("--headers", headers, "colon-separated header names to sign (default: the usual set)")
      ->type_name("NAMES");
  app.add_option("--identity", identity, "agent or user identifier (i=), within the domain")->type_name("ADDRESS");
  app.add_option("--expire", expire, "signature lifetime in seconds (x=); 0: none")->type_name("SECONDS");
  app.add_flag("--no-oversign", no_oversign, "do not sign From once more than it occurs");
  app.add_flag("--print-record", print_record, "print the DNS TXT record of --key and exit");
  app.add_flag("--verify", verify, "verify the signatures; print one line per signature");
  app.add_option("--key-record", key_records,
                 "with --verify: use FILE as the TXT record of NAME (selector._domainkey.domain) instead of DNS")
      ->type_name("NAME=FILE");
  app.add_option("--zone", zone_file, "with --verify: answer DNS from FILE (lines: NAME TYPE VALUE) instead of DNS")
      ->type_name("FILE");
  app.add_option("--now", now, "with --verify: check expiry (x=) at this time (seconds since the epoch)")
      ->type_name("SECONDS");
  app.add_flag("--allow-partial-body", allow_partial, "with --verify: let l= signatures with unsigned content pass");
  bool arc_mode = false;
  app.add_flag("--arc-verify", arc_mode, "validate the ARC chain instead: print none, pass or fail");
  bool seal_mode = false;
  std::string authserv_id;
  int64_t timestamp = -1;
  app.add_flag("--arc-seal", seal_mode,
               "add an ARC set instead of a DKIM signature (needs --authserv-id; --domain, --selector, --key)");
  app.add_option("--authserv-id", authserv_id, "with --arc-seal: whose Authentication-Results to seal")
      ->type_name("NAME");
  app.add_option("--timestamp", timestamp, "signing time t= (seconds since the epoch; default now)")
      ->type_name("SECONDS");
  bool spf_mode = false;
  std::string spf_explanation;
  app.add_flag("--spf-check", spf_mode,
               "check SPF instead: stdin lines \"IP<TAB>MAIL-FROM<TAB>HELO\", one result line each");
  app.add_option("--spf-explanation", spf_explanation, "with --spf-check: explanation for a fail without exp=")
      ->type_name("TEXT");
  mail::add_completion_option(app);
  CLI11_PARSE(app, argc, argv);

  using namespace mail::auth;
  using mail::Result;

  if (print_record) {
    if (key_file.empty()) return fail(kUsage, "--print-record needs --key");
    auto key = DkimKey::load_file(key_file);
    if (!key) return fail(key.code() == mail::Code::io ? kNoInput : 65, key.status().message());
    std::cout << key->dns_record() << "\n";
    return 0;
  }

  if (verify || spf_mode || arc_mode) {
    std::unique_ptr<Resolver> resolver;
    if (!key_records.empty() || !zone_file.empty()) {
      auto stub = std::make_unique<StubResolver>();
      if (!zone_file.empty()) {
        std::string text;
        if (!read_file(zone_file, text)) return fail(kNoInput, "cannot read " + zone_file);
        if (auto st = stub->load_zone(text); !st) return fail(65, zone_file + ": " + st.message());
      }
      for (const auto& kr : key_records) {
        size_t eq = kr.find('=');
        if (eq == std::string::npos || eq == 0) return fail(kUsage, "--key-record wants NAME=FILE: " + kr);
        std::string text;
        if (!read_file(kr.substr(eq + 1), text)) return fail(kNoInput, "cannot read " + kr.substr(eq + 1));
        stub->add(kr.substr(0, eq), DnsType::txt, record_from_file(text));
      }
      resolver = std::move(stub);
    } else {
      auto sys = make_system_resolver();
      if (!sys) return fail(mail::exit_code(sys.code()), sys.status().message());
      resolver = std::move(*sys);
    }
    if (spf_mode) {
      SpfOptions options;
      options.default_explanation = spf_explanation;
      options.now = now;
      std::string line;
      bool any_pass = false;
      while (std::getline(std::cin, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        SpfRequest req;
        size_t t1 = line.find('\t');
        size_t t2 = t1 == std::string::npos ? std::string::npos : line.find('\t', t1 + 1);
        if (t2 == std::string::npos) return fail(kUsage, "--spf-check wants lines IP<TAB>MAIL-FROM<TAB>HELO");
        req.ip = line.substr(0, t1);
        req.mail_from = line.substr(t1 + 1, t2 - t1 - 1);
        req.helo = line.substr(t2 + 1);
        SpfVerdict v = spf_check(req, *resolver, options);
        std::cout << spf_result_name(v.result);
        if (!v.explanation.empty()) std::cout << "\t" << v.explanation;
        std::cout << std::endl;
        any_pass = any_pass || v.result == SpfResult::pass;
      }
      return any_pass ? 0 : 1;
    }
    std::string message = read_stdin();
    DkimVerifyOptions options;
    options.now = now;
    if (arc_mode) {
      MailMessage msg(message);
      ArcResult arc = arc_validate(msg, *resolver, options);
      std::cout << arc_status_name(arc.status);
      if (!arc.reason.empty()) std::cout << " (" << arc.reason << ")";
      std::cout << std::endl;
      return arc.status == ArcStatus::fail ? 1 : 0;
    }
    options.allow_partial_body = allow_partial;
    auto results = dkim_verify(message, *resolver, options);
    if (results.empty()) {
      std::cout << "none\n";
      return 1;
    }
    bool any_pass = false;
    for (const auto& r : results) {
      std::cout << dkim_status_name(r.status) << " d=" << r.domain << " s=" << r.selector << " a=" << r.algorithm;
      if (r.testing) std::cout << " testing";
      if (!r.reason.empty()) std::cout << " (" << r.reason << ")";
      std::cout << "\n";
      any_pass = any_pass || r.status == DkimStatus::pass;
    }
    std::cout.flush();
    return any_pass ? 0 : 1;
  }

  if (domain.empty() || selector.empty() || key_file.empty()) {
    return fail(kUsage, "signing needs --domain, --selector and --key (or use --verify)");
  }
  auto key = DkimKey::load_file(key_file);
  if (!key) return fail(key.code() == mail::Code::io ? kNoInput : 65, key.status().message());
  std::vector<std::string> header_names;
  if (!headers.empty()) {
    std::string name;
    std::istringstream in(headers);
    while (std::getline(in, name, ':')) {
      if (!name.empty()) header_names.push_back(name);
    }
  }
  if (seal_mode && authserv_id.empty()) return fail(kUsage, "--arc-seal needs --authserv-id");
  DkimSignOptions options;
  options.domain = domain;
  options.selector = selector;
  options.identity = identity;
  options.expire_after = expire;
  options.oversign_from = !no_oversign;
  options.timestamp = timestamp;
  options.headers = header_names;
  size_t slash = canon.find('/');
  std::string hc = canon.substr(0, slash);
  std::string bc = slash == std::string::npos ? "simple" : canon.substr(slash + 1);
  options.header_canon = hc == "simple" ? Canon::simple : Canon::relaxed;
  options.body_canon = bc == "simple" ? Canon::simple : Canon::relaxed;
  std::string message = read_stdin();
  Result<std::string> sig = std::string();
  if (seal_mode) {
    ArcSealOptions seal;
    seal.domain = domain;
    seal.selector = selector;
    seal.authserv_id = authserv_id;
    seal.headers = header_names;
    seal.timestamp = timestamp;
    MailMessage msg(message);
    sig = arc_seal(msg, *key, seal);
  } else {
    sig = dkim_sign(message, *key, options);
  }
  if (!sig) return fail(sig.code() == mail::Code::invalid ? 65 : mail::exit_code(sig.code()), sig.status().message());
  // Keep the input's line ends: a file with LF lines gets an LF header.
  size_t nl = message.find('\n');
  bool lf = nl != std::string::npos && (nl == 0 || message[nl - 1] != '\r');
  std::string header = *sig;
  if (lf) {
    std::string out;
    for (char c : header) {
      if (c != '\r') out.push_back(c);
    }
    header = std::move(out);
  }
  if (!write_stdout(header) || !write_stdout(message)) return fail(74, "cannot write the message");  // EX_IOERR
  return 0;
}
