// mail-queued: delivers the outbound queue (MX or smarthost, retries, DSNs). See mail-queued(8).
#include <CLI/CLI.hpp>

#include <fstream>
#include <thread>

#include "auth/resolver.h"
#include "base/completion.h"
#include "base/log.h"
#include "config/config.h"
#include "queue/runner.h"
#include "service/cli.h"
#include "service/daemon.h"

int main(int argc, char** argv) {
  CLI::App app{"mail-queued: outbound delivery of the mail queue"};
  mail::service::CommonOptions options;
  mail::service::add_common_options(app, options);
  bool once = false;
  app.add_flag("--once", once, "attempt every entry due now, then exit (no daemon)");
  mail::add_completion_option(app);
  CLI11_PARSE(app, argc, argv);

  auto config = mail::service::load_daemon_config("mail-queued", options);
  if (!config) return mail::service::exit_on(config.status());
  // Read while still root: the file may be readable by root only.
  mail::queue::RunnerSetup setup;
  if (const std::string& file = config->queue.smarthost_password_file; !file.empty()) {
    std::ifstream in(file);
    if (!in) {
      mail::log::init("mail-queued");
      return mail::service::exit_on(mail::error(mail::Code::config, "cannot read queue.smarthost_password_file " + file));
    }
    std::getline(in, setup.smarthost_password);
    if (!setup.smarthost_password.empty() && setup.smarthost_password.back() == '\r') setup.smarthost_password.pop_back();
  }
  auto context = mail::service::prepare("mail-queued", options, {});
  if (!context) return mail::service::exit_on(context.status());
  auto resources = mail::service::open_resources(*context);
  if (!resources) return mail::service::exit_on(resources.status());
  const mail::QueueConfig& qc = context->config.queue;
  auto resolver = qc.resolver.empty() ? mail::auth::make_system_resolver()
                                      : mail::auth::make_forwarding_resolver(qc.resolver);
  if (!resolver) return mail::service::exit_on(resolver.status());
  setup.config = qc;
  setup.hostname = resources->hostname;
  auto runner = mail::queue::Runner::create(*resources->store, **resolver, std::move(setup));
  if (!runner) return mail::service::exit_on(runner.status());
  if (once) {
    (*runner)->run_once();
    return 0;
  }
  mail::service::install_signal_handlers();
  mail::service::notify_ready();
  mail::log::info("mail-queued: delivering (poll every {} ms, {} at once)", qc.poll_interval_ms, qc.max_connections);
  // Signals arrive on this thread; the runner stops at the next scan, and
  // in-flight sessions are cut (a message without its final dot is not delivered).
  std::thread deliveries([&] { (*runner)->run(); });
  mail::service::wait_for_stop();
  mail::service::notify_stopping();
  deliveries.join();
  mail::log::info("mail-queued: stopped");
  return 0;
}
