// bench/store: the store's figures, through the mail-stored daemon as programs
// use it. Prints one "name value unit" line per figure:
//   durable 4 KiB inserts/s with 1 and 8 concurrent clients (own connections),
//   single flag update latency on mailboxes of 1,000 and 100,000 messages,
//   time to list UID+flags of 100,000 messages.
// Usage: bench_store --bin-dir build/cmd [--quick]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <thread>

#include "store/rocks_store.h"
#include "store/store.h"

using namespace mail;
using namespace mail::store;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

[[noreturn]] void die(const std::string& what, const Status& st) {
  std::fprintf(stderr, "bench_store: %s: %s\n", what.c_str(), st.to_string().c_str());
  std::exit(70);
}

template <class T>
T must(Result<T> r, const std::string& what) {
  if (!r.is_ok()) die(what, r.status());
  return std::move(r).value();
}

std::string message_of(size_t size, uint64_t n) {
  std::string m = "From: bench@example.test\r\nTo: user@example.test\r\nSubject: message " + std::to_string(n) +
                  "\r\n\r\n";
  while (m.size() < size) m += "The quick brown fox jumps over the lazy dog " + std::to_string(n) + "\r\n";
  m.resize(size);
  return m;
}

// Fills a mailbox quickly in-process (no fsync per message) before the daemon starts.
void populate(const std::string& data_dir, const std::vector<std::pair<std::string, uint32_t>>& accounts) {
  auto store = must(RocksStore::open({data_dir, 32, /*sync=*/false}), "open for populate");
  must(store->domain_add({"example.test"}), "domain add");
  for (const auto& entry : accounts) {
    const std::string& address = entry.first;
    const uint32_t count = entry.second;
    AccountAddReq add;
    add.address = address;
    auto account = must(store->account_add(add), "account add");
    std::vector<std::thread> threads;
    std::atomic<uint32_t> next{0};
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&] {
        for (uint32_t i = next++; i < count; i = next++) {
          DeliverReq req;
          req.content = message_of(4096, i);
          req.targets.push_back(DeliveryTarget{account.id});
          must(store->deliver(req), "populate deliver");
        }
      });
    for (auto& th : threads) th.join();
  }
}

pid_t start_daemon(const std::string& bin_dir, const std::string& data_dir) {
  pid_t pid = fork();
  if (pid == 0) {
    std::string prog = bin_dir + "/mail-stored";
    execl(prog.c_str(), prog.c_str(), "--data-dir", data_dir.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  StorePaths paths{data_dir};
  for (int i = 0; i < 3000; ++i) {  // up to a minute: a loaded machine replays a big WAL slowly
    auto s = open_store(paths, OpenMode::daemon);
    if (s.is_ok()) return pid;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::fprintf(stderr, "bench_store: mail-stored did not start\n");
  kill(pid, SIGKILL);
  std::exit(69);
}

void stop_daemon(pid_t pid) {
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
}

void bench_inserts(const std::string& data_dir, AccountId account, int clients, double seconds) {
  std::vector<std::unique_ptr<Store>> conns;
  for (int i = 0; i < clients; ++i) conns.push_back(must(open_store({data_dir}, OpenMode::daemon), "connect"));
  std::atomic<uint64_t> done{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  auto start = Clock::now();
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      uint64_t n = 0;
      while (!stop) {
        DeliverReq req;
        req.content = message_of(4096, (static_cast<uint64_t>(c) << 32) | n++);
        req.targets.push_back(DeliveryTarget{account});
        auto r = must(conns[c]->deliver(req), "deliver");
        if (r.results.at(0).code != Code::ok) die("deliver", error(r.results[0].code, r.results[0].message));
        ++done;
      }
    });
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  double elapsed = seconds_since(start);
  std::printf("store.insert_4k.clients_%d %.0f msg/s (%lu in %.1f s)\n", clients, done / elapsed,
              static_cast<unsigned long>(done.load()), elapsed);
}

void bench_flag_latency(Store& store, const std::string& label, MailboxId mailbox, uint32_t messages, int rounds) {
  std::mt19937 rng(42);
  std::vector<double> us;
  for (int i = 0; i < rounds; ++i) {
    Uid uid = 1 + rng() % messages;
    auto start = Clock::now();
    must(store.flags_update({mailbox, {uid}, i % 2 ? FlagMode::remove : FlagMode::add, flag::flagged, {}, 0}),
         "flags update");
    us.push_back(seconds_since(start) * 1e6);
  }
  std::sort(us.begin(), us.end());
  std::printf("store.flag_update.%s median %.0f us, p99 %.0f us\n", label.c_str(), us[us.size() / 2],
              us[us.size() * 99 / 100]);
}

void bench_list(Store& store, MailboxId mailbox, uint32_t messages) {
  std::vector<double> ms;
  for (int i = 0; i < 5; ++i) {
    auto start = Clock::now();
    auto r = must(store.message_list({mailbox, 1, 0}), "list");
    ms.push_back(seconds_since(start) * 1e3);
    if (r.messages.size() != messages) die("list", error(Code::internal, "wrong message count"));
  }
  std::sort(ms.begin(), ms.end());
  std::printf("store.list_uid_flags.%u median %.1f ms\n", messages, ms[ms.size() / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Store benchmark: durable inserts, flag update latency, listing"};
  std::string bin_dir = "build/cmd";
  bool quick = false;
  app.add_option("--bin-dir", bin_dir, "where mail-stored is");
  app.add_flag("--quick", quick, "small runs, for a smoke check");
  CLI11_PARSE(app, argc, argv);
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, nullptr, _IOLBF, 0);

  const uint32_t big = quick ? 10000 : 100000;
  const uint32_t small = 1000;
  const double seconds = quick ? 1.0 : 5.0;
  auto dir = std::filesystem::temp_directory_path() / ("bench_store_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::string data_dir = dir.string();

  auto start = Clock::now();
  populate(data_dir, {{"big@example.test", big}, {"small@example.test", small}, {"insert@example.test", 0}});
  std::printf("# populated %u + %u messages in %.1f s (no fsync)\n", big, small, seconds_since(start));

  pid_t daemon = start_daemon(bin_dir, data_dir);
  {
    auto store = must(open_store({data_dir}, OpenMode::daemon), "connect");
    auto insert = must(store->account_get({"insert@example.test"}), "account");
    bench_inserts(data_dir, insert.id, 1, seconds);
    bench_inserts(data_dir, insert.id, 8, seconds);

    auto big_account = must(store->account_get({"big@example.test"}), "account");
    auto small_account = must(store->account_get({"small@example.test"}), "account");
    auto big_inbox = must(store->mailbox_get({big_account.id, "INBOX"}), "mailbox");
    auto small_inbox = must(store->mailbox_get({small_account.id, "INBOX"}), "mailbox");
    int rounds = quick ? 200 : 2000;
    bench_flag_latency(*store, "mailbox_" + std::to_string(small), small_inbox.id, small, rounds);
    bench_flag_latency(*store, "mailbox_" + std::to_string(big), big_inbox.id, big, rounds);
    bench_list(*store, big_inbox.id, big);
  }
  stop_daemon(daemon);
  std::filesystem::remove_all(dir);
  return 0;
}
