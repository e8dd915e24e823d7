// mail-spamscore: scores a message on stdin (verdict, score, the rules that
// fired), trains and untrains the Bayes classifier from files, Maildirs and
// mboxes, and prints its statistics; through mail-stored when it runs, else
// directly on the store. See man/mail-spamscore.1.
//
// Exit status of a check: 0 ham, 1 spam. Errors: 64 usage, 66 no input file,
// 67 no such account, 69 store unavailable, 74 I/O, 75 store busy, 78 config.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "auth/resolver.h"
#include "base/completion.h"
#include "base/log.h"
#include "base/status.h"
#include "config/config.h"
#include "spam/filter.h"
#include "store/store.h"
#include "transfer/importer.h"
#include "transfer/report.h"

namespace {

constexpr int kSpam = 1;
constexpr int kUsage = 64;    // EX_USAGE
constexpr int kNoInput = 66;  // EX_NOINPUT
constexpr size_t kMaxInput = 64u << 20;
constexpr size_t kTrainBatchBytes = 64u << 20;  // messages kept in memory per training round

int fail(mail::Code code, const std::string& message) {
  std::fprintf(stderr, "mail-spamscore: %s\n", message.c_str());
  return mail::exit_code(code);
}

// Reads a whole message from a file or stdin ("-"), at most kMaxInput bytes
// (the tokenizer looks at less anyway).
mail::Result<std::string> read_message(const std::string& path) {
  std::string data;
  std::FILE* f = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
  if (!f) return mail::error(mail::Code::not_found, "cannot open " + path + ": " + std::strerror(errno));
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    if (data.size() < kMaxInput) data.append(buf, std::min(n, kMaxInput - data.size()));
  }
  bool bad = std::ferror(f);
  if (f != stdin) std::fclose(f);
  if (bad) return mail::error(mail::Code::io, "cannot read " + path);
  return data;
}

struct Common {
  std::string config_file, data_dir, account, format = "table";
  bool offline = false, online = false;
};

struct Env {
  mail::Config config;
  std::unique_ptr<mail::store::Store> store;
  std::unique_ptr<mail::auth::Resolver> resolver;
  std::unique_ptr<mail::spam::Classifier> classifier;
  mail::store::AccountId account = 0;
};

mail::Result<Env> open_env(const Common& c, bool need_store) {
  Env env;
  std::string path = !c.config_file.empty() ? c.config_file : mail::default_config_path();
  MAIL_ASSIGN_OR_RETURN(env.config, mail::load_config(path));
  MAIL_ASSIGN_OR_RETURN(auto options, mail::spam::options_from_config(env.config));
  MAIL_ASSIGN_OR_RETURN(auto rules, mail::spam::rules_from_config(env.config, env.resolver));
  if (need_store) {
    std::string dir = c.data_dir.empty() ? env.config.general.data_dir : c.data_dir;
    auto mode = c.offline  ? mail::store::OpenMode::direct
                : c.online ? mail::store::OpenMode::daemon
                           : mail::store::OpenMode::automatic;
    MAIL_ASSIGN_OR_RETURN(env.store, mail::store::open_store(mail::store::StorePaths{dir}, mode));
    if (!c.account.empty()) {
      MAIL_ASSIGN_OR_RETURN(auto info, env.store->account_get({c.account}));
      env.account = info.id;
    }
  } else if (!c.account.empty()) {
    return mail::error(mail::Code::invalid, "--account needs the store (drop --no-store)");
  }
  env.classifier = std::make_unique<mail::spam::Classifier>(env.store.get(), std::move(rules), options);
  return env;
}

// Named counts as "name  value" lines or one JSON object.
void print_counts(const std::vector<std::pair<std::string, uint64_t>>& counts, const std::string& format) {
  if (format == "json") {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& kv : counts) j[kv.first] = kv.second;
    std::cout << j.dump() << "\n";
  } else {
    for (const auto& kv : counts) {
      char line[128];
      std::snprintf(line, sizeof line, "%-16s %llu\n", kv.first.c_str(), static_cast<unsigned long long>(kv.second));
      std::cout << line;
    }
  }
  std::cout << std::flush;
}

std::string json_number(double d) { return mail::spam::format_score(d); }

int run_check(const Common& c, const std::string& file, bool no_store, bool filter, size_t clues,
              const mail::spam::Context& context) {
  auto env = open_env(c, !no_store);
  if (!env) return fail(env.code(), env.status().message());
  auto message = read_message(file);
  if (!message) return message.code() == mail::Code::not_found ? (fail(message.code(), message.status().message()), kNoInput)
                                                               : fail(message.code(), message.status().message());
  auto verdict = env->classifier->check(*message, env->account, context, clues);
  if (!verdict) return fail(verdict.code(), verdict.status().message());
  double required = env->classifier->options().required_score;
  const auto& v = *verdict;
  if (filter) {
    // The message with the headers on top, line ends as it came.
    std::string headers = mail::spam::status_headers(v, required);
    if (message->find("\r\n") == std::string::npos) {
      std::string lf;
      for (char ch : headers)
        if (ch != '\r') lf += ch;
      headers = lf;
    }
    std::fwrite(headers.data(), 1, headers.size(), stdout);
    std::fwrite(message->data(), 1, message->size(), stdout);
  } else if (c.format == "headers") {
    std::string h = mail::spam::status_headers(v, required);
    std::string lf;
    for (char ch : h)
      if (ch != '\r') lf += ch;
    std::cout << lf;
  } else if (c.format == "json") {
    nlohmann::json j;
    j["verdict"] = v.spam ? "spam" : "ham";
    j["score"] = std::stod(json_number(v.score));
    j["required"] = required;
    j["reject"] = v.reject;
    j["truncated"] = v.truncated;
    j["tests"] = nlohmann::json::array();
    for (const auto& h : v.hits)
      j["tests"].push_back({{"name", h.name}, {"score", h.score}, {"description", h.description}});
    nlohmann::json b;
    b["used"] = v.bayes.used;
    b["probability"] = v.bayes.probability;
    if (clues) {
      b["clues"] = nlohmann::json::array();
      for (const auto& cl : v.bayes.clues)
        b["clues"].push_back({{"token", cl.token}, {"probability", cl.probability}});
    }
    j["bayes"] = b;
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::cout << (v.spam ? "spam" : "ham") << " score=" << mail::spam::format_score(v.score)
              << " required=" << mail::spam::format_score(required) << (v.reject ? " reject" : "") << "\n";
    for (const auto& h : v.hits) {
      char line[256];
      std::snprintf(line, sizeof line, "%6s  %-24s %s\n", mail::spam::format_score(h.score).c_str(), h.name.c_str(),
                    h.description.c_str());
      std::cout << line;
    }
    for (const auto& cl : v.bayes.clues) std::cout << "  clue " << cl.probability << " " << cl.token << "\n";
  }
  std::cout << std::flush;
  return v.spam ? kSpam : 0;
}

int run_train(const Common& c, const std::vector<std::string>& sources, bool spam, bool untrain, bool quiet,
              bool no_progress) {
  std::vector<mail::transfer::SourceEntry> plan;
  uint64_t total = 0;
  for (const auto& s : sources) {
    auto p = mail::transfer::plan_sources(s, "auto");
    if (!p) return fail(p.code(), p.status().message());
    for (auto& e : *p) {
      total += e.size;
      plan.push_back(std::move(e));
    }
  }
  auto env = open_env(c, true);
  if (!env) return fail(env.code(), env.status().message());
  mail::transfer::Progress progress(untrain ? "untraining" : "training",
                                    !no_progress && mail::transfer::Progress::stderr_is_terminal());
  mail::spam::TrainResult sum;
  uint64_t read = 0, bytes_done = 0;
  std::vector<std::string> batch;
  size_t batch_bytes = 0;
  auto flush = [&]() -> mail::Status {
    if (batch.empty()) return mail::Status::ok();
    std::vector<std::string_view> views(batch.begin(), batch.end());
    MAIL_ASSIGN_OR_RETURN(auto r, env->classifier->train(env->account, views, spam, untrain));
    sum.learned += r.learned;
    sum.relearned += r.relearned;
    sum.unlearned += r.unlearned;
    sum.skipped += r.skipped;
    sum.expired += r.expired;
    batch.clear();
    batch_bytes = 0;
    return mail::Status::ok();
  };
  for (const auto& entry : plan) {
    auto source = mail::transfer::open_source(entry, mail::transfer::MboxVariant::automatic, kMaxInput);
    if (!source) return fail(source.code(), source.status().message());
    for (;;) {
      auto m = (*source)->next();
      if (!m) return fail(m.code(), m.status().message());
      if (!*m) break;
      ++read;
      batch_bytes += (*m)->content.size();
      batch.push_back(std::move((*m)->content));
      progress.update(bytes_done + (*source)->position(), total);
      if (batch_bytes >= kTrainBatchBytes) {
        mail::Status st = flush();
        if (!st.is_ok()) return fail(st.code(), st.message());
      }
    }
    bytes_done += entry.size;
    for (const auto& w : (*source)->take_warnings()) {
      progress.done();
      std::fprintf(stderr, "mail-spamscore: warning: %s\n", w.c_str());
    }
  }
  mail::Status st = flush();
  progress.done();
  if (!st.is_ok()) return fail(st.code(), st.message());
  if (!quiet) {
    print_counts({{"read", read},
                  {"learned", sum.learned},
                  {"relearned", sum.relearned},
                  {"unlearned", sum.unlearned},
                  {"skipped", sum.skipped},
                  {"expired_tokens", sum.expired}},
                 c.format);
  }
  return 0;
}

int run_stats(const Common& c) {
  auto env = open_env(c, true);
  if (!env) return fail(env.code(), env.status().message());
  auto st = env->classifier->tokens()->stats(env->account);
  if (!st) return fail(st.code(), st.status().message());
  print_counts({{"spam_messages", st->meta.nspam},
                {"ham_messages", st->meta.nham},
                {"tokens", st->tokens},
                {"messages_seen", st->messages_seen},
                {"bytes", st->bytes}},
               c.format);
  return 0;
}

int run_rules(const Common& c) {
  auto env = open_env(c, false);
  if (!env) return fail(env.code(), env.status().message());
  auto list = env->classifier->rules().list();
  if (c.format == "json") {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& h : list) j.push_back({{"name", h.name}, {"score", h.score}, {"description", h.description}});
    std::cout << j.dump() << "\n";
  } else {
    for (const auto& h : list) {
      char line[512];
      std::snprintf(line, sizeof line, "%-24s %6s  %s\n", h.name.c_str(), mail::spam::format_score(h.score).c_str(),
                    h.description.c_str());
      std::cout << line;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Score a message for spam (stdin), train the classifier, show its statistics.", "mail-spamscore"};
  Common c;
  app.add_option("-c,--config", c.config_file, "configuration file (default: $MAIL_CONFIG or ./mail.toml)")
      ->type_name("FILE");
  app.add_option("-d,--data-dir", c.data_dir, "data directory; overrides general.data_dir")->type_name("DIR");
  auto* offline_opt = app.add_flag("--offline", c.offline, "open the store directly; fails if mail-stored runs");
  app.add_flag("--online", c.online, "only go through the running mail-stored")->excludes(offline_opt);
  app.require_subcommand(0, 1);
  app.fallthrough();

  // check (also what runs without a subcommand)
  std::string file = "-", client_ip, authserv_id;
  bool no_store = false, filter = false;
  size_t clues = 0;
  auto add_check_options = [&](CLI::App* a) {
    a->add_option("-a,--account", c.account, "also use this account's training (local@domain)");
    a->add_option("--format", c.format, "output (default: table)")
        ->check(CLI::IsMember({"table", "json", "headers"}));
    a->add_flag("--filter", filter, "print the message with X-Spam-Status and X-Spam-Score on top");
    a->add_flag("--no-store", no_store, "rules only: no Bayes, the store is not opened");
    a->add_option("--clues", clues, "show the N most telling Bayes tokens")->type_name("N");
    a->add_option("--client-ip", client_ip, "the sending client's IP (for DNS block lists)");
    a->add_option("--authserv-id", authserv_id, "trust only Authentication-Results of this id");
  };
  add_check_options(&app);
  auto* check = app.add_subcommand("check", "score one message (the default)");
  check->add_option("FILE", file, "the message (default: - for stdin)")->type_name("FILE");

  std::vector<std::string> sources;
  bool spam = false, ham = false, quiet = false, no_progress = false;
  auto add_train = [&](const char* name, const char* help) {
    auto* t = app.add_subcommand(name, help);
    auto* s = t->add_flag("--spam", spam, "the messages are spam");
    auto* h = t->add_flag("--ham", ham, "the messages are ham (wanted mail)");
    s->excludes(h);
    t->add_option("-a,--account", c.account, "train this account's classifier (default: the global one)");
    t->add_option("--format", c.format, "summary format (default: table)")->check(CLI::IsMember({"table", "json"}));
    t->add_flag("-q,--quiet", quiet, "print no summary");
    t->add_flag("--no-progress", no_progress, "no progress line even on a terminal");
    t->add_option("SOURCE", sources, "Maildir, mbox, directory of them, message file, or - for stdin")
        ->required()
        ->type_name("PATH");
    return t;
  };
  auto* train = add_train("train", "learn messages as spam or ham");
  auto* untrain = add_train("untrain", "forget messages learnt before");
  auto* stats = app.add_subcommand("stats", "message and token counts");
  stats->add_option("-a,--account", c.account, "this account's classifier (default: the global one)");
  stats->add_option("--format", c.format, "output (default: table)")->check(CLI::IsMember({"table", "json"}));
  auto* rules = app.add_subcommand("rules", "the rules with their scores (built-in and the rule file's)");
  rules->add_option("--format", c.format, "output (default: table)")->check(CLI::IsMember({"table", "json"}));
  mail::add_completion_option(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "mail-spamscore: %s\n", e.what());
    return kUsage;
  }
  mail::log::init("mail-spamscore", mail::log::Level::warn);
  if (train->parsed() || untrain->parsed()) {
    if (!spam && !ham && train->parsed()) {
      std::fprintf(stderr, "mail-spamscore: train needs --spam or --ham\n");
      return kUsage;
    }
    return run_train(c, sources, spam, untrain->parsed(), quiet, no_progress);
  }
  if (stats->parsed()) return run_stats(c);
  if (rules->parsed()) return run_rules(c);
  mail::spam::Context context{client_ip, authserv_id};
  return run_check(c, file, no_store, filter, clues, context);
}
