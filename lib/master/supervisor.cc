#include "master/supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <pwd.h>
#include <grp.h>
#include <stddef.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "admin/admin.h"
#include "base/lines.h"
#include "base/log.h"
#include "service/daemon.h"
#include "service/listen.h"
#include "store/store.h"

namespace mail::master {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

std::string control_socket_path(const std::string& data_dir) { return data_dir + "/master.sock"; }

namespace {

// Listeners of the built-in daemons, from their protocol sections.
std::vector<ListenSpec> section_listeners(const Config& config, const std::string& service) {
  std::vector<std::pair<std::string, std::string>> all;
  if (service == "smtpd")
    all = {{"mx", config.smtp.listen_mx},
           {"submission", config.smtp.listen_submission},
           {"submissions", config.smtp.listen_submissions},
           {"lmtp", config.smtp.listen_lmtp}};
  else if (service == "imapd")
    all = {{"imap", config.imap.listen}, {"imaps", config.imap.listen_tls}};
  std::vector<ListenSpec> out;
  for (auto& entry : all)
    if (!entry.second.empty()) out.push_back({entry.first, entry.second});
  return out;
}

}  // namespace

std::vector<ServiceSpec> services_for(const Config& config, const std::string& bin_dir) {
  const auto builtin = default_services();
  std::vector<ServiceSpec> out;
  for (const auto& [name, svc] : config.services) {
    if (!svc.enabled) continue;
    ServiceSpec spec;
    spec.name = name;
    spec.program = svc.program;
    spec.args = svc.args;
    spec.processes = svc.processes;
    spec.user = svc.user;
    spec.notify = svc.notify;
    spec.is_store = name == "store";
    for (const auto& entry : svc.listen) {
      size_t eq = entry.find('=');
      spec.listen.push_back({entry.substr(0, eq), entry.substr(eq + 1)});
    }
    if (svc.listen.empty()) spec.listen = section_listeners(config, name);
    // A built-in program that is not installed is skipped; the admin's own must exist.
    bool is_builtin = builtin.count(name) && builtin.at(name).program == svc.program;
    fs::path program = fs::path(svc.program).is_absolute() ? fs::path(svc.program) : fs::path(bin_dir) / svc.program;
    if (is_builtin && !fs::exists(program)) continue;
    out.push_back(std::move(spec));
  }
  std::stable_partition(out.begin(), out.end(), [](const ServiceSpec& s) { return s.is_store; });
  return out;
}

namespace {

// waiting: not started because the store is not ready yet.
enum class State { stopped, waiting, starting, running, backoff, throttled, stopping };

const char* state_name(State s) {
  switch (s) {
    case State::stopped: return "stopped";
    case State::waiting: return "waiting";
    case State::starting: return "starting";
    case State::running: return "running";
    case State::backoff: return "restarting";
    case State::throttled: return "throttled";
    case State::stopping: return "stopping";
  }
  return "?";
}

// A child that has not said READY=1 by then is killed and counts as a crash.

// One process of a service (a service with `processes = N` has N of them).
struct Child {
  ServiceSpec spec;
  uint32_t index = 0;
  State state = State::stopped;
  pid_t pid = 0;
  Clock::time_point started{};
  Clock::time_point next_start{};  // backoff/throttled: when to try again
  Clock::time_point ready_by{};    // starting: the deadline for READY=1
  uint32_t restarts = 0;
  std::deque<Clock::time_point> recent_crashes;
  bool held = false;      // stopped by the admin: not restarted
  bool replace = false;   // reload changed it: start again with the new spec once stopped
  bool retire = false;    // reload removed it: forget it once stopped
  int out_fd = -1;        // its stdout+stderr
  std::string partial;
};

uint64_t pss_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("Pss:", 0) == 0) return std::strtoull(line.c_str() + 4, nullptr, 10);
  return 0;
}

// The datagram socket children report readiness on, the sd_notify protocol
// (NOTIFY_SOCKET), so a daemon says READY=1 the same way to systemd and to us.
// Abstract, so a child that dropped root can still reach it; SO_PASSCRED tells
// which child spoke.
Result<std::pair<int, std::string>> open_notify_socket() {
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return error(Code::io, std::string("notify socket: ") + std::strerror(errno));
  std::string name = "mailtk-master-" + std::to_string(::getpid());
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path + 1, name.data(), name.size());  // sun_path[0] = 0: abstract
  int on = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) != 0 ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&sa), static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size())) != 0) {
    int e = errno;
    ::close(fd);
    return error(Code::io, std::string("notify socket: ") + std::strerror(e));
  }
  return std::make_pair(fd, "@" + name);
}

class Supervisor {
 public:
  explicit Supervisor(MasterOptions options) : options_(std::move(options)) {}
  int run();

 private:
  Status load();
  Result<int> socket_for(const std::string& address);
  // Forks and runs the child; a non-store child waits until the store is ready.
  void start(Child& c);
  void stop_child(Child& c, int sig = SIGTERM);
  bool store_ready() const;
  void on_ready(Child& c);
  void read_notify();
  void check_start_deadlines();
  std::chrono::seconds ready_timeout() const { return std::chrono::seconds(options_.ready_timeout_seconds); }
  void reap();
  void forget_retired();  // drops retired children that have exited
  void on_exit(Child& c, int status);
  void read_output(Child& c);
  void emit_line(const Child& c, std::string_view line);
  void add_service(const ServiceSpec& spec, uint32_t first_index = 0);
  void reload();
  void shutdown();
  void handle_control(int fd);
  Json status_json();
  Json admin_json(const std::string& request);
  std::vector<Child*> instances(const std::string& name);
  int poll_timeout_ms();
  void start_due();
  void announce_ready();

  MasterOptions options_;
  Config config_;
  std::string data_dir_;
  std::vector<std::unique_ptr<Child>> children_;
  std::map<std::string, int> sockets_;  // address -> listening fd, kept across reloads
  int signal_fd_ = -1;
  int control_fd_ = -1;
  int notify_fd_ = -1;
  std::string notify_address_;
  bool stop_ = false;
  bool announced_ = false;  // "stack started" logged and READY=1 sent to our own supervisor
  std::ofstream log_file_;
  std::unique_ptr<store::Store> store_;  // for admin requests; opened on first use
  Clock::time_point started_ = Clock::now();
};

std::vector<Child*> Supervisor::instances(const std::string& name) {
  std::vector<Child*> out;
  for (auto& c : children_)
    if (c->spec.name == name && !c->retire) out.push_back(c.get());
  return out;
}

Status Supervisor::load() {
  MAIL_ASSIGN_OR_RETURN(config_, load_config(options_.config_path));
  if (!options_.data_dir.empty()) config_.general.data_dir = options_.data_dir;
  data_dir_ = fs::absolute(config_.general.data_dir).lexically_normal().string();
  if (data_dir_.size() > 1 && data_dir_.back() == '/') data_dir_.pop_back();
  return Status::ok();
}

Result<int> Supervisor::socket_for(const std::string& address) {
  auto it = sockets_.find(address);
  if (it != sockets_.end()) return it->second;
  MAIL_ASSIGN_OR_RETURN(service::ListenAddress a, service::parse_listen_address(address));
  MAIL_ASSIGN_OR_RETURN(int fd, service::open_listener(a));
  sockets_[address] = fd;
  return fd;
}

bool Supervisor::store_ready() const {
  for (auto& c : children_)
    if (c->spec.is_store) return c->state == State::running;
  return true;  // no store service: a store run elsewhere, or direct access
}

void Supervisor::start(Child& c) {
  if (!c.spec.is_store && !store_ready()) {
    c.state = State::waiting;
    return;
  }
  std::vector<int> fds;
  std::string names;
  for (const auto& l : c.spec.listen) {
    auto fd = socket_for(l.address);
    if (!fd) {
      log::error("{}: {}; not started", c.spec.name, fd.status().message());
      c.state = State::throttled;
      c.next_start = Clock::now() + std::chrono::seconds(60);
      return;
    }
    fds.push_back(*fd);
    names += (names.empty() ? "" : ":") + l.name;
  }
  // A service with its own user is dropped to it here (the daemon's own drop
  // to general.user is then a no-op); otherwise the daemon drops itself.
  uid_t uid = 0;
  gid_t gid = 0;
  bool drop = !c.spec.user.empty() && ::geteuid() == 0;
  if (drop) {
    passwd* pw = ::getpwnam(c.spec.user.c_str());
    if (!pw) {
      log::error("{}: no such user: {}; not started", c.spec.name, c.spec.user);
      c.state = State::throttled;
      c.next_start = Clock::now() + std::chrono::seconds(60);
      return;
    }
    uid = pw->pw_uid;
    gid = pw->pw_gid;
  }
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    log::error("{}: pipe: {}", c.spec.name, std::strerror(errno));
    return;
  }
  std::string program = fs::path(c.spec.program).is_absolute() ? c.spec.program
                                                                : (fs::path(options_.bin_dir) / c.spec.program).string();
  // Our own programs (mail-*) take --data-dir/--config; any program finds the
  // same in MAIL_DATA_DIR/MAIL_CONFIG.
  std::vector<std::string> args = {program};
  if (fs::path(program).filename().string().rfind("mail-", 0) == 0) {
    args.insert(args.end(), {"--data-dir", data_dir_});
    if (!config_.source.empty()) args.insert(args.end(), {"--config", config_.source});
  }
  args.insert(args.end(), c.spec.args.begin(), c.spec.args.end());

  pid_t pid = ::fork();
  if (pid < 0) {
    log::error("{}: fork: {}", c.spec.name, std::strerror(errno));
    ::close(out[0]);
    ::close(out[1]);
    return;
  }
  if (pid == 0) {
    // Own process group: a Ctrl-C on the terminal reaches only the supervisor,
    // which then stops the children in order.
    ::setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    std::vector<int> high;
    for (int fd : fds) high.push_back(::fcntl(fd, F_DUPFD_CLOEXEC, 1000));
    for (size_t i = 0; i < high.size(); ++i) ::dup2(high[i], 3 + static_cast<int>(i));  // dup2 clears CLOEXEC
    if (!fds.empty()) {
      ::setenv("LISTEN_FDS", std::to_string(fds.size()).c_str(), 1);
      ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
      ::setenv("LISTEN_FDNAMES", names.c_str(), 1);
    } else {
      ::unsetenv("LISTEN_FDS");
      ::unsetenv("LISTEN_PID");
      ::unsetenv("LISTEN_FDNAMES");
    }
    if (notify_fd_ >= 0) ::setenv("NOTIFY_SOCKET", notify_address_.c_str(), 1);
    ::setenv("MAIL_DATA_DIR", data_dir_.c_str(), 1);
    if (!config_.source.empty()) ::setenv("MAIL_CONFIG", config_.source.c_str(), 1);
    if (drop && (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0)) {
      std::fprintf(stderr, "cannot switch to user %s: %s\n", c.spec.user.c_str(), std::strerror(errno));
      ::_exit(77);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(program.c_str(), argv.data());
    std::fprintf(stderr, "cannot run %s: %s\n", program.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  ::close(out[1]);
  ::fcntl(out[0], F_SETFL, O_NONBLOCK);
  c.out_fd = out[0];
  c.pid = pid;
  c.started = Clock::now();
  log::info("started {} (pid {})", c.spec.name, pid);
  if (c.spec.notify && notify_fd_ >= 0) {
    c.state = State::starting;
    c.ready_by = c.started + ready_timeout();
  } else {
    on_ready(c);
  }
}

void Supervisor::on_ready(Child& c) {
  c.state = State::running;
  log::debug("{} (pid {}) is ready", c.spec.name, c.pid);
  if (!c.spec.is_store) return;
  for (auto& other : children_)
    if (other->state == State::waiting && !other->held) start(*other);
}

void Supervisor::read_notify() {
  for (;;) {
    char buf[4096];
    iovec iov{buf, sizeof buf - 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(notify_fd_, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) return;
    const ucred* cred = nullptr;
    for (cmsghdr* h = CMSG_FIRSTHDR(&msg); h; h = CMSG_NXTHDR(&msg, h))
      if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_CREDENTIALS)
        cred = reinterpret_cast<const ucred*>(CMSG_DATA(h));
    if (!cred) continue;
    std::string_view text(buf, static_cast<size_t>(n));
    bool ready = false;
    while (!text.empty()) ready = next_line(text) == "READY=1" || ready;  // newline-separated VAR=value
    if (!ready) continue;
    for (auto& c : children_)
      if (c->pid == cred->pid && c->state == State::starting) on_ready(*c);
  }
}

void Supervisor::check_start_deadlines() {
  auto now = Clock::now();
  for (auto& c : children_)
    if (c->state == State::starting && c->pid > 0 && now >= c->ready_by) {
      log::error("{} (pid {}) did not report ready in {} s; killing it", c->spec.name, c->pid,
                 options_.ready_timeout_seconds);
      ::kill(c->pid, SIGKILL);  // its exit then counts as a crash
      c->ready_by = now + ready_timeout();
    }
}

void Supervisor::stop_child(Child& c, int sig) {
  if (c.pid > 0) {
    ::kill(c.pid, sig);
    c.state = State::stopping;
  } else if (c.state != State::stopping) {
    c.state = State::stopped;
  }
}

void Supervisor::emit_line(const Child& c, std::string_view line) {
  // Daemons log "level program[pid]: message"; anything else gets tagged.
  std::string out;
  if (line.find('[') != std::string_view::npos && line.find("]: ") != std::string_view::npos)
    out = std::string(line);
  else
    out = "info " + c.spec.name + "[" + std::to_string(c.pid) + "]: " + std::string(line);
  std::fprintf(stderr, "%s\n", out.c_str());
  if (log_file_) log_file_ << out << '\n' << std::flush;
}

void Supervisor::read_output(Child& c) {
  if (c.out_fd < 0) return;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(c.out_fd, buf, sizeof buf);
    if (n > 0) {
      c.partial.append(buf, static_cast<size_t>(n));
      size_t nl;
      while ((nl = c.partial.find('\n')) != std::string::npos) {
        emit_line(c, std::string_view(c.partial).substr(0, nl));
        c.partial.erase(0, nl + 1);
      }
      if (c.partial.size() > 65536) {
        emit_line(c, c.partial);
        c.partial.clear();
      }
      continue;
    }
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      if (!c.partial.empty()) emit_line(c, c.partial);
      c.partial.clear();
      ::close(c.out_fd);
      c.out_fd = -1;
    }
    return;
  }
}

void Supervisor::on_exit(Child& c, int status) {
  read_output(c);
  std::string how = WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                         : "exited with status " + std::to_string(WEXITSTATUS(status));
  bool expected = c.state == State::stopping;
  c.pid = 0;
  if (expected || stop_ || c.retire) {
    log::info("{} stopped ({})", c.spec.name, how);
    c.state = State::stopped;
    if (c.replace && !stop_ && !c.retire) {
      c.replace = false;
      start(c);
    }
    return;
  }
  auto now = Clock::now();
  // A child that ran for a while before dying starts its backoff afresh.
  if (now - c.started > std::chrono::seconds(30)) c.recent_crashes.clear();
  c.recent_crashes.push_back(now);
  while (!c.recent_crashes.empty() && now - c.recent_crashes.front() > std::chrono::seconds(60))
    c.recent_crashes.pop_front();
  ++c.restarts;
  if (c.recent_crashes.size() >= 5) {
    c.state = State::throttled;
    c.next_start = now + std::chrono::seconds(60);
    log::error("{} {}; crashed {} times in a minute: throttled, next try in 60 s", c.spec.name, how,
               c.recent_crashes.size());
    return;
  }
  auto delay = std::chrono::milliseconds(100) * (1u << (c.recent_crashes.size() - 1));
  c.state = State::backoff;
  c.next_start = now + delay;
  log::warn("{} {}; restarting in {} ms", c.spec.name, how, delay.count());
}

void Supervisor::reap() {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    for (auto& c : children_)
      if (c->pid == pid) on_exit(*c, status);
  }
}

void Supervisor::forget_retired() {
  std::erase_if(children_, [](const std::unique_ptr<Child>& c) { return c->retire && c->pid == 0; });
}

int Supervisor::poll_timeout_ms() {
  int timeout = -1;
  auto now = Clock::now();
  auto consider = [&](Clock::time_point when) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(when - now).count();
    int t = static_cast<int>(std::clamp<int64_t>(ms, 0, 60000));
    timeout = timeout < 0 ? t : std::min(timeout, t);
  };
  for (auto& c : children_) {
    if ((c->state == State::backoff || c->state == State::throttled) && !c->held) consider(c->next_start);
    if (c->state == State::starting) consider(c->ready_by);
  }
  return timeout;
}

void Supervisor::start_due() {
  auto now = Clock::now();
  for (auto& c : children_) {
    if ((c->state == State::backoff || c->state == State::throttled) && !c->held && now >= c->next_start) {
      start(*c);
    }
  }
}

// Once every child has settled (ready, or failed and waiting for a retry):
// log how long the start took and tell our own supervisor (systemd) we are ready.
void Supervisor::announce_ready() {
  if (announced_) return;
  for (auto& c : children_)
    if (c->state == State::starting || c->state == State::waiting) return;
  announced_ = true;
  log::info("stack started in {} ms",
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_).count());
  service::notify_ready();
}

void Supervisor::add_service(const ServiceSpec& spec, uint32_t first_index) {
  for (uint32_t i = first_index; i < spec.processes; ++i) {
    children_.push_back(std::make_unique<Child>());
    children_.back()->spec = spec;
    children_.back()->index = i;
    start(*children_.back());
  }
}

void Supervisor::reload() {
  log::info("reloading configuration");
  Config old = config_;
  if (Status st = load(); !st.is_ok()) {
    log::error("reload failed, keeping the running configuration: {}", st.message());
    config_ = old;
    return;
  }
  auto wanted = services_for(config_, options_.bin_dir);
  // Services no longer wanted stop for good.
  for (auto& c : children_) {
    bool still = std::any_of(wanted.begin(), wanted.end(), [&](const ServiceSpec& s) { return s.name == c->spec.name; });
    if (!still && !c->retire) {
      log::info("{}: removed from the configuration, stopping", c->spec.name);
      c->retire = true;
      stop_child(*c);
    }
  }
  for (auto& spec : wanted) {
    std::vector<Child*> running = instances(spec.name);
    if (running.empty()) {
      add_service(spec);
      continue;
    }
    // Settings a daemon reads from the file also count: restart on any change of its section.
    bool changed = !(running.front()->spec == spec) || !(old.general == config_.general) || !(old.tls == config_.tls) ||
                   (spec.name == "smtpd" && !(old.smtp == config_.smtp)) ||
                   (spec.name == "imapd" && !(old.imap == config_.imap)) ||
                   (spec.name == "queued" && !(old.queue == config_.queue)) ||
                   (spec.name == "store" && !(old.store == config_.store));
    if (!changed) continue;
    log::info("{}: settings changed, restarting", spec.name);
    for (Child* c : running) {
      if (c->index >= spec.processes) {  // fewer processes now
        c->retire = true;
        stop_child(*c);
        continue;
      }
      c->spec = spec;
      if (c->pid > 0) {
        c->replace = true;
        stop_child(*c);
      } else if (!c->held) {
        start(*c);
      }
    }
    add_service(spec, static_cast<uint32_t>(running.size()));
  }
  reap();
  // Close sockets no service uses any more.
  for (auto it = sockets_.begin(); it != sockets_.end();) {
    bool used = false;
    for (auto& c : children_)
      if (!c->retire)
        for (auto& l : c->spec.listen) used = used || l.address == it->first;
    if (!used) {
      ::close(it->second);
      it = sockets_.erase(it);
    } else {
      ++it;
    }
  }
}

// One entry per service; a service of several processes reports the state
// of the least healthy one, every pid, and their summed memory and restarts.
Json Supervisor::status_json() {
  Json services = Json::array();
  auto now = Clock::now();
  std::vector<std::string> names;
  for (auto& c : children_)
    if (!c->retire && std::find(names.begin(), names.end(), c->spec.name) == names.end()) names.push_back(c->spec.name);
  for (const auto& name : names) {
    std::vector<Child*> all = instances(name);
    Child& first = *all.front();
    Json listen = Json::array();
    for (auto& l : first.spec.listen) listen.push_back(l.name + "=" + l.address);
    Json pids = Json::array();
    uint64_t pss = 0;
    uint32_t restarts = 0;
    std::string state;
    for (Child* c : all) {
      std::string s = c->held && c->pid == 0 ? "held" : state_name(c->state);
      if (state.empty() || state == "running") state = s;
      if (c->pid) {
        pids.push_back(c->pid);
        pss += pss_kb(c->pid);
      }
      restarts += c->restarts;
    }
    services.push_back({{"name", name},
                        {"state", state},
                        {"pid", first.pid},
                        {"pids", pids},
                        {"processes", all.size()},
                        {"user", first.spec.user},
                        {"uptime_s", first.pid ? std::chrono::duration_cast<std::chrono::seconds>(now - first.started).count() : 0},
                        {"restarts", restarts},
                        {"pss_kb", pss},
                        {"listen", listen}});
  }
  return {{"ok", true},
          {"version", 1},
          {"master_pid", ::getpid()},
          {"master_pss_kb", pss_kb(::getpid())},
          {"uptime_s", std::chrono::duration_cast<std::chrono::seconds>(now - started_).count()},
          {"data_dir", data_dir_},
          {"services", services}};
}

// Control protocol (version 1): one request line, one JSON answer, then close.
//   status | reload | stop | start NAME | stop NAME | restart NAME
//   admin {"op": "account add", "args": {"ADDRESS": ["a@b"], "password": ["..."]}}
void Supervisor::handle_control(int fd) {
  std::string line;
  char buf[512];
  pollfd p{fd, POLLIN, 0};
  while (line.find('\n') == std::string::npos && line.size() < 4096 && ::poll(&p, 1, 2000) > 0) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  line = line.substr(0, line.find('\n'));
  if (!line.empty() && line.back() == '\r') line.pop_back();
  std::string verb = line.substr(0, line.find(' '));
  std::string arg = line.find(' ') == std::string::npos ? "" : line.substr(line.find(' ') + 1);
  Json answer;
  auto fail = [&](const std::string& code, const std::string& message) {
    answer = {{"ok", false}, {"code", code}, {"error", message}};
  };
  if (verb == "status") {
    answer = status_json();
  } else if (verb == "admin") {
    answer = admin_json(arg);
  } else if (verb == "reload") {
    reload();
    answer = {{"ok", true}};
  } else if (verb == "stop" && arg.empty()) {
    stop_ = true;
    answer = {{"ok", true}};
  } else if (verb == "start" || verb == "stop" || verb == "restart") {
    std::vector<Child*> all = instances(arg);
    if (all.empty()) {
      fail("not_found", "no such service: " + arg);
    } else {
      for (Child* c : all) {
        if (verb == "stop") {
          c->held = true;
          stop_child(*c);
        } else if (verb == "start") {
          c->held = false;
          if (c->pid == 0) start(*c);
        } else {
          c->held = false;
          if (c->pid > 0) {
            c->replace = true;
            stop_child(*c);
          } else {
            start(*c);
          }
        }
      }
      answer = {{"ok", true}};
    }
  } else {
    fail("invalid", "unknown control command: " + line);
  }
  std::string out = answer.dump() + "\n";
  [[maybe_unused]] auto n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
  ::close(fd);
}

// An operation of the admin table (lib/admin), the same ones mailctl runs,
// through the stack's store daemon.
Json Supervisor::admin_json(const std::string& request) {
  auto fail = [](Code code, const std::string& message) {
    return Json{{"ok", false}, {"code", std::string(code_name(code))}, {"error", message}};
  };
  Json req = Json::parse(request, nullptr, false);
  if (req.is_discarded() || !req.is_object() || !req.contains("op") || !req["op"].is_string())
    return fail(Code::invalid, "admin: expected {\"op\": ..., \"args\": {...}}");
  const admin::Operation* op = admin::find_operation(req["op"].get<std::string>());
  if (!op) return fail(Code::invalid, "admin: no such operation: " + req["op"].get<std::string>());
  admin::Args args;
  if (req.contains("args") && req["args"].is_object()) {
    for (const auto& [name, values] : req["args"].items()) {
      if (!values.is_array()) return fail(Code::invalid, "admin: argument " + name + " must be a list");
      for (const auto& v : values) {
        if (!v.is_string()) return fail(Code::invalid, "admin: argument " + name + " must hold strings");
        args.values[name].push_back(v.get<std::string>());
      }
    }
  }
  if (!store_) {
    auto opened = store::connect_store({data_dir_});
    if (!opened) return fail(opened.code(), opened.status().message());
    store_ = std::move(opened).value();
  }
  auto out = admin::run(*op, *store_, args);
  if (!out) return fail(out.code(), out.status().message());
  Json doc = out->json.empty() ? Json() : Json::parse(out->json, nullptr, false);
  return Json{{"ok", true}, {"columns", out->columns}, {"rows", out->rows}, {"json", doc}};
}

void Supervisor::shutdown() {
  store_.reset();
  log::info("stopping the stack");
  service::notify_stopping();
  for (auto& [address, fd] : sockets_) ::close(fd);
  sockets_.clear();
  auto stop_group = [&](bool store, std::chrono::seconds limit) {
    for (auto& c : children_)
      if (c->spec.is_store == store && c->pid > 0) stop_child(*c);
    auto deadline = Clock::now() + limit;
    auto alive = [&] {
      for (auto& c : children_)
        if (c->spec.is_store == store && c->pid > 0) return true;
      return false;
    };
    while (alive() && Clock::now() < deadline) {
      for (auto& c : children_) read_output(*c);
      reap();
      ::usleep(10000);
    }
    for (auto& c : children_)
      if (c->spec.is_store == store && c->pid > 0) {
        log::warn("{} (pid {}) did not stop in time; killing it", c->spec.name, c->pid);
        ::kill(c->pid, SIGKILL);
      }
    while (alive()) {
      reap();
      ::usleep(10000);
    }
  };
  stop_group(false, std::chrono::seconds(options_.drain_seconds));
  stop_group(true, std::chrono::seconds(30));  // the store last, so sessions could finish their writes
}


int Supervisor::run() {
  if (Status st = load(); !st.is_ok()) {
    log::error("{}", st.message());
    return exit_code(st.code());
  }
  log::init("mail-master", config_.general.log_level == "debug" ? log::Level::debug : log::Level::info,
            config_.general.syslog);
  std::error_code ec;
  fs::create_directories(data_dir_ + "/log", ec);
  log_file_.open(data_dir_ + "/log/mail.log", std::ios::app);

  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&mask, s);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  signal_fd_ = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

  auto control = service::parse_listen_address("unix:" + control_socket_path(data_dir_));
  if (control) {
    auto fd = service::open_listener(*control);
    if (!fd) {
      log::error("{}", fd.status().message());
      return exit_code(fd.status().code());
    }
    control_fd_ = *fd;
  }
  if (auto notify = open_notify_socket()) {
    notify_fd_ = notify->first;
    notify_address_ = notify->second;
  } else {
    log::warn("{}; children count as ready once started", notify.status().message());
  }

  // Root binds the ports, then the children drop to the configured user: they
  // must be able to write the data directory.
  if (Status st = service::own_data_dir(service::service_user(config_), data_dir_); !st.is_ok()) {
    log::error("{}", st.message());
    return exit_code(st.code());
  }

  started_ = Clock::now();
  // The store first: the others wait in `waiting` until it reports ready.
  for (auto& spec : services_for(config_, options_.bin_dir)) add_service(spec);

  while (!stop_) {
    announce_ready();
    std::vector<pollfd> fds = {{signal_fd_, POLLIN, 0}, {control_fd_, POLLIN, 0}, {notify_fd_, POLLIN, 0}};
    std::vector<Child*> owners = {nullptr, nullptr, nullptr};
    for (auto& c : children_)
      if (c->out_fd >= 0) {
        fds.push_back({c->out_fd, POLLIN, 0});
        owners.push_back(c.get());
      }
    int n = ::poll(fds.data(), fds.size(), poll_timeout_ms());
    if (n < 0 && errno != EINTR) break;
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si;
      while (::read(signal_fd_, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGCHLD) reap();
        else if (si.ssi_signo == SIGHUP) reload();
        else stop_ = true;
      }
    }
    if (fds[2].revents & POLLIN) read_notify();
    for (size_t i = 3; i < fds.size(); ++i)
      if (fds[i].revents) read_output(*owners[i]);
    if (fds[1].revents & POLLIN) {
      int fd = ::accept4(control_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) handle_control(fd);
    }
    reap();
    // Only here: the poll set above holds raw pointers to the children.
    forget_retired();
    check_start_deadlines();
    if (!stop_) start_due();
  }
  shutdown();
  ::close(control_fd_);
  ::unlink(control_socket_path(data_dir_).c_str());
  if (notify_fd_ >= 0) ::close(notify_fd_);
  log::info("stack stopped");
  return 0;
}

}  // namespace

int run_supervisor(const MasterOptions& options) {
  Supervisor s(options);
  return s.run();
}

}  // namespace mail::master
