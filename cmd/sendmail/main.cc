// sendmail: the sendmail(8)-compatible entry point for cron, mail(1) and
// scripts. Reads a message on stdin and submits it through mail-stored. See sendmail(8).
#include <pwd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <ctime>
#include <iostream>
#include <random>

#include "base/address.h"
#include "base/completion.h"
#include "base/date.h"
#include "config/config.h"
#include "queue/dsn.h"
#include "queue/submit.h"
#include "store/store.h"

namespace {

int fail(mail::Code code, const std::string& message) {
  std::fprintf(stderr, "sendmail: %s\n", message.c_str());
  return mail::exit_code(code);
}

// The addresses of an address-list header value: "<a@b>", "Name <a@b>, c@d".
std::vector<std::string> addresses_in(std::string_view value) {
  std::vector<std::string> out;
  std::string item;
  bool quoted = false;
  int angle = 0, comment = 0;
  auto flush = [&] {
    std::string a = item;
    size_t lt = a.rfind('<');
    if (lt != std::string::npos) a = a.substr(lt + 1, a.find('>', lt) - lt - 1);
    size_t b = a.find_first_not_of(" \t\r\n"), e = a.find_last_not_of(" \t\r\n");
    a = b == std::string::npos ? "" : a.substr(b, e - b + 1);
    if (a.find('@') != std::string::npos) out.push_back(a);
    item.clear();
  };
  for (char c : value) {
    if (c == '"' && !comment) quoted = !quoted;
    else if (!quoted && c == '(') ++comment;
    else if (!quoted && c == ')' && comment) { --comment; continue; }
    else if (!quoted && !comment && c == '<') ++angle;
    else if (!quoted && !comment && c == '>' && angle) --angle;
    if (comment) continue;
    if (c == ',' && !quoted && !angle) flush();
    else item.push_back(c);
  }
  flush();
  return out;
}

bool is_field(std::string_view line, std::string_view name) {
  if (line.size() <= name.size() || line[name.size()] != ':') return false;
  for (size_t i = 0; i < name.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(line[i])) != std::tolower(static_cast<unsigned char>(name[i]))) return false;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // sendmail's -oX options: -oi is -i; the others (-odb, -oem, ...) are accepted and ignored.
  std::vector<std::string> args;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (i > 0 && a.rfind("-o", 0) == 0 && a.size() > 2) {
      if (a == "-oi") args.push_back("-i");
      continue;
    }
    if (i > 0 && (a == "-bm" || a == "-em" || a == "-ee" || a == "-v")) continue;
    args.push_back(a);
  }
  std::vector<char*> argp;
  for (auto& a : args) argp.push_back(a.data());

  CLI::App app{"sendmail: submit a message read on stdin for delivery"};
  std::string config_path, data_dir, from, full_name;
  bool read_headers = false, dots = false;
  std::vector<std::string> recipients;
  app.add_option("--config", config_path, "configuration file (default: $MAIL_CONFIG or ./mail.toml)");
  app.add_option("--data-dir", data_dir, "data directory (overrides general.data_dir)");
  app.add_flag("-t", read_headers, "take recipients from To, Cc and Bcc (Bcc is removed)");
  app.add_option("-f", from, "envelope sender (default: the invoking user at general.hostname)");
  app.add_option("-F", full_name, "full name for a From field added when the message has none");
  app.add_flag("-i", dots, "a line with a single dot does not end the message (also -oi)");
  app.add_option("recipients", recipients, "recipient addresses");
  mail::add_completion_option(app);
  try {
    app.parse(static_cast<int>(argp.size()), argp.data());
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 64;  // EX_USAGE
  }

  auto config = mail::load_config(config_path.empty() ? mail::default_config_path() : config_path);
  if (!config) return fail(config.code(), config.status().message());
  if (!data_dir.empty()) config->general.data_dir = data_dir;
  std::string hostname = config->general.hostname;
  if (hostname.empty()) {
    char buf[256] = {};
    ::gethostname(buf, sizeof buf - 1);
    hostname = buf;
  }

  // The message: LF or CRLF lines, to CRLF; a lone "." ends it unless -i.
  std::string message, line;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!dots && line == ".") break;
    message += line;
    message += "\r\n";
  }
  if (std::cin.bad()) return fail(mail::Code::io, "cannot read the message from stdin");

  // Header: recipients for -t, Bcc removed, missing From/Date/Message-ID added.
  size_t header_end = message.find("\r\n\r\n");
  if (header_end == std::string::npos) header_end = message.rfind("\r\n") == message.size() - 2 ? message.size() : 0;
  std::string header = message.substr(0, header_end == message.size() ? header_end : header_end + 2);
  std::string body = message.substr(header.size());
  std::string kept;
  bool has_from = false, has_date = false, has_id = false, in_bcc = false;
  std::string current;  // the field being collected for -t
  auto take = [&] {
    if (!current.empty() && read_headers) {
      size_t colon = current.find(':');
      for (auto& a : addresses_in(std::string_view(current).substr(colon + 1))) recipients.push_back(a);
    }
    current.clear();
  };
  size_t pos = 0;
  while (pos < header.size()) {
    size_t nl = header.find("\r\n", pos);
    std::string l = header.substr(pos, nl - pos);
    pos = nl + 2;
    bool continuation = !l.empty() && (l[0] == ' ' || l[0] == '\t');
    if (continuation) {
      if (!current.empty()) current += l;
      if (!in_bcc) kept += l + "\r\n";
      continue;
    }
    take();
    in_bcc = is_field(l, "Bcc");
    if (is_field(l, "To") || is_field(l, "Cc") || in_bcc) current = l;
    has_from = has_from || is_field(l, "From");
    has_date = has_date || is_field(l, "Date");
    has_id = has_id || is_field(l, "Message-ID");
    if (!in_bcc) kept += l + "\r\n";
  }
  take();

  if (from.empty()) {
    passwd* pw = ::getpwuid(::getuid());
    from = std::string(pw ? pw->pw_name : "nobody") + "@" + hostname;
  }
  std::string sender;
  if (from != "<>" && !from.empty()) {
    auto a = mail::parse_address(from);
    if (!a) return fail(mail::Code::invalid, "bad sender address '" + from + "': " + a.status().message());
    sender = a->str();
  }
  std::vector<mail::store::QueueRecipient> rcpts;
  for (const auto& r : recipients) {
    auto a = mail::parse_address(r);
    if (!a) return fail(mail::Code::invalid, "bad recipient address '" + r + "': " + a.status().message());
    mail::store::QueueRecipient q;
    q.address = a->str();
    bool dup = false;
    for (const auto& x : rcpts) dup = dup || x.address == q.address;
    if (!dup) rcpts.push_back(std::move(q));
  }
  if (rcpts.empty()) return fail(mail::Code::invalid, "no recipients (give them as arguments, or -t)");

  const int64_t now = std::time(nullptr);
  std::string added = "Received: by " + hostname + " (mailtk sendmail, uid " + std::to_string(::getuid()) + ");\r\n\t" +
                      mail::rfc5322_date(now) + "\r\n";
  if (!has_from) added += "From: " + (full_name.empty() ? "" : "\"" + full_name + "\" ") + "<" + sender + ">\r\n";
  if (!has_date) added += "Date: " + mail::rfc5322_date(now) + "\r\n";
  if (!has_id) {
    std::mt19937_64 rng{std::random_device{}()};
    char id[64];
    std::snprintf(id, sizeof id, "%lld.%016llx", static_cast<long long>(now), static_cast<unsigned long long>(rng()));
    added += std::string("Message-ID: <") + id + "@" + hostname + ">\r\n";
  }

  // Only through mail-stored: with the stack down, fail with EX_TEMPFAIL so the
  // caller keeps the message (never a direct open that would leave root-owned files).
  auto store = mail::store::connect_store(mail::store::StorePaths{config->general.data_dir});
  if (!store) return fail(mail::Code::temporary, "mail system unavailable, message not sent: " + store.status().message());

  mail::queue::Submission s;
  s.sender = sender;
  s.recipients = rcpts;
  s.content = added + kept + body;
  s.now = now;
  auto r = mail::queue::submit(**store, s);
  if (!r) return fail(r.code() == mail::Code::unavailable ? mail::Code::temporary : r.code(),
                      "message not sent: " + r.status().message());
  std::vector<std::string> unknown;
  for (size_t i = 0; i < rcpts.size(); ++i)
    if (r->recipients[i] != mail::Code::ok) unknown.push_back(rcpts[i].address);
  if (!unknown.empty()) {
    std::string list;
    for (auto& u : unknown) list += (list.empty() ? "" : ", ") + u;
    return fail(mail::Code::not_found, (unknown.size() == rcpts.size() ? "message not sent: no such user: "
                                                                      : "not sent to unknown users: ") + list);
  }
  return 0;
}
