// mail-master: runs the whole stack (see man/mail-master.8).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>

#include "base/completion.h"
#include "master/supervisor.h"

int main(int argc, char** argv) {
  CLI::App app{"mail-master: run and supervise the mail stack"};
  mail::master::MasterOptions options;
  app.add_option("-c,--config", options.config_path, "configuration file (default: $MAIL_CONFIG or ./mail.toml)");
  app.add_option("-d,--data-dir", options.data_dir, "data directory (overrides general.data_dir)");
  app.add_option("--bin-dir", options.bin_dir, "where the daemons are (default: next to mail-master)");
  app.add_option("--drain", options.drain_seconds, "seconds sessions get to finish on stop")->capture_default_str();
  app.add_option("--ready-timeout", options.ready_timeout_seconds,
                 "seconds a daemon may take to report ready before it is killed and restarted")
      ->capture_default_str()
      ->check(CLI::Range(1u, 3600u));
  mail::add_completion_option(app);
  CLI11_PARSE(app, argc, argv);
  if (options.config_path.empty()) options.config_path = mail::default_config_path();
  if (options.bin_dir.empty()) {
    std::error_code ec;
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    options.bin_dir = ec ? "." : self.parent_path().string();
  }
  return mail::master::run_supervisor(options);
}
