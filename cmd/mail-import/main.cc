// mail-import: Maildir(++), mbox (every variant), directory trees of them,
// .eml files and stdin into an account's mailboxes, with flags, keywords and
// dates; through mail-stored when it runs, else directly on the store.
// Re-running an import adds nothing. See man/mail-import.8.
//
// Exit status: 0 when every message was imported (or already there); 65
// (EX_DATAERR) when something was skipped or --strict stopped the import;
// otherwise the sysexits code of the failure (64 usage, 67 no such account,
// 69 store unavailable, 74 I/O, 75 store busy or over quota).
#include <CLI/CLI.hpp>
#include <malloc.h>

#include <cstdio>
#include <iostream>

#include "base/completion.h"
#include "base/log.h"
#include "store/tool.h"
#include "transfer/importer.h"
#include "transfer/report.h"

namespace {

constexpr int kDataErr = 65;  // EX_DATAERR

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Import mail (Maildir, mbox, .eml, stdin) into an account's mailboxes.", "mail-import"};
  mail::store::Tool tool("mail-import");
  std::string account, mailbox, type = "auto", variant_name = "auto", format = "table";
  std::vector<std::string> sources;
  bool strict = false, quiet = false, no_progress = false, enforce_quota = false;
  unsigned jobs = 8;
  size_t max_size = 64u << 20;
  tool.add_config_options(app);
  app.add_option("-a,--account", account, "the account to import into (local@domain)")->required();
  app.add_option("-m,--mailbox", mailbox,
                 "target mailbox (default INBOX); folders of a Maildir or mbox tree go below it when given")
      ->type_name("NAME");
  app.add_option("-t,--type", type, "source type (default: auto, detected)")
      ->check(CLI::IsMember({"auto", "maildir", "mbox", "eml"}));
  app.add_option("--mbox-variant", variant_name, "mbox variant (default: auto, detected per message)")
      ->check(CLI::IsMember({"auto", "mboxo", "mboxrd", "mboxcl", "mboxcl2"}));
  app.add_flag("--strict", strict, "stop at the first malformed or skipped message");
  app.add_option("-j,--jobs", jobs, "threads preparing messages (default 8); UIDs follow the source order at any count")
      ->check(CLI::Range(1u, 64u));
  app.add_option("--max-size", max_size, "skip messages larger than BYTES (default 64 MiB)")->type_name("BYTES");
  app.add_flag("--enforce-quota", enforce_quota, "refuse messages over the account's quota (default: import all)");
  app.add_option("--format", format, "summary format (default: table)")->check(CLI::IsMember({"table", "json"}));
  app.add_flag("-q,--quiet", quiet, "print no summary (warnings and errors still go to stderr)");
  app.add_flag("--no-progress", no_progress, "no progress line even on a terminal");
  tool.add_mode_options(app);
  app.add_option("SOURCE", sources, "Maildir, mbox file, directory of mbox files, .eml file, or - for stdin")
      ->required()
      ->type_name("PATH");
  mail::add_completion_option(app);
  if (auto done = tool.parse(app, argc, argv)) return *done;
  mail::log::init("mail-import", mail::log::Level::warn);
  // Message buffers come and go by the thousand on several threads: large ones
  // from mmap (returned when freed) and few arenas keep memory flat.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_ARENA_MAX, 2);

  auto variant = mail::transfer::parse_variant(variant_name);
  if (!variant) return tool.fail(variant.status());

  // What to import, before touching the store.
  std::vector<mail::transfer::SourceEntry> plan;
  uint64_t total = 0;
  for (const auto& s : sources) {
    auto p = mail::transfer::plan_sources(s, type);
    if (!p) return tool.fail(p.status());
    for (auto& e : *p) {
      total += e.size;
      plan.push_back(std::move(e));
    }
  }

  auto store = tool.open();
  if (!store) return tool.fail(store.status());
  auto info = (*store)->account_get({account});
  if (!info) return tool.fail(info.status());

  mail::transfer::Progress progress("importing", !no_progress && mail::transfer::Progress::stderr_is_terminal());
  mail::transfer::ImportOptions options;
  options.mailbox = mailbox;
  options.jobs = jobs;
  options.strict = strict;
  options.enforce_quota = enforce_quota;
  options.max_message_size = max_size;
  options.variant = *variant;
  options.progress = [&](uint64_t done) { progress.update(done, total); };
  options.warn = [&](const std::string& text) {
    progress.done();
    std::fprintf(stderr, "mail-import: warning: %s\n", text.c_str());
  };

  mail::transfer::Importer importer(**store, *info, options);
  mail::Status failure;
  for (const auto& entry : plan) {
    auto source = mail::transfer::open_source(entry, *variant, max_size);
    if (!source) {
      failure = source.status();
      break;
    }
    failure = importer.import(entry, **source);
    if (!failure.is_ok()) break;
  }
  mail::Status finished = importer.finish();
  if (failure.is_ok()) failure = finished;
  progress.done();

  auto stats = importer.stats();
  if (!quiet) {
    mail::transfer::Summary summary;
    summary.columns = {"imported", "duplicates", "skipped", "bytes"};
    for (const auto& m : stats.mailboxes)
      summary.rows.push_back({m.mailbox, {m.imported, m.duplicates, m.skipped, m.bytes}});
    summary.totals = {{"read", stats.read},         {"imported", stats.imported}, {"duplicates", stats.duplicates},
                      {"skipped", stats.skipped},   {"warnings", stats.warnings}, {"bytes_in", stats.bytes_in},
                      {"bytes_stored", stats.bytes_stored}};
    std::cout << mail::transfer::render_summary(summary, format) << std::flush;
  }
  if (!failure.is_ok()) {
    if (strict && failure.code() == mail::Code::invalid) {
      std::fprintf(stderr, "mail-import: %s\n", failure.message().c_str());
      return kDataErr;
    }
    return tool.fail(failure);
  }
  if (stats.skipped > 0) {
    std::fprintf(stderr, "mail-import: %llu message(s) skipped\n", static_cast<unsigned long long>(stats.skipped));
    return kDataErr;
  }
  return 0;
}
