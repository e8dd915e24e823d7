#include "base/password_input.h"

#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

namespace mail {
namespace {

// The terminal state to restore if a signal arrives while echo is off.
struct termios g_saved;
volatile sig_atomic_t g_echo_off = 0;

extern "C" void restore_and_reraise(int sig) {
  if (g_echo_off) tcsetattr(STDIN_FILENO, TCSANOW, &g_saved);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

void drop_newline(std::string& s) {
  if (!s.empty() && s.back() == '\n') s.pop_back();
  if (!s.empty() && s.back() == '\r') s.pop_back();
}

// Echo goes off before the prompt appears, so whatever is typed after it is never
// shown; TCSANOW keeps input typed ahead instead of discarding it.
Result<std::string> prompt_once(std::string_view prompt) {
  struct termios t;
  if (tcgetattr(STDIN_FILENO, &t) != 0)
    return error(Code::io, std::string("cannot read the terminal: ") + std::strerror(errno));
  g_saved = t;
  t.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  t.c_lflag |= ECHONL;
  g_echo_off = 1;
  auto old_int = std::signal(SIGINT, restore_and_reraise);
  auto old_term = std::signal(SIGTERM, restore_and_reraise);
  bool restore = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
  std::cerr << prompt << ": " << std::flush;
  std::string line;
  bool got = static_cast<bool>(std::getline(std::cin, line));
  if (restore) tcsetattr(STDIN_FILENO, TCSANOW, &g_saved);
  g_echo_off = 0;
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
  if (!got) return error(Code::invalid, "no password entered");
  drop_newline(line);
  return line;
}

}  // namespace

bool password_needs_terminal(const PasswordSource& source) {
  return source.file.empty() && !source.from_stdin && !isatty(STDIN_FILENO);
}

Result<std::string> read_password(const PasswordSource& source, std::string_view prompt) {
  std::string password;
  if (!source.file.empty()) {
    std::ifstream in(source.file, std::ios::binary);
    if (!in) return error(Code::io, "cannot read password file " + source.file + ": " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    password = text.str();
    drop_newline(password);
    if (password.find('\n') != std::string::npos)
      return error(Code::invalid, "password file " + source.file + " has more than one line");
  } else if (source.from_stdin) {
    if (!std::getline(std::cin, password)) return error(Code::invalid, "no password on stdin");
    drop_newline(password);
  } else {
    if (!isatty(STDIN_FILENO))
      return error(Code::invalid, "no password given and stdin is not a terminal: use --password-file or --password-stdin");
    MAIL_ASSIGN_OR_RETURN(password, prompt_once(prompt));
    if (password.empty()) return error(Code::invalid, "the password is empty");
    MAIL_ASSIGN_OR_RETURN(auto again, prompt_once(std::string(prompt) + " (again)"));
    if (again != password) return error(Code::invalid, "the passwords do not match");
  }
  if (password.empty()) return error(Code::invalid, "the password is empty");
  return password;
}

}  // namespace mail
