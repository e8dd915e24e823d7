// The configuration: one TOML file, every value with a default so that no file
// at all runs the demo. Sections mirror the programs; each field is declared
// once in config.cc's field table, which drives parsing, `mailctl config show
// [--defaults]` and `mailctl config check`.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "config/spam.h"

namespace mail {

struct GeneralConfig {
  std::string hostname;              // empty: the machine's name
  std::string data_dir = "./data";   // store, sockets, keys, queue
  std::string user;                  // daemons started as root drop to this user
  std::string log_level = "info";    // debug|info|warn|error
  bool syslog = false;               // log to syslog instead of stderr

  bool operator==(const GeneralConfig&) const = default;
};

struct TlsConfig {
  std::string cert_file;  // PEM; empty: <data_dir>/tls/cert.pem (generated for the demo)
  std::string key_file;
  std::string min_version = "1.2";  // "1.2" or "1.3"

  bool operator==(const TlsConfig&) const = default;
};

struct StoreConfig {
  std::string socket;                   // empty: <data_dir>/stored.sock
  uint64_t block_cache_mb = 32;
  uint32_t max_clients = 256;
  uint64_t max_frame_bytes = 128ull << 20;  // largest request on the local protocol

  bool operator==(const StoreConfig&) const = default;
};

struct SmtpConfig {
  std::string listen_mx = "127.0.0.1:2525";
  std::string listen_submission = "127.0.0.1:5870";   // STARTTLS
  std::string listen_submissions = "127.0.0.1:4650";  // implicit TLS
  std::string listen_lmtp;                            // unix:/path or host:port; empty: off
  uint64_t max_message_size = 50ull << 20;
  uint32_t max_recipients = 100;
  uint32_t max_line_length = 4096;
  uint32_t command_timeout_s = 300;
  uint32_t data_timeout_s = 600;
  uint32_t max_sessions_per_ip = 20;
  uint32_t max_unauth_commands = 20;
  uint32_t max_auth_failures = 3;
  bool allow_plain_auth_on_loopback = true;
  bool vrfy = false;

  bool operator==(const SmtpConfig&) const = default;
};

struct ImapConfig {
  std::string listen = "127.0.0.1:1430";        // STARTTLS
  std::string listen_tls = "127.0.0.1:9930";    // implicit TLS
  uint64_t max_literal = 64ull << 20;
  uint32_t max_line_length = 65536;
  uint32_t idle_timeout_s = 1800;
  bool allow_plain_auth_on_loopback = true;

  bool operator==(const ImapConfig&) const = default;
};

// Outbound delivery (mail-queued).
struct QueueConfig {
  std::string retry_schedule = "5m,10m,30m,1h,2h,4h";  // delays between attempts; the last repeats
  uint32_t max_age_s = 5 * 86400;     // then deferred recipients bounce
  uint32_t poll_interval_ms = 5000;   // how often the queue is scanned for due entries
  uint32_t max_connections = 8;       // deliveries at once
  uint32_t max_per_destination = 2;   // of them to one destination domain
  uint32_t remote_port = 25;          // port of MX hosts (tests use another)
  std::string resolver;               // DNS server "IP" or "IP@PORT"; empty: /etc/resolv.conf
  std::string helo_name;              // empty: general.hostname
  uint32_t connect_timeout_s = 30;
  uint32_t command_timeout_s = 300;
  std::string smarthost;              // host:port relaying outbound mail; empty: MX delivery
  std::string smarthost_domains;      // comma-separated destination domains; empty: all
  std::string smarthost_user;         // AUTH PLAIN user; empty: no AUTH
  std::string smarthost_password_file;
  bool smarthost_require_tls = true;
  bool smarthost_tls_verify = true;   // check the smarthost's certificate and name
  bool mta_sts = true;                // apply destination domains' MTA-STS policies (RFC 8461)
  uint32_t mta_sts_port = 443;        // HTTPS port of policy hosts (tests use another)
  std::string tls_ca_file;            // CAs trusted besides the system's for verified TLS
  bool dane = true;                   // DANE (RFC 7672) for MX hosts, when the trust anchor file can be read
  std::string dnssec_trust_anchor = "/usr/share/dns/root.key";  // DS/DNSKEY lines DANE lookups validate from
  uint32_t dane_recheck_s = 600;      // DANE stays off this long when the resolver did not validate the anchor
  uint32_t session_idle_s = 5;        // an SMTP session kept this long for the next message; 0: never
  uint32_t delay_warning_s = 4 * 3600;  // NOTIFY=DELAY recipients deferred this long get one report; 0: never

  bool operator==(const QueueConfig&) const = default;
};  // QueueConfig

// "5m,10m,1h,2d" (s, m, h, d; a bare number is seconds) as seconds each.
Result<std::vector<uint32_t>> parse_retry_schedule(std::string_view text);

// One program the supervisor runs: [services.NAME]. The built-in services
// (store, smtpd, imapd, queued) exist without a table; a table changes their
// settings or adds a service of the admin's own.
struct ServiceConfig {
  std::string program;             // executable; relative: next to mail-master
  std::vector<std::string> args;   // extra arguments after --data-dir/--config
  std::vector<std::string> listen; // NAME=ADDRESS handed down; empty: a built-in's section addresses
  uint32_t processes = 1;          // copies sharing the listening sockets (the store: 1)
  std::string user;                // empty: general.user
  bool enabled = true;
  bool notify = true;              // reports READY=1 (sd_notify); false: ready once started

  bool operator==(const ServiceConfig&) const = default;
};

// The built-in services with their defaults, by name.
std::map<std::string, ServiceConfig> default_services();

// Mail authentication of inbound mail (SPF, DKIM, DMARC, ARC on mail-smtpd's MX).
struct AuthConfig {
  bool verify_inbound = true;       // check MX mail and add Authentication-Results
  std::string authserv_id;          // in Authentication-Results; empty: general.hostname
  std::string dmarc_policy = "reject";  // reject | quarantine | tag: how far a DMARC failure is acted on
  std::string resolver;             // DNS server "IP" or "IP@PORT" for the checks; empty: /etc/resolv.conf
  uint32_t dns_budget_ms = 10000;   // all DNS lookups of one message together; then temperror
  bool dmarc_reports = true;        // record results for DMARC aggregate reports
  bool check_loopback = false;      // also check clients on loopback (local software otherwise; tests)
  bool operator==(const AuthConfig&) const = default;
};  // AuthConfig

struct Config {
  GeneralConfig general;
  TlsConfig tls;
  StoreConfig store;
  SmtpConfig smtp;
  ImapConfig imap;
  AuthConfig auth;
  QueueConfig queue;
  SpamConfig spam;
  std::map<std::string, ServiceConfig> services = default_services();
  std::string source;  // the file it was read from; empty for defaults

  std::string store_socket() const;  // store.socket or its default under data_dir

  bool operator==(const Config&) const = default;
};

// Reads `path` (empty: defaults only). Errors (Code::config) name the file and line:
// "mail.toml:12:3: smtp.max_recipients: expected an integer". Unknown sections
// and keys, wrong types and values the field's check refuses are all errors;
// every error in the file is reported, one per line, in file order.
Result<Config> load_config(const std::string& path);

// Runs every field's check on a configuration built in memory (no locations):
// "smtp.listen_mx: expected host:port ...". load_config() does this already.
Status validate_config(const Config& config);

// The file to use when none is given: $MAIL_CONFIG, else ./mail.toml if it
// exists, else none (defaults).
std::string default_config_path();

// The effective configuration as TOML, every key with a comment line giving its
// help text; load_config() reads it back to an equal Config. With
// only_defaults, the built-in defaults instead of `config`'s values.
std::string render_config(const Config& config, bool only_defaults = false);

}  // namespace mail
