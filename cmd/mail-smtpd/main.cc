// mail-smtpd: the SMTP server (MX, submission, submissions, LMTP). See mail-smtpd(8).
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "base/log.h"
#include "config/config.h"
#include "base/completion.h"
#include "service/cli.h"
#include "service/daemon.h"
#include "service/tls.h"
#include "smtp/server.h"
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

  auto config = mail::load_config(options.config_path.empty() ? mail::default_config_path() : options.config_path);
  if (!config) {
    mail::log::init("mail-smtpd");
    mail::log::error("{}", config.status().message());
    return mail::exit_code(config.code());
  }
  const mail::SmtpConfig& smtp = config->smtp;
  auto context = mail::service::prepare("mail-smtpd", options,
                                        {{"mx", smtp.listen_mx},
                                         {"submission", smtp.listen_submission},
                                         {"submissions", smtp.listen_submissions},
                                         {"lmtp", smtp.listen_lmtp}});
  if (!context) {
    mail::log::error("{}", context.status().message());
    return mail::exit_code(context.code());
  }
  const mail::Config& cfg = context->config;
  std::string hostname = cfg.general.hostname;
  if (hostname.empty()) {
    char buf[256] = {};
    hostname = ::gethostname(buf, sizeof buf - 1) == 0 && buf[0] ? buf : "localhost";
  }

  auto tls = mail::service::TlsContext::create_server(cfg.tls, cfg.general.data_dir, hostname);
  if (!tls) {
    mail::log::error("TLS: {}", tls.status().message());
    return mail::exit_code(tls.code());
  }
  auto store = mail::service::connect_store(cfg, std::chrono::seconds(30));
  if (!store) {
    mail::log::error("cannot open the store in {}: {}", cfg.general.data_dir, store.status().to_string());
    return mail::exit_code(store.code());
  }
  mail::log::info("store: {} ({})", cfg.general.data_dir, (*store)->backend_name());

  mail::smtp::Server server(**store, cfg.smtp, hostname, *tls);
  server.set_pregreet_ms(pregreet_ms);
  return mail::service::serve(*context, [&](int fd, const mail::service::Listener& listener) {
    const std::string& name = listener.name;
    mail::smtp::Mode mode = name == "lmtp"                                   ? mail::smtp::Mode::lmtp
                            : (name == "submission" || name == "submissions") ? mail::smtp::Mode::submission
                                                                               : mail::smtp::Mode::mx;
    server.run(fd, mode, name == "submissions");
  });
}
