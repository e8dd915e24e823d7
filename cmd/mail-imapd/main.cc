// mail-imapd: the IMAP4rev2/IMAP4rev1 server. See mail-imapd(8).
#include <CLI/CLI.hpp>

#include <sys/stat.h>

#include <atomic>
#include <csignal>

#include "base/log.h"
#include "config/config.h"
#include "imap/memory_store.h"
#include "imap/server.h"
#include "store/store.h"

namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop.store(true); }

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

mail::log::Level level_from(const std::string& s) {
  if (s == "debug") return mail::log::Level::debug;
  if (s == "warn") return mail::log::Level::warn;
  if (s == "error") return mail::log::Level::error;
  return mail::log::Level::info;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mail-imapd: IMAP4rev2 and IMAP4rev1 server"};
  std::string config_path, data_dir, memory_user;
  std::vector<std::string> listen;
  app.add_option("--config", config_path, "configuration file (default: $MAIL_CONFIG, else ./mail.toml)");
  app.add_option("--data-dir", data_dir, "data directory (overrides general.data_dir)");
  app.add_option("--listen", listen,
                 "[imap=|imaps=]HOST:PORT, repeatable; replaces imap.listen and imap.listen_tls");
  app.add_option("--memory-store", memory_user,
                 "serve a volatile in-memory store with one account USER:PASSWORD (tests and demos only)");
  CLI11_PARSE(app, argc, argv);

  mail::Config config;
  mail::log::init("mail-imapd", level_from(config.general.log_level), config.general.syslog);
  if (!data_dir.empty()) config.general.data_dir = data_dir;

  mail::imap::ServerOptions opts;
  opts.config = config.imap;
  opts.listen = config.imap.listen;
  opts.listen_tls = config.imap.listen_tls;
  bool explicit_tls_listener = false;
  if (!listen.empty()) {
    opts.listen.clear();
    opts.listen_tls.clear();
    for (const auto& l : listen) {
      auto eq = l.find('=');
      std::string name = eq == std::string::npos ? "imap" : l.substr(0, eq);
      std::string addr = eq == std::string::npos ? l : l.substr(eq + 1);
      if (name == "imap") {
        opts.listen = addr;
      } else if (name == "imaps") {
        opts.listen_tls = addr;
        explicit_tls_listener = true;
      } else {
        mail::log::error("--listen {}: the listener name must be imap or imaps", l);
        return 64;
      }
    }
  }

  // TLS: the configured certificate, else the demo one under the data directory.
  std::string cert = config.tls.cert_file, key = config.tls.key_file;
  if (cert.empty() && file_exists(config.general.data_dir + "/tls/cert.pem")) {
    cert = config.general.data_dir + "/tls/cert.pem";
    key = config.general.data_dir + "/tls/key.pem";
  }
  opts.cert_file = cert;
  opts.key_file = key;
  opts.tls_min_version = config.tls.min_version;
  if (cert.empty()) {
    if (explicit_tls_listener) {
      mail::log::error("an imaps listener needs a certificate (tls.cert_file)");
      return 78;
    }
    if (!opts.listen_tls.empty())
      mail::log::warn("no TLS certificate: not listening on {} and not offering STARTTLS", opts.listen_tls);
    opts.listen_tls.clear();
  }

  std::unique_ptr<mail::store::Store> store;
  if (!memory_user.empty()) {
    auto colon = memory_user.find(':');
    if (colon == std::string::npos) {
      mail::log::error("--memory-store needs USER:PASSWORD");
      return 64;
    }
    store = mail::imap::make_memory_store();
    auto st = mail::imap::memory_store_add_account(*store, memory_user.substr(0, colon),
                                                   memory_user.substr(colon + 1));
    if (!st) {
      mail::log::error("{}", st.to_string());
      return 70;
    }
    mail::log::warn("serving a volatile in-memory store: nothing is kept");
  } else {
    mail::log::error("this build has no store client yet; use --memory-store");
    return 69;
  }

  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  auto st = mail::imap::serve(*store, opts, &g_stop);
  if (!st) {
    mail::log::error("{}", st.to_string());
    return mail::exit_code(st.code());
  }
  mail::log::info("stopped");
  return 0;
}
