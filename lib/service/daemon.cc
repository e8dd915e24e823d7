#include "service/daemon.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "base/log.h"

namespace mail::service {

namespace {

int g_signal_pipe[2] = {-1, -1};  // the handler writes 'T' (stop) or 'H' (reload)
int g_stop_pipe[2] = {-1, -1};    // written once when stopping; never drained
std::atomic<bool> g_stopping{false};
std::once_flag g_pipes_once;

void make_pipes() {
  std::call_once(g_pipes_once, [] {
    if (::pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0 || ::pipe2(g_stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
      log::error("cannot create pipes: {}", std::strerror(errno));
      std::abort();
    }
  });
}

void on_signal(int sig) {
  int saved = errno;
  char c = sig == SIGHUP ? 'H' : 'T';
  [[maybe_unused]] auto n = ::write(g_signal_pipe[1], &c, 1);
  errno = saved;
}

// Reads pending signal bytes: true if a stop was asked for.
bool drain_signals(const std::function<void()>& on_reload) {
  bool stop = false;
  char buf[64];
  ssize_t n;
  while ((n = ::read(g_signal_pipe[0], buf, sizeof buf)) > 0) {
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] == 'T') stop = true;
      else if (on_reload) on_reload();
      else log::info("SIGHUP: nothing to reload");
    }
  }
  return stop;
}

}  // namespace

const Listener* Context::listener(std::string_view name) const {
  for (const auto& l : listeners)
    if (l.name == name) return &l;
  return nullptr;
}

std::string service_user(const Config& config) {
  return config.general.user.empty() ? "mail" : config.general.user;
}

namespace {
Result<passwd*> lookup_user(const std::string& user) {
  passwd* pw = ::getpwnam(user.c_str());
  if (!pw) return error(Code::config, "user '" + user + "' does not exist (set general.user)");
  if (pw->pw_uid == 0) return error(Code::config, "general.user must not be root");
  return pw;
}
}  // namespace

Status own_data_dir(const std::string& user, const std::string& data_dir) {
  if (::geteuid() != 0 || data_dir.empty()) return Status::ok();
  MAIL_ASSIGN_OR_RETURN(passwd * pw, lookup_user(user));
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return error(Code::io, "cannot create " + data_dir + ": " + ec.message());
  if (::chown(data_dir.c_str(), pw->pw_uid, pw->pw_gid) != 0)
    return error(Code::io, "cannot chown " + data_dir + ": " + std::strerror(errno));
  for (auto it = std::filesystem::recursive_directory_iterator(data_dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    if (::lchown(it->path().c_str(), pw->pw_uid, pw->pw_gid) != 0)
      return error(Code::io, "cannot chown " + it->path().string() + ": " + std::strerror(errno));
  return Status::ok();
}

Status drop_privileges(const std::string& user, const std::string& data_dir) {
  if (::geteuid() != 0) return Status::ok();
  MAIL_ASSIGN_OR_RETURN(passwd * pw, lookup_user(user));
  MAIL_TRY(own_data_dir(user, data_dir));
  if (::setgroups(0, nullptr) != 0 || ::setgid(pw->pw_gid) != 0 || ::setuid(pw->pw_uid) != 0)
    return error(Code::denied, "cannot drop privileges to " + user + ": " + std::strerror(errno));
  if (::setuid(0) == 0) return error(Code::internal, "privileges could be regained after dropping them");
  log::debug("running as user {}", user);
  return Status::ok();
}

namespace {

std::string config_path(const CommonOptions& options) {
  return options.config_path.empty() ? default_config_path() : options.config_path;
}

}  // namespace

Result<Config> load_daemon_config(const std::string& program, const CommonOptions& options) {
  auto config = load_config(config_path(options));
  if (!config) log::init(program);
  return config;
}

log::Level parse_log_level(const std::string& name) {
  if (name == "debug") return log::Level::debug;
  if (name == "warn") return log::Level::warn;
  if (name == "error") return log::Level::error;
  return log::Level::info;
}

int exit_on(const Status& status) {
  log::error("{}", status.message());
  return exit_code(status.code());
}

Result<Context> prepare(std::string program, const CommonOptions& options, const std::vector<ListenerSpec>& specs) {
  Context ctx;
  ctx.program = program;
  MAIL_ASSIGN_OR_RETURN(ctx.config, load_config(config_path(options)));
  if (!options.data_dir.empty()) ctx.config.general.data_dir = options.data_dir;
  std::string level = options.log_level.empty() ? ctx.config.general.log_level : options.log_level;
  log::init(program, parse_log_level(level), ctx.config.general.syslog);
  install_signal_handlers();

  // Inherited sockets win: the supervisor or systemd chose them.
  std::vector<Listener> inherited = inherited_listeners();
  if (!inherited.empty()) {
    for (size_t i = 0; i < inherited.size(); ++i)
      if (inherited[i].name.empty() || inherited[i].name == "unknown")
        inherited[i].name = i < specs.size() ? specs[i].name : "listener" + std::to_string(i);
    ctx.listeners = std::move(inherited);
  } else {
    std::vector<ListenerSpec> wanted = specs;
    if (!options.listen.empty()) {
      for (auto& w : wanted) w.address.clear();
      for (const auto& item : options.listen) {
        auto eq = item.find('=');
        std::string name = eq == std::string::npos ? "" : item.substr(0, eq);
        std::string address = eq == std::string::npos ? item : item.substr(eq + 1);
        if (name.empty()) {
          if (wanted.empty()) return error(Code::config, "this program does not listen");
          name = wanted.front().name;
        }
        bool known = false;
        for (auto& w : wanted)
          if (w.name == name) {
            w.address = address;
            known = true;
          }
        if (!known) return error(Code::config, "unknown listener '" + name + "' in --listen " + item);
      }
    }
    for (const auto& w : wanted) {
      if (w.address.empty()) continue;
      MAIL_ASSIGN_OR_RETURN(ListenAddress a, parse_listen_address(w.address));
      MAIL_ASSIGN_OR_RETURN(int fd, open_listener(a));
      ctx.listeners.push_back(Listener{w.name, fd, a.str()});
    }
  }
  MAIL_TRY(drop_privileges(service_user(ctx.config), ctx.config.general.data_dir));
  return ctx;
}

void install_signal_handlers() {
  make_pipes();
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGHUP, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

bool stopping() { return g_stopping.load(); }

int stop_fd() {
  make_pipes();
  return g_stop_pipe[0];
}

void request_stop() {
  make_pipes();
  if (!g_stopping.exchange(true)) {
    char c = 'S';
    [[maybe_unused]] auto n = ::write(g_stop_pipe[1], &c, 1);
    [[maybe_unused]] auto m = ::write(g_signal_pipe[1], "T", 1);
  }
}

void wait_for_stop(const std::function<void()>& on_reload) {
  make_pipes();
  while (!g_stopping) {
    pollfd p{g_signal_pipe[0], POLLIN, 0};
    if (::poll(&p, 1, -1) < 0 && errno != EINTR) break;
    if (drain_signals(on_reload)) request_stop();
  }
}

Result<std::unique_ptr<store::Store>> connect_store(const Config& config, std::chrono::milliseconds wait) {
  store::StorePaths paths{config.general.data_dir};
  auto deadline = std::chrono::steady_clock::now() + wait;
  bool logged = false;
  for (;;) {
    auto opened = store::connect_store(paths);
    if (opened || opened.code() != Code::unavailable || std::chrono::steady_clock::now() >= deadline || stopping())
      return opened;
    if (!logged) log::info("waiting for mail-stored on {}", paths.socket_path());
    logged = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Result<Resources> open_resources(const Context& context) {
  const Config& cfg = context.config;
  Resources r;
  r.hostname = cfg.general.hostname;
  if (r.hostname.empty()) {
    char buf[256] = {};
    r.hostname = ::gethostname(buf, sizeof buf - 1) == 0 && buf[0] ? buf : "localhost";
  }
  auto tls = TlsContext::create_server(cfg.tls, cfg.general.data_dir, r.hostname);
  if (!tls) return error(tls.code(), "TLS: " + tls.status().message());
  r.tls = std::move(tls).value();
  auto store = connect_store(cfg, std::chrono::seconds(30));
  if (!store)
    return error(store.code(), "cannot open the store in " + cfg.general.data_dir + ": " + store.status().message());
  r.store = std::move(store).value();
  log::info("store: {} ({})", cfg.general.data_dir, r.store->backend_name());
  return r;
}

void notify_ready() { sd_notify(0, "READY=1"); }
void notify_stopping() { sd_notify(0, "STOPPING=1"); }

int serve(Context& ctx, const SessionHandler& handler, const ServeOptions& options) {
  make_pipes();
  std::mutex mu;
  std::condition_variable idle;
  uint32_t active = 0;

  std::vector<pollfd> fds;
  for (const auto& l : ctx.listeners) {
    ::fcntl(l.fd, F_SETFL, ::fcntl(l.fd, F_GETFL) | O_NONBLOCK);
    fds.push_back(pollfd{l.fd, POLLIN, 0});
    log::info("listening on {} ({})", l.address, l.name);
  }
  fds.push_back(pollfd{g_signal_pipe[0], POLLIN, 0});
  notify_ready();

  while (!g_stopping) {
    for (auto& p : fds) p.revents = 0;
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      log::error("poll: {}", std::strerror(errno));
      break;
    }
    if (fds.back().revents & POLLIN) {
      if (drain_signals(options.on_reload)) request_stop();
    }
    for (size_t i = 0; i + 1 < fds.size() && !g_stopping; ++i) {
      if (!(fds[i].revents & POLLIN)) continue;
      for (;;) {
        int fd = ::accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) break;  // EAGAIN: drained; other errors: try again on the next poll
        {
          std::lock_guard lock(mu);
          if (active >= options.max_connections) {
            log::warn("connection limit {} reached; refusing {}", options.max_connections, peer_address(fd));
            ::close(fd);
            continue;
          }
          ++active;
        }
        const Listener& listener = ctx.listeners[i];
        std::thread([&, fd] {
          try {
            handler(fd, listener);
          } catch (const std::exception& e) {
            log::error("session on {} failed: {}", listener.name, e.what());
          }
          std::lock_guard lock(mu);
          --active;
          idle.notify_all();
        }).detach();
      }
    }
  }

  notify_stopping();
  for (const auto& l : ctx.listeners) ::close(l.fd);
  std::unique_lock lock(mu);
  if (active) log::info("stopping: waiting up to {} s for {} session(s)", options.drain_seconds, active);
  bool drained = idle.wait_for(lock, std::chrono::seconds(options.drain_seconds), [&] { return active == 0; });
  if (!drained) log::warn("stopping with {} session(s) still open", active);
  // Detached session threads still reference these locals; leave while holding
  // the lock so none of them touches them after we return.
  if (!drained) std::_Exit(0);
  return 0;
}

}  // namespace mail::service
