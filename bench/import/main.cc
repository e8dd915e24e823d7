// bench/import: mail-import, mail-export and mail-backup speed and peak memory on a generated
// mbox of mixed message sizes (1 GiB, or 50 MiB with --quick). Runs the real
// programs (direct on the store, or through mail-stored with --daemon) and
// prints one "name value unit" line per figure:
//   import_mb_per_s, import_msgs_per_s, import_peak_rss_mb,
//   export_mb_per_s, export_peak_rss_mb, reimport_msgs_per_s (all duplicates),
//   backup/verify/restore MB/s (of the mbox's size) and peak memory.
// Usage: bench_import --bin-dir build/cmd [--quick] [--jobs N] [--daemon] [--keep DIR]
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "store/rocks_store.h"
#include "store/store.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bench_import: %s\n", what.c_str());
  std::exit(70);
}

// Message sizes: mostly small text mail, some with attachments, a few large.
size_t pick_size(std::mt19937_64& rng) {
  std::uniform_int_distribution<int> pct(0, 99);
  int p = pct(rng);
  auto between = [&](size_t lo, size_t hi) { return std::uniform_int_distribution<size_t>(lo, hi)(rng); };
  if (p < 60) return between(1500, 8000);
  if (p < 90) return between(10000, 100000);
  if (p < 99) return between(100000, 1000000);
  return between(1000000, 5000000);
}

uint64_t generate(const std::string& path, uint64_t target) {
  std::mt19937_64 rng(42);
  static const char* kWords[] = {"mail", "server", "import", "the", "quick", "brown", "fox", "jumps", "over",
                                 "lazy", "dog", "meeting", "tomorrow", "report", "attached", "please", "review",
                                 "thanks", "regards", "budget", "project", "deadline", "From", "update"};
  const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::ofstream out(path, std::ios::binary);
  uint64_t written = 0, n = 0;
  std::string msg;
  while (written < target) {
    size_t size = pick_size(rng);
    msg.clear();
    msg += "From sender" + std::to_string(n % 97) + "@example.org Mon Nov 23 10:" + std::to_string(10 + n % 50) +
           ":00 2026\n";
    msg += "From: Sender <sender" + std::to_string(n % 97) + "@example.org>\nTo: user@example.test\n";
    msg += "Subject: bench message " + std::to_string(n) + "\nMessage-ID: <" + std::to_string(n) +
           "@bench.example.org>\nDate: Mon, 23 Nov 2026 10:00:00 +0000\n";
    if (n % 3 == 0) msg += "Status: RO\n";
    if (n % 7 == 0) msg += "X-Status: F\nX-Keywords: $Label1\n";
    bool attachment = size > 20000;
    if (attachment) {
      msg += "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\n";
    } else {
      msg += "\n";
    }
    size_t text_end = attachment ? std::min<size_t>(size, 4000) : size;
    while (msg.size() < text_end) {
      std::string line;
      while (line.size() < 70) {
        line += kWords[rng() % (sizeof kWords / sizeof *kWords)];
        line += ' ';
      }
      if (line.rfind("From ", 0) == 0) line = ">" + line;
      msg += line + "\n";
    }
    if (attachment) {
      msg += "--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n";
      while (msg.size() < size) {
        std::string line(76, 'A');
        for (auto& c : line) c = b64[rng() % 64];
        msg += line + "\n";
      }
      msg += "--b--\n";
    }
    msg += "\n";
    out << msg;
    written += msg.size();
    ++n;
  }
  return n;
}

struct Run {
  double seconds = 0;
  long peak_rss_kb = 0;
  int status = 0;
};

Run run(const std::vector<std::string>& argv) {
  auto start = Clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int devnull = ::open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  struct rusage ru {};
  wait4(pid, &status, 0, &ru);
  Run r;
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  r.peak_rss_kb = ru.ru_maxrss;
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mail-import/mail-export speed and memory", "bench_import"};
  std::string bin_dir = "build/cmd", keep;
  bool quick = false, daemon = false;
  unsigned jobs = 8;
  app.add_option("--bin-dir", bin_dir, "where mail-import, mail-export, mail-stored are built");
  app.add_flag("--quick", quick, "50 MiB instead of 1 GiB");
  app.add_option("--jobs", jobs, "mail-import --jobs");
  app.add_flag("--daemon", daemon, "through a running mail-stored instead of direct");
  app.add_option("--keep", keep, "work in DIR and keep it");
  CLI11_PARSE(app, argc, argv);

  fs::path dir = keep.empty() ? fs::temp_directory_path() / ("bench_import_" + std::to_string(getpid())) : fs::path(keep);
  fs::create_directories(dir);
  std::string mbox = (dir / "bench.mbox").string();
  std::string data = (dir / "data").string();
  fs::remove_all(data);
  uint64_t target = quick ? (50ull << 20) : (1ull << 30);
  uint64_t messages = generate(mbox, target);
  uint64_t bytes = fs::file_size(mbox);
  std::printf("input_bytes %llu B\ninput_messages %llu msgs\n", static_cast<unsigned long long>(bytes),
              static_cast<unsigned long long>(messages));
  {
    auto store = mail::store::RocksStore::open({data});
    if (!store) die(store.status().to_string());
    if (!(*store)->domain_add({"example.test"})) die("domain add");
    if (!(*store)->account_add({"user@example.test"})) die("account add");
  }
  pid_t stored = 0;
  if (daemon) {
    stored = fork();
    if (stored == 0) {
      std::string prog = bin_dir + "/mail-stored";
      execl(prog.c_str(), prog.c_str(), "--data-dir", data.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 100 && !fs::exists(data + "/stored.sock"); ++i) usleep(100000);
    usleep(200000);
  }
  std::string mode = daemon ? "--online" : "--offline";
  auto imp = run({bin_dir + "/mail-import", "--data-dir", data, mode, "-a", "user@example.test", "-q", "--jobs",
                  std::to_string(jobs), mbox});
  if (imp.status != 0) die("mail-import exited with " + std::to_string(imp.status));
  double mb = static_cast<double>(bytes) / (1 << 20);
  std::printf("import_mb_per_s %.1f MB/s\n", mb / imp.seconds);
  std::printf("import_msgs_per_s %.0f msgs/s\n", static_cast<double>(messages) / imp.seconds);
  std::printf("import_peak_rss_mb %.1f MB\n", static_cast<double>(imp.peak_rss_kb) / 1024);

  auto again = run({bin_dir + "/mail-import", "--data-dir", data, mode, "-a", "user@example.test", "-q", mbox});
  if (again.status != 0) die("second mail-import exited with " + std::to_string(again.status));
  std::printf("reimport_msgs_per_s %.0f msgs/s\n", static_cast<double>(messages) / again.seconds);
  std::printf("reimport_peak_rss_mb %.1f MB\n", static_cast<double>(again.peak_rss_kb) / 1024);

  std::string out = (dir / "export.mbox").string();
  auto exp = run({bin_dir + "/mail-export", "--data-dir", data, mode, "-a", "user@example.test", "-q", "-t", "mbox",
                  "-m", "INBOX", out});
  if (exp.status != 0) die("mail-export exited with " + std::to_string(exp.status));
  std::printf("export_mb_per_s %.1f MB/s\n", mb / exp.seconds);
  std::printf("export_peak_rss_mb %.1f MB\n", static_cast<double>(exp.peak_rss_kb) / 1024);

  // Backups of what was imported: create (through the same path), verify, restore.
  std::string key = (dir / "backup.key").string();
  fs::remove(key);
  if (run({bin_dir + "/mail-backup", "keygen", key}).status != 0) die("mail-backup keygen");
  std::string backups = (dir / "backups").string();
  fs::remove_all(backups);
  auto bk = run({bin_dir + "/mail-backup", "--data-dir", data, mode, "--key-file", key, "create", backups});
  if (bk.status != 0) die("mail-backup create exited with " + std::to_string(bk.status));
  std::printf("backup_mb_per_s %.1f MB/s\n", mb / bk.seconds);
  std::printf("backup_peak_rss_mb %.1f MB\n", static_cast<double>(bk.peak_rss_kb) / 1024);
  std::string file;
  for (const auto& e : fs::directory_iterator(backups))
    if (e.path().extension() == ".mbak") file = e.path().string();
  std::printf("backup_size_mb %.1f MB\n", static_cast<double>(fs::file_size(file)) / (1 << 20));
  auto vf = run({bin_dir + "/mail-backup", "--key-file", key, "verify", file});
  if (vf.status != 0) die("mail-backup verify exited with " + std::to_string(vf.status));
  std::printf("verify_mb_per_s %.1f MB/s\n", mb / vf.seconds);
  std::string restored = (dir / "restored").string();
  fs::remove_all(restored);
  auto rs = run({bin_dir + "/mail-backup", "--data-dir", restored, "--offline", "--key-file", key, "restore", file});
  if (rs.status != 0) die("mail-backup restore exited with " + std::to_string(rs.status));
  std::printf("restore_mb_per_s %.1f MB/s\n", mb / rs.seconds);
  std::printf("restore_peak_rss_mb %.1f MB\n", static_cast<double>(rs.peak_rss_kb) / 1024);

  if (stored > 0) {
    kill(stored, SIGTERM);
    waitpid(stored, nullptr, 0);
  }
  if (keep.empty()) fs::remove_all(dir);
  return 0;
}
