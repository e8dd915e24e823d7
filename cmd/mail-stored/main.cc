// mail-stored: owns the data directory's database (RocksStore) and serves it to
// every other program over the local protocol (docs/PROTOCOL.md).
//
// Exit status: 0 after SIGTERM/SIGINT (requests in flight are finished first),
// 75 (EX_TEMPFAIL) when another process holds the store, else the sysexits
// code of the failure.
#include <CLI/CLI.hpp>
#include <signal.h>
#include <systemd/sd-daemon.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "base/completion.h"
#include "base/log.h"
#include "base/status.h"
#include "config/config.h"
#include "service/daemon.h"
#include "store/rocks_store.h"
#include "store/store_server.h"

namespace {

int fail(const mail::Status& st) {
  std::fprintf(stderr, "mail-stored: %s\n", st.message().c_str());
  return mail::exit_code(st.code());
}

// "… is in use by pid N …" -> "N"
std::string holder_pid(const std::string& message) {
  auto at = message.find("pid ");
  if (at == std::string::npos) return "?";
  at += 4;
  auto end = message.find_first_not_of("0123456789", at);
  std::string pid = message.substr(at, end == std::string::npos ? std::string::npos : end - at);
  return pid.empty() ? "?" : pid;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Own the mail store's database and serve it to the other programs on a Unix socket."};
  app.name("mail-stored");
  std::string config_file, data_dir, socket_path;
  app.add_option("--config", config_file,
                 "configuration file (default: $MAIL_CONFIG, else ./mail.toml if present, else built-in defaults)")
      ->type_name("FILE");
  app.add_option("--data-dir", data_dir, "data directory (default: general.data_dir)")->type_name("DIR");
  app.add_option("--socket", socket_path, "socket to serve (default: store.socket, else <data-dir>/stored.sock)")
      ->type_name("FILE");
  mail::add_completion_option(app);
  CLI11_PARSE(app, argc, argv);

  auto config = mail::load_config(!config_file.empty() ? config_file : mail::default_config_path());
  if (!config.is_ok()) return fail(config.status());
  if (!data_dir.empty()) config->general.data_dir = data_dir;
  mail::log::init("mail-stored", mail::service::parse_log_level(config->general.log_level), config->general.syslog);
  if (socket_path.empty()) socket_path = config->store_socket();

  // Signals are taken by sigwait below; blocked before any thread starts so
  // that every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // Started as root (by hand or by mail-master): run as general.user from here on.
  if (mail::Status st = mail::service::drop_privileges(mail::service::service_user(*config), config->general.data_dir);
      !st.is_ok())
    return fail(st);

  mail::store::RocksStore::Options options;
  options.data_dir = config->general.data_dir;
  options.block_cache_mb = config->store.block_cache_mb;
  auto store = mail::store::RocksStore::open(options);
  if (!store.is_ok()) {
    if (store.code() == mail::Code::busy) {
      std::fprintf(stderr, "mail-stored: store is in use by pid %s\n", holder_pid(store.status().message()).c_str());
      return 75;  // EX_TEMPFAIL
    }
    return fail(store.status());
  }

  mail::store::StoreServer::Options server_options;
  server_options.max_clients = config->store.max_clients;
  server_options.max_frame_bytes = static_cast<uint32_t>(
      std::min<uint64_t>(config->store.max_frame_bytes, UINT32_MAX));
  mail::store::StoreServer server(**store, server_options);
  // Started by systemd (or the supervisor) with the socket already open?
  int inherited = sd_listen_fds(1);
  mail::Status listening = inherited > 0 ? server.adopt(SD_LISTEN_FDS_START) : server.listen(socket_path);
  if (!listening.is_ok()) return fail(listening);
  mail::log::info("serving {} on {}", config->general.data_dir,
                  inherited > 0 ? std::string("an inherited socket") : socket_path);
  if (std::getenv("NOTIFY_SOCKET")) sd_notify(0, "READY=1");

  int sig = 0;
  while (sigwait(&stop_signals, &sig) != 0) {
  }
  mail::log::info("stopping on signal {}", sig);
  if (std::getenv("NOTIFY_SOCKET")) sd_notify(0, "STOPPING=1");
  server.stop();
  store->reset();
  mail::log::info("stopped");
  return 0;
}
