#include "master/supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
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
#include "base/log.h"
#include "service/daemon.h"
#include "service/listen.h"
#include "store/store.h"

namespace mail::master {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

std::string control_socket_path(const std::string& data_dir) { return data_dir + "/master.sock"; }

std::vector<ServiceSpec> services_for(const Config& config, const std::string& bin_dir) {
  std::vector<ServiceSpec> out;
  auto add = [&](ServiceSpec s) {
    if (fs::exists(fs::path(bin_dir) / s.program)) out.push_back(std::move(s));
  };
  add({"store", "mail-stored", {}, {}, true, true});
  ServiceSpec smtpd{"smtpd", "mail-smtpd", {}, {}, true, false};
  for (const auto& [name, address] : std::vector<std::pair<std::string, std::string>>{
           {"mx", config.smtp.listen_mx},
           {"submission", config.smtp.listen_submission},
           {"submissions", config.smtp.listen_submissions},
           {"lmtp", config.smtp.listen_lmtp}})
    if (!address.empty()) smtpd.listen.push_back({name, address});
  add(smtpd);
  ServiceSpec imapd{"imapd", "mail-imapd", {}, {}, true, false};
  if (!config.imap.listen.empty()) imapd.listen.push_back({"imap", config.imap.listen});
  if (!config.imap.listen_tls.empty()) imapd.listen.push_back({"imaps", config.imap.listen_tls});
  add(imapd);
  return out;
}

namespace {

enum class State { stopped, starting, running, backoff, throttled, stopping };

const char* state_name(State s) {
  switch (s) {
    case State::stopped: return "stopped";
    case State::starting: return "starting";
    case State::running: return "running";
    case State::backoff: return "restarting";
    case State::throttled: return "throttled";
    case State::stopping: return "stopping";
  }
  return "?";
}

struct Child {
  ServiceSpec spec;
  State state = State::stopped;
  pid_t pid = 0;
  Clock::time_point started{};
  Clock::time_point next_start{};
  uint32_t restarts = 0;
  std::deque<Clock::time_point> recent_crashes;
  bool held = false;      // stopped by the admin: not restarted
  bool replace = false;   // reload changed it: start again with the new spec once stopped
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

class Supervisor {
 public:
  explicit Supervisor(MasterOptions options) : options_(std::move(options)) {}
  int run();

 private:
  Status load();
  Result<int> socket_for(const std::string& address);
  void start(Child& c);
  // start(), and for the store wait until its socket answers.
  void launch(Child& c);
  void stop_child(Child& c, int sig = SIGTERM);
  bool wait_store_ready(Child& store, std::chrono::milliseconds limit);
  void reap();
  void on_exit(Child& c, int status);
  void read_output(Child& c);
  void emit_line(const Child& c, std::string_view line);
  void reload();
  void shutdown();
  void handle_control(int fd);
  Json status_json();
  Json admin_json(const std::string& request);
  Child* find(const std::string& name);
  int poll_timeout_ms();
  void start_due();

  MasterOptions options_;
  Config config_;
  std::string data_dir_;
  std::vector<std::unique_ptr<Child>> children_;
  std::map<std::string, int> sockets_;  // address -> listening fd, kept across reloads
  int signal_fd_ = -1;
  int control_fd_ = -1;
  bool stop_ = false;
  std::ofstream log_file_;
  std::unique_ptr<store::Store> store_;  // for admin requests; opened on first use
  Clock::time_point started_ = Clock::now();
};

Child* Supervisor::find(const std::string& name) {
  for (auto& c : children_)
    if (c->spec.name == name) return c.get();
  return nullptr;
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

void Supervisor::start(Child& c) {
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
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    log::error("{}: pipe: {}", c.spec.name, std::strerror(errno));
    return;
  }
  std::string program = fs::path(c.spec.program).is_absolute() ? c.spec.program
                                                                : (fs::path(options_.bin_dir) / c.spec.program).string();
  std::vector<std::string> args = {program, "--data-dir", data_dir_};
  if (!config_.source.empty()) {
    args.push_back("--config");
    args.push_back(config_.source);
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
  c.state = c.spec.is_store ? State::starting : State::running;
  c.started = Clock::now();
  log::info("started {} (pid {})", c.spec.name, pid);
}

void Supervisor::launch(Child& c) {
  start(c);
  if (c.spec.is_store && c.pid > 0 && !wait_store_ready(c, std::chrono::seconds(15)))
    log::error("the store did not become ready");
}

void Supervisor::stop_child(Child& c, int sig) {
  if (c.pid > 0) {
    ::kill(c.pid, sig);
    c.state = State::stopping;
  } else if (c.state != State::stopping) {
    c.state = State::stopped;
  }
}

bool Supervisor::wait_store_ready(Child& store, std::chrono::milliseconds limit) {
  std::string path = config_.store.socket.empty() ? data_dir_ + "/stored.sock" : config_.store.socket;
  auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    ::close(fd);
    if (ok) {
      store.state = State::running;
      return true;
    }
    read_output(store);
    int status = 0;
    if (::waitpid(store.pid, &status, WNOHANG) == store.pid) {
      on_exit(store, status);
      return false;
    }
    ::usleep(5000);
  }
  return false;
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
  if (expected || stop_) {
    log::info("{} stopped ({})", c.spec.name, how);
    c.state = State::stopped;
    if (c.replace && !stop_) {
      c.replace = false;
      launch(c);
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
    if (pid <= 0) return;
    for (auto& c : children_)
      if (c->pid == pid) on_exit(*c, status);
  }
}

int Supervisor::poll_timeout_ms() {
  int timeout = -1;
  auto now = Clock::now();
  for (auto& c : children_) {
    if ((c->state == State::backoff || c->state == State::throttled) && !c->held) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(c->next_start - now).count();
      int t = static_cast<int>(std::max<int64_t>(0, ms));
      timeout = timeout < 0 ? t : std::min(timeout, t);
    }
  }
  return timeout;
}

void Supervisor::start_due() {
  auto now = Clock::now();
  for (auto& c : children_) {
    if ((c->state == State::backoff || c->state == State::throttled) && !c->held && now >= c->next_start) {
      launch(*c);
    }
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
  for (auto& spec : wanted) {
    Child* c = find(spec.name);
    if (!c) {
      children_.push_back(std::make_unique<Child>());
      children_.back()->spec = spec;
      launch(*children_.back());
      continue;
    }
    // Settings a daemon reads from the file also count: restart on any change of its section.
    bool changed = !(c->spec == spec) || !(old.general == config_.general) || !(old.tls == config_.tls) ||
                   (spec.name == "smtpd" && !(old.smtp == config_.smtp)) ||
                   (spec.name == "imapd" && !(old.imap == config_.imap)) ||
                   (spec.name == "store" && !(old.store == config_.store));
    if (!changed) continue;
    log::info("{}: settings changed, restarting", spec.name);
    c->spec = spec;
    if (c->pid > 0) {
      c->replace = true;
      stop_child(*c);
    } else if (!c->held) {
      launch(*c);
    }
  }
  // Close sockets no service uses any more.
  for (auto it = sockets_.begin(); it != sockets_.end();) {
    bool used = false;
    for (auto& c : children_)
      for (auto& l : c->spec.listen) used = used || l.address == it->first;
    if (!used) {
      ::close(it->second);
      it = sockets_.erase(it);
    } else {
      ++it;
    }
  }
}

Json Supervisor::status_json() {
  Json services = Json::array();
  auto now = Clock::now();
  for (auto& c : children_) {
    Json listen = Json::array();
    for (auto& l : c->spec.listen) listen.push_back(l.name + "=" + l.address);
    Json s = {{"name", c->spec.name},
              {"state", c->held && c->pid == 0 ? "held" : state_name(c->state)},
              {"pid", c->pid},
              {"uptime_s", c->pid ? std::chrono::duration_cast<std::chrono::seconds>(now - c->started).count() : 0},
              {"restarts", c->restarts},
              {"pss_kb", c->pid ? pss_kb(c->pid) : 0},
              {"listen", listen}};
    services.push_back(s);
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
    Child* c = find(arg);
    if (!c) {
      fail("not_found", "no such service: " + arg);
    } else {
      if (verb == "stop") {
        c->held = true;
        stop_child(*c);
      } else if (verb == "start") {
        c->held = false;
        if (c->pid == 0) launch(*c);
      } else {
        c->held = false;
        if (c->pid > 0) {
          c->replace = true;
          stop_child(*c);
        } else {
          launch(*c);
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
    auto opened = store::open_store({data_dir_}, store::OpenMode::daemon);
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

  // Root binds the ports, then the children drop to the configured user: they
  // must be able to write the data directory.
  if (Status st = service::own_data_dir(service::service_user(config_), data_dir_); !st.is_ok()) {
    log::error("{}", st.message());
    return exit_code(st.code());
  }

  for (auto& spec : services_for(config_, options_.bin_dir)) {
    children_.push_back(std::make_unique<Child>());
    children_.back()->spec = spec;
  }
  auto begin = Clock::now();
  for (auto& c : children_) {
    if (c->spec.is_store) launch(*c);
  }
  for (auto& c : children_)
    if (!c->spec.is_store) start(*c);
  log::info("stack started in {} ms", std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - begin).count());
  service::notify_ready();

  while (!stop_) {
    std::vector<pollfd> fds = {{signal_fd_, POLLIN, 0}, {control_fd_, POLLIN, 0}};
    std::vector<Child*> owners = {nullptr, nullptr};
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
    if (fds[1].revents & POLLIN) {
      int fd = ::accept4(control_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) handle_control(fd);
    }
    for (size_t i = 2; i < fds.size(); ++i)
      if (fds[i].revents) read_output(*owners[i]);
    reap();
    if (!stop_) start_due();
  }
  shutdown();
  ::close(control_fd_);
  ::unlink(control_socket_path(data_dir_).c_str());
  log::info("stack stopped");
  return 0;
}

}  // namespace

int run_supervisor(const MasterOptions& options) {
  Supervisor s(options);
  return s.run();
}

}  // namespace mail::master
