#include "store/tool.h"

#include <CLI/CLI.hpp>

#include <cstdio>

namespace mail::store {

namespace {
constexpr int kUsage = 64;  // EX_USAGE
}

void Tool::add_config_options(CLI::App& app, bool short_names) {
  app.add_option(short_names ? "-c,--config" : "--config", config_file_,
                 "configuration file (default: $MAIL_CONFIG, else ./mail.toml if present, else built-in defaults)")
      ->type_name("FILE");
  app.add_option(short_names ? "-d,--data-dir" : "--data-dir", data_dir_,
                 "data directory; overrides general.data_dir")
      ->type_name("DIR");
}

void Tool::add_mode_options(CLI::App& app) {
  offline_opt_ = app.add_flag("--offline", offline_, "open the store directly; fails if mail-stored runs");
  online_opt_ = app.add_flag("--online", online_, "only go through the running mail-stored")->excludes(offline_opt_);
}

std::optional<int> Tool::parse(CLI::App& app, int argc, char** argv) const {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    return usage(e.what());
  }
  return std::nullopt;
}

int Tool::fail(Code code, const std::string& message) const {
  std::fprintf(stderr, "%s: %s\n", program_.c_str(), message.c_str());
  return exit_code(code);
}

int Tool::usage(const std::string& message) const {
  std::fprintf(stderr, "%s: %s\n", program_.c_str(), message.c_str());
  return kUsage;
}

std::string Tool::config_path() const { return !config_file_.empty() ? config_file_ : default_config_path(); }

Result<Config> Tool::load_config() const { return mail::load_config(config_path()); }

std::string Tool::data_dir(const Config& config) const {
  return data_dir_.empty() ? config.general.data_dir : data_dir_;
}

OpenMode Tool::mode() const {
  return offline_ ? OpenMode::direct : online_ ? OpenMode::daemon : OpenMode::automatic;
}

Result<std::unique_ptr<Store>> Tool::open(const Config& config) const {
  return open_store(StorePaths{data_dir(config)}, mode());
}

Result<std::unique_ptr<Store>> Tool::open() const {
  MAIL_ASSIGN_OR_RETURN(Config config, load_config());
  return open(config);
}

}  // namespace mail::store
