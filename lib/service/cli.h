// The command-line options every daemon shares. Included only by cmd/*/main.cc,
// which already use CLI11.
#pragma once

#include <CLI/CLI.hpp>

#include "service/daemon.h"

namespace mail::service {

inline void add_common_options(CLI::App& app, CommonOptions& options) {
  app.add_option("-c,--config", options.config_path, "configuration file (default: $MAIL_CONFIG or ./mail.toml)");
  app.add_option("-d,--data-dir", options.data_dir, "data directory (overrides general.data_dir)");
  app.add_option("-l,--listen", options.listen, "listen on [NAME=]ADDR (host:port, [v6]:port, unix:/path); repeatable");
  app.add_option("--log-level", options.log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
}

}  // namespace mail::service
