// mail-smtpd: the SMTP server (MX, submission, submissions, LMTP). See mail-smtpd(8).
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "base/log.h"
#include "config/config.h"
#include "base/completion.h"
#include "service/cli.h"
#include "service/daemon.h"
#include "service/tls.h"
#include "smtp/auth_filter.h"
#include "smtp/dkim_sign_filter.h"
#include "smtp/server.h"
#include "smtp/spam_filter.h"
#include "store/store.h"

int main(int argc, char** argv) {
  CLI::App app{"mail-smtpd: SMTP server for inbound mail (MX), submission and LMTP"};
  mail::service::CommonOptions options;
  mail::service::add_common_options(app, options);
  int pregreet_ms = 100;
  app.add_option("--pregreet-ms", pregreet_ms, "MX clients must wait this long for the greeting (0: no check)")
      ->check(CLI::Range(0, 10000));
  mail::add_completion_option(app);
  CLI11_PARSE(app, argc, argv);

  auto config = mail::service::load_daemon_config("mail-smtpd", options);
  if (!config) return mail::service::exit_on(config.status());
  const mail::SmtpConfig& smtp = config->smtp;
  auto context = mail::service::prepare("mail-smtpd", options,
                                        {{"mx", smtp.listen_mx},
                                         {"submission", smtp.listen_submission},
                                         {"submissions", smtp.listen_submissions},
                                         {"lmtp", smtp.listen_lmtp}});
  if (!context) return mail::service::exit_on(context.status());
  const mail::Config& cfg = context->config;
  auto resources = mail::service::open_resources(*context);
  if (!resources) return mail::service::exit_on(resources.status());
  mail::smtp::Server server(*resources->store, cfg.smtp, resources->hostname, resources->tls);
  server.set_pregreet_ms(pregreet_ms);
  auto inbound_auth = mail::smtp::make_inbound_auth(cfg, resources->hostname, *resources->store);
  if (!inbound_auth) return mail::service::exit_on(inbound_auth.status());
  if (inbound_auth->filter) server.add_filter(inbound_auth->filter.get());
  auto spam_filter = mail::smtp::SpamFilter::make(cfg, *resources->store, resources->hostname);
  if (!spam_filter) return mail::service::exit_on(spam_filter.status());
  if (*spam_filter) server.add_filter(spam_filter->get());
  mail::smtp::DkimSignFilter dkim_sign(*resources->store);
  server.add_filter(&dkim_sign);
  return mail::service::serve(*context, [&](int fd, const mail::service::Listener& listener) {
    const std::string& name = listener.name;
    mail::smtp::Mode mode = name == "lmtp"                                   ? mail::smtp::Mode::lmtp
                            : (name == "submission" || name == "submissions") ? mail::smtp::Mode::submission
                                                                               : mail::smtp::Mode::mx;
    server.run(fd, mode, name == "submissions");
  });
}
