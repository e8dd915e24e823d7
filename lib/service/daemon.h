// The daemon skeleton every server program shares: configuration, logging,
// listening sockets (inherited, --listen, or the configuration's), privilege
// drop, signals (TERM/INT stop, HUP reloads), readiness for systemd, and a
// thread-per-connection accept loop with a graceful drain. A daemon's main()
// parses its options, calls prepare(), then serve() with its session handler.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "base/log.h"
#include "config/config.h"
#include "service/listen.h"
#include "service/tls.h"
#include "store/store.h"

namespace mail::service {

// Options every daemon takes on its command line (service/cli.h adds them).
struct CommonOptions {
  std::string config_path;          // --config; empty: default_config_path()
  std::string data_dir;             // --data-dir; overrides general.data_dir
  std::vector<std::string> listen;  // --listen [NAME=]ADDR, repeatable
  std::string log_level;            // --log-level
};

struct Context {
  std::string program;
  Config config;
  std::vector<Listener> listeners;
  const Listener* listener(std::string_view name) const;
};

// A listener a daemon wants: its name and the configured address ("" = off).
struct ListenerSpec {
  std::string name;
  std::string address;
};

// Loads the configuration, starts logging, takes the listeners (inherited ones
// by name; else --listen NAME=ADDR, a bare ADDR meaning the first spec; else
// the specs' configured addresses), then drops root privileges to
// general.user (default "mail"). Errors are config/io/denied Statuses.
Result<Context> prepare(std::string program, const CommonOptions& options, const std::vector<ListenerSpec>& specs);

// The configuration --config (or the default path) names, for what a daemon
// must read before prepare(). On error logging is started as `program`, so
// main() can report it with exit_on().
Result<Config> load_daemon_config(const std::string& program, const CommonOptions& options);

// general.log_level's names ("debug", "info", "warn", "error"); others: info.
log::Level parse_log_level(const std::string& name);

// For a daemon's main(): logs why it cannot go on and returns the exit code
// (sysexits) that `status` maps to.
int exit_on(const Status& status);

// The user daemons run as when started as root: general.user, default "mail".
std::string service_user(const Config& config);

// Makes `data_dir` (created if missing) and everything in it owned by `user`, so
// that daemons can use it after dropping root. A no-op when not root.
Status own_data_dir(const std::string& user, const std::string& data_dir);

// When root: own_data_dir(), then drop to `user` for good. A no-op otherwise.
Status drop_privileges(const std::string& user, const std::string& data_dir);

struct ServeOptions {
  uint32_t max_connections = 1000;
  uint32_t drain_seconds = 30;         // how long SIGTERM waits for sessions
  std::function<void()> on_reload;     // SIGHUP
};

// A session: owns `fd` (closes it when done); runs on its own thread.
using SessionHandler = std::function<void(int fd, const Listener& listener)>;

// Accepts on every listener until SIGTERM/SIGINT or request_stop(), then waits
// up to drain_seconds for sessions to end. Tells systemd READY=1 once
// accepting. Returns the exit code (0).
int serve(Context& context, const SessionHandler& handler, const ServeOptions& options = {});

// For sessions: true once the daemon is stopping; the fd becomes readable then,
// so a session can poll it beside its socket.
bool stopping();
int stop_fd();
void request_stop();

// Installs the stop/reload signal handling without serving (for daemons with
// their own loop, such as mail-stored). wait_for_stop() blocks until a stop
// signal, calling on_reload for each SIGHUP.
void install_signal_handlers();
void wait_for_stop(const std::function<void()>& on_reload = {});

// The store for a protocol daemon: always through mail-stored, never opened
// directly (a daemon that took the database would lock mail-stored out when it
// restarts). Waits up to `wait` for mail-stored to answer, as when the stack is
// starting or the store is being restarted after a crash.
Result<std::unique_ptr<store::Store>> connect_store(const Config& config, std::chrono::milliseconds wait);

// What a protocol daemon needs once prepare() has run: its host name
// (general.hostname, else the machine's), its TLS context (tls.* or the demo's
// self-signed pair) and the store through mail-stored.
struct Resources {
  std::string hostname;
  std::shared_ptr<TlsContext> tls;
  std::unique_ptr<store::Store> store;
};
// Errors say which of the three failed ("TLS: ...", "cannot open the store ...").
Result<Resources> open_resources(const Context& context);

// sd_notify(READY=1 / STOPPING=1) when NOTIFY_SOCKET is set.
void notify_ready();
void notify_stopping();

}  // namespace mail::service
