// mail-backup: full and incremental, encrypted, verifiable backups of the store,
// made while the stack runs; restore of everything or of one account or
// mailbox; retention. Cron friendly: silent on success, one line on failure.
// See man/mail-backup.8.
//
// Exit status: 0 on success; 65 (EX_DATAERR) a damaged backup; 77 (EX_NOPERM)
// wrong key or passphrase; 75 (EX_TEMPFAIL) another mail-backup holds the
// lock; 64 usage; otherwise the sysexits code of the failure.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "base/completion.h"
#include "base/log.h"
#include "store/tool.h"
#include "transfer/backup.h"
#include "transfer/report.h"

namespace {

std::string when(int64_t t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm {};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string render(const std::vector<mail::transfer::BackupInfo>& list, const std::string& format) {
  using mail::transfer::json_string;
  std::string out;
  if (format == "json") {
    out = "[";
    for (size_t i = 0; i < list.size(); ++i) {
      const auto& b = list[i];
      out += (i ? "," : "") + std::string("{\"id\":") + json_string(b.id) + ",\"kind\":" + json_string(b.kind) +
             ",\"parent\":" + json_string(b.parent) + ",\"created\":" + std::to_string(b.created) +
             ",\"path\":" + json_string(b.path) + ",\"size\":" + std::to_string(b.size) +
             ",\"chunks\":" + std::to_string(b.chunks) + ",\"messages\":" + std::to_string(b.messages) +
             ",\"content_bytes\":" + std::to_string(b.content_bytes) + "}";
    }
    return out + "]\n";
  }
  out = "ID                            KIND         CREATED (UTC)        SIZE        PARENT\n";
  for (const auto& b : list) {
    char line[512];
    std::snprintf(line, sizeof line, "%-29s %-12s %-20s %-11s %s\n", b.id.c_str(), b.kind.c_str(),
                  when(b.created).c_str(), mail::transfer::human_bytes(b.size).c_str(),
                  b.parent.empty() ? "-" : b.parent.c_str());
    out += line;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Back up the mail store (full or incremental, encrypted), verify, restore and prune backups.",
               "mail-backup"};
  app.require_subcommand(1);
  app.fallthrough();
  mail::store::Tool tool("mail-backup");
  std::string format = "table", key_file, passphrase_file;
  bool verbose = false, no_progress = false;
  tool.add_config_options(app);
  app.add_option("--key-file", key_file, "key file (32 bytes or 64 hex digits; `mail-backup keygen FILE`)")
      ->type_name("FILE");
  app.add_option("--passphrase-file", passphrase_file,
                 "read the passphrase from FILE (first line); also $MAIL_BACKUP_PASSPHRASE")
      ->type_name("FILE");
  app.add_option("--format", format, "output format (default: table)")->check(CLI::IsMember({"table", "json"}));
  app.add_flag("-v,--verbose", verbose, "say what was done (default: silent on success)");
  app.add_flag("--no-progress", no_progress, "no progress line even on a terminal");
  tool.add_mode_options(app);

  std::string dest, backup_path, keygen_path, restore_account, restore_mailbox, restore_as;
  bool incremental = false;
  auto* create = app.add_subcommand("create", "Write a full (or --incremental) backup to DIR (or - for stdout)");
  create->add_option("DEST", dest, "backup directory, or - for stdout")->required()->type_name("DIR");
  create->add_flag("-i,--incremental", incremental, "only what changed since the newest backup in DIR");
  auto* list = app.add_subcommand("list", "List the backups in DIR");
  list->add_option("DIR", dest, "backup directory")->required()->type_name("DIR");
  auto* verify = app.add_subcommand("verify", "Read and check every chunk and the manifest of a backup");
  verify->add_option("BACKUP", backup_path, "backup file (or - for stdin)")->required()->type_name("FILE");
  auto* restore = app.add_subcommand("restore", "Restore a backup (and its chain) into the store");
  restore->add_option("BACKUP", backup_path, "backup file (its parents are found beside it)")->required()->type_name("FILE");
  restore->add_option("--account", restore_account, "only this account (else everything, into an empty store)");
  restore->add_option("--mailbox", restore_mailbox, "only this mailbox of --account");
  restore->add_option("--as", restore_as, "under this name: an account address, or with --mailbox a mailbox name");
  unsigned restore_jobs = 8;
  restore->add_option("-j,--jobs", restore_jobs, "messages stored at once (default 8); a whole-store restore keeps UIDs, for --account 1 keeps their order")
      ->check(CLI::Range(1u, 64u));
  unsigned keep_daily = 0, keep_weekly = 0, keep_monthly = 0;
  bool dry_run = false;
  auto* prune = app.add_subcommand("prune", "Delete backups outside the retention rules (never breaking a chain)");
  prune->add_option("DIR", dest, "backup directory")->required()->type_name("DIR");
  prune->add_option("--keep-daily", keep_daily, "keep the newest backup of each of the last N days");
  prune->add_option("--keep-weekly", keep_weekly, "keep the newest backup of each of the last N weeks");
  prune->add_option("--keep-monthly", keep_monthly, "keep the newest backup of each of the last N months");
  prune->add_flag("-n,--dry-run", dry_run, "only list what would be deleted");
  auto* keygen = app.add_subcommand("keygen", "Write a new random key file (mode 0600)");
  keygen->add_option("FILE", keygen_path, "the key file to create")->required()->type_name("FILE");
  mail::add_completion_option(app);
  if (auto done = tool.parse(app, argc, argv)) return *done;
  mail::log::init("mail-backup", mail::log::Level::warn);

  if (keygen->parsed()) {
    auto st = mail::transfer::backup_keygen(keygen_path);
    if (!st) return tool.fail(st);
    return 0;
  }
  if (list->parsed()) {
    auto l = mail::transfer::backup_list(dest);
    if (!l) return tool.fail(l.status());
    std::cout << render(*l, format) << std::flush;
    return 0;
  }
  if (prune->parsed()) {
    auto lock = mail::transfer::BackupLock::take(dest);
    if (!lock) return tool.fail(lock.status());
    auto l = mail::transfer::backup_list(dest);
    if (!l) return tool.fail(l.status());
    if (keep_daily + keep_weekly + keep_monthly == 0)
      return tool.usage("prune needs at least one of --keep-daily, --keep-weekly, --keep-monthly");
    auto gone = mail::transfer::backups_to_prune(*l, {keep_daily, keep_weekly, keep_monthly});
    for (const auto& b : gone) {
      if (!dry_run) {
        std::error_code ec;
        std::filesystem::remove(b.path, ec);
        if (ec) return tool.fail(mail::Code::io, "cannot delete " + b.path + ": " + ec.message());
      }
      if (verbose || dry_run) std::cout << (dry_run ? "would delete " : "deleted ") << b.id << "\n";
    }
    return 0;
  }

  // Key material for create, verify and restore.
  mail::transfer::BackupKey key;
  key.key_file = key_file;
  if (!passphrase_file.empty()) {
    std::ifstream in(passphrase_file);
    if (!in) return tool.fail(mail::Code::not_found, "cannot read " + passphrase_file);
    std::getline(in, key.passphrase);
    key.has_passphrase = true;
  } else if (const char* p = std::getenv("MAIL_BACKUP_PASSPHRASE"); p && *p) {
    key.passphrase = p;
    key.has_passphrase = true;
  }
  if (key.key_file.empty() && !key.has_passphrase)
    return tool.usage("no key: give --key-file FILE or --passphrase-file FILE");
  if (!key.key_file.empty() && key.has_passphrase) return tool.usage("give a key file or a passphrase, not both");

  if (verify->parsed()) {
    auto info = mail::transfer::backup_verify(backup_path, key);
    if (!info) return tool.fail(info.status());
    if (verbose) std::cout << render({*info}, format) << std::flush;
    return 0;
  }

  auto store = tool.open();
  if (!store) return tool.fail(store.status());

  if (create->parsed()) {
    std::optional<mail::transfer::BackupLock> lock;
    if (dest != "-") {
      std::error_code ec;
      std::filesystem::create_directories(dest, ec);
      auto l = mail::transfer::BackupLock::take(dest);
      if (!l) return tool.fail(l.status());
      lock.emplace(std::move(*l));
    }
    mail::transfer::Progress progress("backing up", !no_progress && mail::transfer::Progress::stderr_is_terminal());
    mail::transfer::BackupCreateOptions options;
    options.key = key;
    options.dest = dest;
    options.incremental = incremental;
    options.progress = [&](uint64_t, uint64_t bytes) { progress.update(bytes, 0); };
    auto info = mail::transfer::backup_create(**store, options);
    progress.done();
    if (!info) return tool.fail(info.status());
    if (verbose && dest != "-") std::cout << render({*info}, format) << std::flush;
    return 0;
  }
  if (restore->parsed()) {
    mail::transfer::RestoreOptions options;
    options.key = key;
    options.account = restore_account;
    options.mailbox = restore_mailbox;
    options.as = restore_as;
    options.jobs = restore_jobs;
    mail::transfer::Progress progress("restoring", !no_progress && mail::transfer::Progress::stderr_is_terminal());
    auto stats = mail::transfer::backup_restore(**store, backup_path, options);
    progress.done();
    if (!stats) return tool.fail(stats.status());
    if (verbose) {
      mail::transfer::Summary s;
      s.totals = {{"backups", stats->backups},   {"domains", stats->domains},
                  {"accounts", stats->accounts}, {"mailboxes", stats->mailboxes},
                  {"messages", stats->messages}, {"flag_updates", stats->flag_updates},
                  {"expunged", stats->expunged}};
      if (format == "json") {
        std::cout << mail::transfer::render_summary(s, "json");
      } else {
        for (const auto& [k, v] : s.totals) std::cout << k << " " << v << "\n";
      }
    }
    return 0;
  }
  return tool.usage("no command given (see mail-backup --help)");
}
