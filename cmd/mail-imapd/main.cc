// mail-imapd: the IMAP4rev2/IMAP4rev1 server.
#include <CLI/CLI.hpp>

#include <csignal>

#include "base/log.h"
#include "imap/memory_store.h"
#include "imap/server.h"
#include "store/store.h"

namespace {
volatile bool g_stop = false;
void on_signal(int) { g_stop = true; }
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mail-imapd: IMAP4rev2 and IMAP4rev1 server"};
  std::string config_path, data_dir, memory_user;
  std::vector<std::string> listen;
  app.add_option("--config", config_path, "configuration file");
  app.add_option("--data-dir", data_dir, "data directory (overrides general.data_dir)");
  app.add_option("--listen", listen, "imap=HOST:PORT (repeatable)");
  app.add_option("--memory-store", memory_user,
                 "serve a volatile in-memory store with one account USER:PASSWORD (tests and demos only)");
  CLI11_PARSE(app, argc, argv);
  mail::log::init("mail-imapd");

  mail::Config config;
  // TODO(config): load_config(config_path) once lib/config has its implementation.
  mail::imap::ServerOptions opts;
  opts.config = config.imap;
  opts.listen = config.imap.listen;
  for (const auto& l : listen) {
    auto eq = l.find('=');
    std::string name = eq == std::string::npos ? "imap" : l.substr(0, eq);
    std::string addr = eq == std::string::npos ? l : l.substr(eq + 1);
    if (name == "imap") opts.listen = addr;
    else mail::log::warn("ignoring --listen {}: only imap= is served", l);
  }
  if (!data_dir.empty()) config.general.data_dir = data_dir;

  std::unique_ptr<mail::store::Store> store;
  if (!memory_user.empty()) {
    auto colon = memory_user.find(':');
    if (colon == std::string::npos) {
      mail::log::error("--memory-store needs USER:PASSWORD");
      return 64;
    }
    store = mail::imap::make_memory_store();
    auto st = mail::imap::memory_store_add_account(*store, memory_user.substr(0, colon), memory_user.substr(colon + 1));
    if (!st) {
      mail::log::error("{}", st.to_string());
      return 70;
    }
    mail::log::warn("serving a volatile in-memory store: nothing is kept");
  } else {
#if __has_include("store/remote_store.h")
    auto s = mail::store::open_store({config.general.data_dir}, mail::store::OpenMode::daemon);
    if (!s) {
      mail::log::error("cannot reach the store: {}", s.status().to_string());
      return mail::exit_code(s.code());
    }
    store = std::move(*s);
#else
    mail::log::error("this build has no store client yet; use --memory-store");
    return 69;
#endif
  }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  std::signal(SIGPIPE, SIG_IGN);
  auto st = mail::imap::serve(*store, opts, &g_stop);
  if (!st) {
    mail::log::error("{}", st.to_string());
    return mail::exit_code(st.code());
  }
  return 0;
}
