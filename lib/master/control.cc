#include "master/control.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <thread>

#include "master/supervisor.h"

namespace mail::master {

namespace {

Code code_from_name(const std::string& name) {
  for (int c = 0; c <= static_cast<int>(Code::internal); ++c)
    if (code_name(static_cast<Code>(c)) == name) return static_cast<Code>(c);
  return Code::internal;
}

std::string duration_text(int64_t s) {
  if (s < 120) return std::to_string(s) + "s";
  if (s < 7200) return std::to_string(s / 60) + "m";
  if (s < 172800) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

// "smtpd" matches lines of mail-smtpd; "master" those of mail-master.
bool line_of(const std::string& line, const std::string& service) {
  if (service.empty()) return true;
  std::string program = service.rfind("mail-", 0) == 0 ? service : "mail-" + service;
  if (service == "store") program = "mail-stored";
  return line.find(" " + program + "[") != std::string::npos || line.find(" " + service + "[") != std::string::npos;
}

}  // namespace

Result<admin::Output> stack_request(const std::string& data_dir, const std::string& request) {
  std::string path = control_socket_path(data_dir);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return error(Code::io, std::string("socket: ") + std::strerror(errno));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return error(Code::unavailable, "mail-master is not running (no control socket at " + path + ")");
  }
  timeval tv{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string line = request + "\n";
  std::string answer;
  if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(line.size())) {
    char buf[8192];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) answer.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  auto json = nlohmann::json::parse(answer, nullptr, false);
  if (json.is_discarded() || !json.is_object())
    return error(Code::protocol, "mail-master gave no valid answer to '" + request + "'");
  if (!json.value("ok", false))
    return error(code_from_name(json.value("code", "")), json.value("error", "request failed"));

  admin::Output out;
  if (json.contains("columns")) {  // an admin operation's output, as mailctl would render it
    out.columns = json["columns"].get<std::vector<std::string>>();
    out.rows = json["rows"].get<std::vector<std::vector<std::string>>>();
    out.json = json["json"].is_null() ? "" : json["json"].dump();
    return out;
  }
  out.json = json.dump();
  if (json.contains("services")) {
    out.columns = {"SERVICE", "STATE", "PID", "UPTIME", "RESTARTS", "MEMORY", "LISTEN"};
    for (const auto& s : json["services"]) {
      std::string listen;
      for (const auto& l : s["listen"]) listen += (listen.empty() ? "" : " ") + l.get<std::string>();
      int64_t pid = s.value("pid", 0);
      std::string pids;  // every process of the service
      for (const auto& p : s.value("pids", nlohmann::json::array())) pids += (pids.empty() ? "" : ",") + std::to_string(p.get<int64_t>());
      if (pids.empty() && pid) pids = std::to_string(pid);
      out.rows.push_back({s.value("name", ""), s.value("state", ""), pids.empty() ? "-" : pids,
                          pid ? duration_text(s.value("uptime_s", 0)) : "-", std::to_string(s.value("restarts", 0)),
                          pid ? std::to_string(s.value("pss_kb", 0) / 1024) + " MiB" : "-", listen.empty() ? "-" : listen});
    }
  }
  return out;
}

Result<admin::Output> admin_request(const std::string& data_dir, const admin::Operation& op,
                                    const admin::Args& args) {
  nlohmann::json req = {{"op", op.name()}, {"args", args.values}};
  return stack_request(data_dir, "admin " + req.dump());
}

Status print_logs(const std::string& data_dir, const std::string& service, size_t lines, bool follow,
                  std::ostream& out) {
  std::string path = data_dir + "/log/mail.log";
  std::ifstream in(path);
  if (!in) return error(Code::not_found, "no log at " + path + " (is the stack run by mail-master?)");
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    if (!line_of(line, service)) continue;
    last.push_back(line);
    if (last.size() > lines) last.pop_front();
  }
  for (const auto& l : last) out << l << '\n';
  out.flush();
  if (!follow) return Status::ok();
  in.clear();
  for (;;) {
    if (std::getline(in, line)) {
      if (in.eof()) {  // a partial line: wait for the rest
        in.clear();
        in.seekg(-static_cast<std::streamoff>(line.size()), std::ios::cur);
      } else if (line_of(line, service)) {
        out << line << std::endl;
      }
      continue;
    }
    in.clear();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace mail::master
