// mailctl: the admin CLI. The admin commands come from the admin operations
// table (lib/admin); this file only turns that table into a command line, reads
// passwords, opens the store and prints the result. See man/mailctl.8.
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <iostream>
#include <list>
#include <map>

#include "admin/admin.h"
#include "admin/auth_ops.h"
#include "auth/resolver.h"
#include "base/completion.h"
#include "base/password_input.h"
#include "master/control.h"
#include "queue/submit.h"
#include "store/tool.h"

#ifndef MAIL_VERSION
#define MAIL_VERSION "unknown"
#endif

namespace {

// One admin operation bound to its subcommand and the values CLI11 fills in.
struct Command {
  const mail::admin::Operation* op = nullptr;
  CLI::App* app = nullptr;
  std::map<std::string, std::vector<std::string>> lists;  // arguments taking several values
  std::map<std::string, std::string> singles;             // the others
  std::map<std::string, CLI::Option*> options;
  mail::PasswordSource password;
  bool wants_password = false;
};

std::string metavar(const mail::admin::ArgSpec& arg) {
  using mail::admin::ArgKind;
  switch (arg.kind) {
    case ArgKind::domain: return "DOMAIN";
    case ArgKind::address: return "ADDRESS";
    case ArgKind::source: return "SOURCE";
    case ArgKind::size: return "SIZE";
    case ArgKind::count: return "COUNT";
    default: return "TEXT";
  }
}

void add_operation(CLI::App& group, Command& cmd) {
  const auto& op = *cmd.op;
  cmd.app = group.add_subcommand(op.path.back(), op.help);
  for (const auto& arg : op.args) {
    if (arg.kind == mail::admin::ArgKind::password) {
      cmd.wants_password = true;
      auto* file = cmd.app->add_option("--password-file", cmd.password.file,
                                       "read the password from FILE (one line)")
                       ->type_name("FILE");
      cmd.app->add_flag("--password-stdin", cmd.password.from_stdin, "read the password from stdin (its first line)")
          ->excludes(file);
      continue;
    }
    std::string name = arg.positional ? arg.name : "--" + arg.name;
    CLI::Option* opt = arg.multiple ? cmd.app->add_option(name, cmd.lists[arg.name], arg.help)
                                    : cmd.app->add_option(name, cmd.singles[arg.name], arg.help);
    opt->type_name(arg.positional ? "" : metavar(arg));
    if (arg.required) opt->required();
    cmd.options[arg.name] = opt;
  }
}

// `dmarc send` mails through the queue, a layer above the admin table.
mail::admin::DmarcSendEnv dmarc_send_env(const mail::Config& config) {
  mail::admin::DmarcSendEnv env;
  env.submit = [](mail::store::Store& store, const std::string& sender, const std::string& recipient,
                  const std::string& content) -> mail::Status {
    mail::queue::Submission sub;
    sub.sender = sender;
    sub.recipients.push_back(mail::store::QueueRecipient{recipient});
    sub.content = content;
    sub.now = static_cast<mail::store::UnixTime>(std::time(nullptr));
    auto result = mail::queue::submit(store, sub);
    if (!result) return result.status();
    if (result->recipients.at(0) != mail::Code::ok) return mail::error(result->recipients[0], "no such user " + recipient);
    return {};
  };
  std::string server = config.auth.resolver;
  env.make_resolver = [server] {
    return server.empty() ? mail::auth::make_system_resolver() : mail::auth::make_forwarding_resolver(server);
  };
  env.hostname = config.general.hostname;
  return env;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Administer the mail store (domains, accounts, quotas, aliases) and check the configuration.",
               "mailctl"};
  app.fallthrough();  // global options may follow the subcommand
  app.require_subcommand(1);

  mail::store::Tool tool("mailctl");
  std::string format_name = "table";
  tool.add_config_options(app, false);
  app.add_option("--format", format_name, "output format (default: table)")
      ->type_name("FORMAT")
      ->check(CLI::IsMember({"table", "json"}));
  tool.add_mode_options(app);
  bool via_master = false;
  app.add_flag("--master", via_master, "run the operation in the running mail-master (its control socket)")
      ->excludes(tool.offline_option())
      ->excludes(tool.online_option());
  app.set_version_flag("--version", "mailctl " MAIL_VERSION);

  std::list<Command> commands;
  for (const auto& group : mail::admin::groups()) {
    auto* g = app.add_subcommand(group.name, group.help);
    g->require_subcommand(1);
    for (const auto& op : mail::admin::operations()) {
      if (op.path.front() != group.name) continue;
      commands.emplace_back();
      commands.back().op = &op;
      add_operation(*g, commands.back());
    }
  }

  auto* config_cmd = app.add_subcommand("config", "Check or print the configuration");
  config_cmd->require_subcommand(1);
  std::string check_file;
  auto* config_check = config_cmd->add_subcommand("check", "Validate a configuration file; errors name the line");
  config_check->add_option("CONFIG", check_file, "the file to check (default: as for --config)")->type_name("FILE");
  bool only_defaults = false;
  auto* config_show = config_cmd->add_subcommand("show", "Print the effective configuration as TOML");
  config_show->add_flag("--defaults", only_defaults, "print the built-in defaults instead");

  // The running stack, through mail-master's control socket.
  auto* stack_cmd = app.add_subcommand("stack", "Control the running stack (mail-master)");
  stack_cmd->require_subcommand(1);
  std::string stack_request;
  std::string stack_service;
  struct StackVerb {
    const char* name;
    const char* help;
    bool service;  // takes a SERVICE (optional for start/stop)
  };
  for (const StackVerb& v : {StackVerb{"status", "Show each service: state, pid, uptime, restarts, memory, listeners", false},
                             StackVerb{"reload", "Re-read the configuration; restart services whose settings changed", false},
                             StackVerb{"start", "Start a stopped service", true},
                             StackVerb{"stop", "Stop one service, or the whole stack when none is named", true},
                             StackVerb{"restart", "Restart a service", true}}) {
    auto* sub = stack_cmd->add_subcommand(v.name, v.help);
    if (v.service) sub->add_option("SERVICE", stack_service, "store, smtpd, imapd, ...")->required(std::string(v.name) != "stop");
    sub->callback([&stack_request, name = std::string(v.name)] { stack_request = name; });
  }
  auto* logs_cmd = app.add_subcommand("logs", "Print the stack's collected log (DATA_DIR/log/mail.log)");
  std::string logs_service;
  size_t logs_lines = 20;
  bool logs_follow = false;
  logs_cmd->add_option("SERVICE", logs_service, "only this service's lines (store, smtpd, imapd, master)");
  logs_cmd->add_option("-n,--lines", logs_lines, "how many lines (default 20)");
  logs_cmd->add_flag("-f,--follow", logs_follow, "keep printing new lines");

  mail::add_completion_option(app);

  if (auto done = tool.parse(app, argc, argv)) return *done;

  auto format = mail::admin::parse_format(format_name);
  if (!format) return tool.usage(format.status().message());

  // ---- configuration -------------------------------------------------------------
  if (config_check->parsed()) {
    std::string path = !check_file.empty() ? check_file : tool.config_path();
    if (path.empty()) {
      std::cout << "no configuration file: the built-in defaults are used\n";
      return 0;
    }
    auto config = mail::load_config(path);
    if (!config) return tool.fail(config.status());
    std::cout << path << ": ok\n";
    return 0;
  }
  auto config = tool.load_config();
  if (!config) return tool.fail(config.status());
  if (config_show->parsed()) {
    std::cout << mail::render_config(*config, only_defaults);
    return 0;
  }

  std::string dir = tool.data_dir(*config);
  if (!stack_request.empty()) {
    std::string request = stack_request + (stack_service.empty() ? "" : " " + stack_service);
    auto out = mail::master::stack_request(dir, request);
    if (!out) return tool.fail(out.status());
    std::cout << mail::admin::render(*out, *format) << std::flush;
    return 0;
  }
  if (logs_cmd->parsed()) {
    auto st = mail::master::print_logs(dir, logs_service, logs_lines, logs_follow, std::cout);
    if (!st) return tool.fail(st);
    return 0;
  }

  // ---- an admin operation --------------------------------------------------------
  Command* cmd = nullptr;
  for (auto& c : commands)
    if (c.app->parsed()) cmd = &c;
  if (cmd == nullptr) return tool.usage("no command given (see mailctl --help)");

  mail::admin::Args args;
  for (auto& [name, values] : cmd->lists)
    if (!values.empty()) args.values[name] = values;
  for (auto& [name, value] : cmd->singles)
    if (cmd->options[name]->count() > 0) args.set(name, value);
  if (cmd->wants_password) {
    if (mail::password_needs_terminal(cmd->password))
      return tool.usage(cmd->op->name() +
                   ": no password given and stdin is not a terminal: use --password-file FILE or --password-stdin");
    auto password = mail::read_password(cmd->password);
    if (!password) return tool.fail(password.status());
    args.set("password", std::move(*password));
  }

  if (via_master) {
    auto out = mail::master::admin_request(dir, *cmd->op, args);
    if (!out) return tool.fail(out.status());
    std::cout << mail::admin::render(*out, *format) << std::flush;
    return 0;
  }
  auto store = tool.open(*config);
  if (!store) return tool.fail(store.status());

  mail::admin::set_dmarc_send_env(dmarc_send_env(*config));
  auto out = mail::admin::run(*cmd->op, **store, args);
  if (!out) return tool.fail(out.status());
  std::cout << mail::admin::render(*out, *format) << std::flush;
  return 0;
}
