// Shell completions generated from a program's CLI11 definition, so they can
// never disagree with the options the program really takes. Every program adds
// the hidden --generate-completion option; scripts/gen-completions collects the
// scripts into completions/ and a test fails when the committed ones are stale.
//
// What is completed: subcommands, options (with the parent's options where a
// subcommand falls through to it), and option values: the choices of a
// CLI::IsMember check ("--format table|json"), files for a "FILE" type name,
// directories for "DIR".
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace CLI {
class App;
}

namespace mail {

// The completion script for `app` in `shell` ("bash" or "zsh"); Code::invalid
// for another shell. The program name is app.get_name().
Result<std::string> completion_script(const CLI::App& app, std::string_view shell);

// Adds the hidden option `--generate-completion bash|zsh`, which prints the
// script for `app` on stdout and ends parsing with CLI::Success (exit 0). Call it
// after the last subcommand and option have been added.
void add_completion_option(CLI::App& app);

}  // namespace mail
