// bench/smtp: mail-smtpd's figures end to end, with real daemons: mail-stored
// owning the store and mail-smtpd on an MX listener. Prints one
// "name value unit" line per figure:
//   messages per second for 4 KiB and 64 KiB messages over 8 concurrent
//   sessions (a message counts when its 250 arrived, which mail-smtpd sends
//   only after the store's fsync; the mailbox count is checked at the end),
//   server CPU time per message (mail-smtpd + mail-stored, from /proc/<pid>/stat),
//   server memory (resident set of both daemons, peak and at the end).
// Usage: bench_smtp --bin-dir build/cmd [--quick] [--sessions N] [--seconds S]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "store/rocks_store.h"
#include "store/store.h"

using namespace mail;
using namespace mail::store;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bench_smtp: %s\n", what.c_str());
  std::exit(70);
}

template <class T>
T must(Result<T> r, const std::string& what) {
  if (!r.is_ok()) die(what + ": " + r.status().to_string());
  return std::move(r).value();
}

// A message of exactly `size` bytes, CRLF lines, none starting with '.'.
std::string message_of(size_t size) {
  std::string m = "From: bench@remote.example\r\nTo: user@example.test\r\nSubject: benchmark\r\n\r\n";
  while (m.size() < size) m += "The quick brown fox jumps over the lazy dog, again and again and again.\r\n";
  m.resize(size - 2);
  m += "\r\n";
  return m;
}

pid_t spawn(const std::vector<std::string>& argv, const std::string& log) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

void stop(pid_t pid) {
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
}

// The daemons drop root privileges to "mail": hand them the data directory.
void hand_over(const std::filesystem::path& dir) {
  if (geteuid() != 0) return;
  struct passwd* pw = getpwnam("mail");
  if (!pw) return;
  (void)!chown(dir.c_str(), pw->pw_uid, pw->pw_gid);
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    (void)!lchown(e.path().c_str(), pw->pw_uid, pw->pw_gid);
}

int free_port() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  return ntohs(a.sin_port);
}

int connect_to(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(s);
    return -1;
  }
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return s;
}

// CPU seconds (user + system) of a process so far.
double cpu_seconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(text.substr(close + 2));
  std::string field;
  unsigned long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {  // fields 14 and 15: utime, stime
    if (i == 14) utime = std::stoul(field);
    if (i == 15) stime = std::stoul(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// VmRSS / VmHWM in KiB.
long status_kib(pid_t pid, const std::string& key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key + ":", 0) == 0) return std::stol(line.substr(key.size() + 1));
  return 0;
}

class Client {
 public:
  explicit Client(int fd) : fd_(fd) {}
  ~Client() { close(fd_); }
  void send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) die("send failed");
      data.remove_prefix(static_cast<size_t>(n));
    }
  }
  // The code of the next complete reply (multi-line replies skipped to their end).
  int reply() {
    while (true) {
      size_t nl = buf_.find("\r\n");
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 2);
        if (line.size() >= 4 && line[3] == '-') continue;
        return std::atoi(line.c_str());
      }
      char tmp[4096];
      ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) die("connection closed by mail-smtpd");
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }

 private:
  int fd_;
  std::string buf_;
};

struct RunResult {
  uint64_t messages = 0;
  double seconds = 0;
};

RunResult run(int port, size_t size, int sessions, double seconds) {
  const std::string message = message_of(size) + ".\r\n";
  const std::string envelope = "MAIL FROM:<bench@remote.example>\r\nRCPT TO:<user@example.test>\r\nDATA\r\n";
  std::atomic<uint64_t> done{0};
  std::atomic<bool> stopping{false};
  std::vector<std::thread> threads;
  auto start = Clock::now();
  for (int i = 0; i < sessions; ++i)
    threads.emplace_back([&] {
      int fd = connect_to(port);
      if (fd < 0) die("cannot connect to mail-smtpd");
      Client c(fd);
      if (c.reply() != 220) die("no greeting");
      c.send("EHLO bench.example\r\n");
      if (c.reply() != 250) die("EHLO refused");
      while (!stopping) {
        c.send(envelope);  // PIPELINING: MAIL, RCPT and DATA in one write
        if (c.reply() != 250 || c.reply() != 250 || c.reply() != 354) die("envelope refused");
        c.send(message);
        int code = c.reply();
        if (code != 250) die("message refused with " + std::to_string(code));
        ++done;
      }
      c.send("QUIT\r\n");
      c.reply();
    });
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stopping = true;
  for (auto& t : threads) t.join();
  return {done.load(), seconds_since(start)};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"SMTP benchmark: durable deliveries per second, server CPU and memory"};
  std::string bin_dir = "build/cmd";
  bool quick = false;
  int sessions = 8;
  double seconds = 10;
  app.add_option("--bin-dir", bin_dir, "where mail-stored and mail-smtpd are");
  app.add_flag("--quick", quick, "short runs, for a smoke check");
  app.add_option("--sessions", sessions, "concurrent SMTP sessions")->check(CLI::Range(1, 1000));
  app.add_option("--seconds", seconds, "length of each run")->check(CLI::Range(0.1, 3600.0));
  CLI11_PARSE(app, argc, argv);
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, nullptr, _IOLBF, 0);
  if (quick) seconds = 1;

  auto dir = std::filesystem::temp_directory_path() / ("bench_smtp_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string data_dir = (dir / "data").string();
  {
    auto store = must(RocksStore::open({data_dir, 32, true}), "open the store");
    must(store->domain_add({"example.test"}), "domain add");
    AccountAddReq add;
    add.address = "user@example.test";
    must(store->account_add(add), "account add");
  }
  hand_over(dir);
  pid_t stored = spawn({bin_dir + "/mail-stored", "--data-dir", data_dir}, (dir / "stored.log").string());
  bool up = false;
  for (int i = 0; i < 500 && !up; ++i) {
    up = open_store({data_dir}, OpenMode::daemon).is_ok();
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!up) die("mail-stored did not start (see " + (dir / "stored.log").string() + ")");
  hand_over(dir);
  int port = free_port();
  pid_t smtpd = spawn({bin_dir + "/mail-smtpd", "--data-dir", data_dir, "--listen",
                       "mx=127.0.0.1:" + std::to_string(port), "--pregreet-ms", "0"},
                      (dir / "smtpd.log").string());
  for (int i = 0; i < 500; ++i) {
    int fd = connect_to(port);
    if (fd >= 0) {
      close(fd);
      up = true;
      break;
    }
    up = false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!up) die("mail-smtpd did not start (see " + (dir / "smtpd.log").string() + ")");

  std::printf("# %d sessions, %.0f s per size, daemons: mail-smtpd %d, mail-stored %d, %u cpus\n", sessions,
              seconds, smtpd, stored, std::thread::hardware_concurrency());
  uint64_t total = 0;
  for (size_t size : {size_t{4096}, size_t{65536}}) {
    std::string label = std::to_string(size / 1024) + "k";
    run(port, size, sessions, quick ? 0.2 : 1.0);  // warm up
    double cpu0 = cpu_seconds(smtpd) + cpu_seconds(stored);
    RunResult r = run(port, size, sessions, seconds);
    double cpu = cpu_seconds(smtpd) + cpu_seconds(stored) - cpu0;
    total += r.messages;
    std::printf("smtp.deliver_%s.sessions_%d %.0f msg/s (%lu in %.1f s)\n", label.c_str(), sessions,
                r.messages / r.seconds, static_cast<unsigned long>(r.messages), r.seconds);
    std::printf("smtp.server_cpu_per_msg_%s %.3f ms (mail-smtpd + mail-stored)\n", label.c_str(),
                r.messages ? cpu * 1e3 / static_cast<double>(r.messages) : 0.0);
    std::printf("smtp.server_rss_%s %.1f MiB (mail-smtpd %.1f, mail-stored %.1f)\n", label.c_str(),
                (status_kib(smtpd, "VmRSS") + status_kib(stored, "VmRSS")) / 1024.0,
                status_kib(smtpd, "VmRSS") / 1024.0, status_kib(stored, "VmRSS") / 1024.0);
  }
  std::printf("smtp.server_peak_rss %.1f MiB (mail-smtpd %.1f, mail-stored %.1f)\n",
              (status_kib(smtpd, "VmHWM") + status_kib(stored, "VmHWM")) / 1024.0,
              status_kib(smtpd, "VmHWM") / 1024.0, status_kib(stored, "VmHWM") / 1024.0);

  // Every acknowledged message is in the mailbox (plus the warm-up runs').
  {
    auto store = must(open_store({data_dir}, OpenMode::daemon), "connect");
    auto info = must(store->account_get({"user@example.test"}), "account");
    if (info.used_messages < total) die("mailbox holds fewer messages than were acknowledged");
    std::printf("# mailbox holds %lu messages, %lu acknowledged in the measured runs\n",
                static_cast<unsigned long>(info.used_messages), static_cast<unsigned long>(total));
  }
  stop(smtpd);
  stop(stored);
  std::filesystem::remove_all(dir);
  return 0;
}
