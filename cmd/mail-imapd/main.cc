// mail-imapd: the IMAP4rev2/IMAP4rev1 server. See mail-imapd(8).
#include <CLI/CLI.hpp>

#include "base/log.h"
#include "config/config.h"
#include "imap/server.h"
#include "base/completion.h"
#include "service/cli.h"
#include "service/daemon.h"
#include "service/tls.h"
#include "spam/learn.h"
#include "store/store.h"

int main(int argc, char** argv) {
  CLI::App app{"mail-imapd: IMAP4rev2 and IMAP4rev1 server"};
  mail::service::CommonOptions options;
  mail::service::add_common_options(app, options);
  mail::add_completion_option(app);
  CLI11_PARSE(app, argc, argv);

  // The configured listener addresses, for when none are inherited or given.
  auto config = mail::service::load_daemon_config("mail-imapd", options);
  if (!config) return mail::service::exit_on(config.status());
  auto context = mail::service::prepare(
      "mail-imapd", options, {{"imap", config->imap.listen}, {"imaps", config->imap.listen_tls}});
  if (!context) return mail::service::exit_on(context.status());
  const mail::Config& cfg = context->config;

  auto resources = mail::service::open_resources(*context);
  if (!resources) return mail::service::exit_on(resources.status());
  mail::spam::configure_learning(cfg.spam);  // moving mail into/out of Junk trains as [spam] says
  mail::imap::Server server(*resources->store, cfg.imap, resources->tls);
  return mail::service::serve(*context, [&](int fd, const mail::service::Listener& listener) {
    server.run(fd, listener.name == "imaps");
  });
}
