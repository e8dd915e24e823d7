// mail-export: an account's mailboxes (or some of them) to Maildir++ or mboxrd,
// with flags, keywords and internal dates, so that mail-import of the result
// gives the same messages back. See man/mail-export.8.
//
// Exit status: 0 on success, else the sysexits code of the failure (64 usage,
// 67 no such account or mailbox, 69 store unavailable, 73/74 cannot write).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "base/completion.h"
#include "base/log.h"
#include "store/tool.h"
#include "transfer/exporter.h"
#include "transfer/report.h"

int main(int argc, char** argv) {
  CLI::App app{"Export an account's mailboxes to Maildir or mbox (mboxrd).", "mail-export"};
  mail::store::Tool tool("mail-export");
  std::string account, type = "maildir", format = "table", path;
  std::vector<std::string> mailboxes;
  bool quiet = false, no_progress = false, crlf = false;
  tool.add_config_options(app);
  app.add_option("-a,--account", account, "the account to export (local@domain)")->required();
  app.add_option("-m,--mailbox", mailboxes, "export only this mailbox (repeatable; default: all)")->type_name("NAME");
  app.add_option("-t,--type", type, "output type (default: maildir)")->check(CLI::IsMember({"maildir", "mbox"}));
  app.add_flag("--crlf", crlf, "keep CRLF line ends as stored (default: LF, as mail files on disk use)");
  app.add_option("--format", format, "summary format (default: table)")->check(CLI::IsMember({"table", "json"}));
  app.add_flag("-q,--quiet", quiet, "print no summary");
  app.add_flag("--no-progress", no_progress, "no progress line even on a terminal");
  tool.add_mode_options(app);
  app.add_option("DEST", path,
                 "Maildir root; or for mbox a file (one mailbox; - for stdout) or a directory (one .mbox per mailbox)")
      ->required()
      ->type_name("PATH");
  mail::add_completion_option(app);
  if (auto done = tool.parse(app, argc, argv)) return *done;
  mail::log::init("mail-export", mail::log::Level::warn);
  if (path == "-" && type != "mbox") return tool.usage("only --type mbox can be written to stdout");
  if (path == "-") quiet = true;  // stdout carries the mbox

  auto store = tool.open();
  if (!store) return tool.fail(store.status());
  auto info = (*store)->account_get({account});
  if (!info) return tool.fail(info.status());

  mail::transfer::Progress progress("exporting", !no_progress && mail::transfer::Progress::stderr_is_terminal());
  mail::transfer::ExportOptions options;
  options.kind = type == "mbox" ? mail::transfer::ExportKind::mbox : mail::transfer::ExportKind::maildir;
  options.path = path;
  options.mailboxes = mailboxes;
  options.crlf = crlf;
  options.progress = [&](uint64_t done, uint64_t total) { progress.update(done, total); };
  auto stats = mail::transfer::export_mail(**store, *info, options);
  progress.done();
  if (!stats) return tool.fail(stats.status());
  if (stats->dropped_keywords)
    std::fprintf(stderr, "mail-export: warning: %llu keyword(s) dropped (Maildir keeps 26 per folder)\n",
                 static_cast<unsigned long long>(stats->dropped_keywords));
  if (!quiet) {
    mail::transfer::Summary summary;
    summary.columns = {"exported", "bytes"};
    for (const auto& m : stats->mailboxes) summary.rows.push_back({m.mailbox, {m.imported, m.bytes}});
    summary.totals = {{"exported", stats->messages}, {"bytes", stats->bytes}};
    std::cout << mail::transfer::render_summary(summary, format) << std::flush;
  }
  return 0;
}
