// Reading a password for a command-line program: from a file, from stdin, or
// from a terminal prompt (asked twice, without echo). Never from argv, where
// every local user could read it in the process list.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace mail {

struct PasswordSource {
  std::string file;         // read the file; one trailing newline is dropped
  bool from_stdin = false;  // read stdin's first line
};

// True when no source is given and stdin is not a terminal: there is nowhere
// to ask, and a program must say so (a usage error) instead of hanging.
bool password_needs_terminal(const PasswordSource& source);

// Reads the password from the source, or prompts on the terminal ("<prompt>: "
// and "<prompt> (again): " on stderr). Errors: invalid for an empty password or
// mismatched entries, io for an unreadable file, invalid when there is no terminal.
Result<std::string> read_password(const PasswordSource& source, std::string_view prompt = "Password");

}  // namespace mail
