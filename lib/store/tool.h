// The start-up every one-shot tool shares (mailctl, mail-import, mail-export,
// mail-backup): --config, --data-dir, --offline/--online, parsing with a
// one-line usage error, and opening the store. Included by cmd/*/main.cc.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "base/status.h"
#include "config/config.h"
#include "store/store.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace mail::store {

class Tool {
 public:
  explicit Tool(std::string program) : program_(std::move(program)) {}

  // Adds --config and --data-dir (with -c and -d when `short_names`).
  void add_config_options(CLI::App& app, bool short_names = true);
  // Adds --offline and --online (exclusive).
  void add_mode_options(CLI::App& app);
  CLI::Option* offline_option() const { return offline_opt_; }
  CLI::Option* online_option() const { return online_opt_; }

  // Parses argv: nothing when the program goes on, else its exit status (0
  // after --help, --version or --generate-completion; 64 after a usage error,
  // said in one line).
  std::optional<int> parse(CLI::App& app, int argc, char** argv) const;

  // "program: message" on stderr; returns the sysexits code of `code`.
  int fail(Code code, const std::string& message) const;
  int fail(const Status& status) const { return fail(status.code(), status.message()); }
  // "program: message" on stderr; returns 64 (EX_USAGE).
  int usage(const std::string& message) const;

  const std::string& config_file() const { return config_file_; }
  // --config, else $MAIL_CONFIG or ./mail.toml when present ("" = built-in defaults).
  std::string config_path() const;
  Result<Config> load_config() const;
  // --data-dir, else general.data_dir.
  std::string data_dir(const Config& config) const;
  OpenMode mode() const;
  // The store of `config`'s data directory, as --offline/--online ask.
  Result<std::unique_ptr<Store>> open(const Config& config) const;
  // The same after loading the configuration.
  Result<std::unique_ptr<Store>> open() const;

 private:
  std::string program_;
  std::string config_file_;
  std::string data_dir_;
  bool offline_ = false;
  bool online_ = false;
  CLI::Option* offline_opt_ = nullptr;
  CLI::Option* online_opt_ = nullptr;
};

}  // namespace mail::store
