#include "queue/smtp_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "base/base64.h"
#include "base/log.h"

namespace mail::queue {

namespace {

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
  return out;
}

bool enhanced_code(std::string_view t) {
  // class.subject.detail with class 2, 4 or 5
  if (t.size() < 5 || (t[0] != '2' && t[0] != '4' && t[0] != '5') || t[1] != '.') return false;
  size_t dots = 0;
  for (char c : t.substr(1)) {
    if (c == '.') ++dots;
    else if (c < '0' || c > '9') return false;
  }
  return dots == 2 && t.back() != '.';
}

}  // namespace

Result<int> connect_to(const std::string& ip, uint16_t port, int timeout_ms) {
  sockaddr_storage ss{};
  socklen_t len;
  int family;
  if (ip.find(':') != std::string::npos) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    if (inet_pton(AF_INET6, ip.c_str(), &a->sin6_addr) != 1) return error(Code::invalid, "bad address " + ip);
    len = sizeof *a;
    family = AF_INET6;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    if (inet_pton(AF_INET, ip.c_str(), &a->sin_addr) != 1) return error(Code::invalid, "bad address " + ip);
    len = sizeof *a;
    family = AF_INET;
  }
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return error(Code::temporary, std::string("socket: ") + std::strerror(errno));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
    std::string why = std::strerror(errno);
    ::close(fd);
    return error(Code::temporary, "connect to " + ip + ": " + why);
  }
  pollfd p{fd, POLLOUT, 0};
  int n;
  do n = ::poll(&p, 1, timeout_ms);
  while (n < 0 && errno == EINTR);
  int err = 0;
  socklen_t el = sizeof err;
  if (n <= 0 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
    ::close(fd);
    return error(Code::temporary, "connect to " + ip + ": " + (n == 0 ? "timed out" : std::strerror(err ? err : errno)));
  }
  return fd;
}

std::string SmtpReply::str() const { return std::to_string(code) + " " + text; }

std::string SmtpReply::status() const {
  size_t sp = text.find(' ');
  std::string_view first = std::string_view(text).substr(0, sp);
  if (enhanced_code(first) && first[0] == static_cast<char>('0' + code / 100)) return std::string(first);
  if (code >= 500) return "5.0.0";
  if (code >= 400) return "4.0.0";
  return "2.0.0";
}

std::string dot_stuff(std::string_view content) {
  std::string out;
  out.reserve(content.size() + content.size() / 64 + 8);
  bool line_start = true;
  for (char c : content) {
    if (line_start && c == '.') out.push_back('.');
    out.push_back(c);
    line_start = c == '\n';
  }
  if (!out.empty() && out.back() != '\n') out += "\r\n";
  out += ".\r\n";
  return out;
}

SmtpClient::~SmtpClient() = default;

Result<std::optional<SmtpReply>> take_reply(std::string& in) {
  SmtpReply reply;
  std::string text;
  size_t pos = 0;
  for (bool first = true;; first = false) {
    size_t nl = in.find('\n', pos);
    if (nl == std::string::npos) {
      if (in.size() > (1u << 20)) return error(Code::protocol, "reply too long");
      return std::optional<SmtpReply>();
    }
    std::string_view line(in.data() + pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    if (line.size() < 3 || line[0] < '2' || line[0] > '5' || !digit(line[1]) || !digit(line[2]) ||
        (line.size() > 3 && line[3] != ' ' && line[3] != '-'))
      return error(Code::protocol, "malformed reply: " + std::string(line.substr(0, 100)));
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (reply.code && code != reply.code) return error(Code::protocol, "inconsistent multi-line reply");
    reply.code = code;
    if (!first) text += "\n";
    if (line.size() > 4) text.append(line.substr(4));
    if (line.size() == 3 || line[3] == ' ') break;
  }
  in.erase(0, pos);
  reply.text = std::move(text);
  return std::optional<SmtpReply>(std::move(reply));
}

Extensions parse_ehlo(const SmtpReply& r) {
  Extensions ext;
  size_t pos = 0;
  bool first = true;
  while (pos <= r.text.size()) {
    size_t nl = r.text.find('\n', pos);
    std::string line = upper(r.text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos));
    pos = nl == std::string::npos ? r.text.size() + 1 : nl + 1;
    if (first) {  // the greeting line names the host
      first = false;
      continue;
    }
    std::string word = line.substr(0, line.find(' '));
    if (word == "PIPELINING") ext.pipelining = true;
    else if (word == "STARTTLS") ext.starttls = true;
    else if (word == "8BITMIME") ext.eightbit = true;
    else if (word == "SMTPUTF8") ext.smtputf8 = true;
    else if (word == "DSN") ext.dsn = true;
    else if (word == "CHUNKING") ext.chunking = true;
    else if (word == "BINARYMIME") ext.binarymime = true;
    else if (word == "AUTH") ext.auth_plain = (line + " ").find(" PLAIN ") != std::string::npos;
    else if (word == "SIZE" && line.size() > 5) ext.size = std::strtoull(line.c_str() + 5, nullptr, 10);
  }
  return ext;
}

Result<SmtpReply> SmtpClient::read_reply() {
  for (;;) {
    MAIL_ASSIGN_OR_RETURN(auto reply, take_reply(in_));
    if (reply) return std::move(*reply);
    char buf[8192];
    auto got = stream_->read_some(buf, sizeof buf, options_.command_timeout_ms);
    if (!got) return error(got.code() == Code::unavailable ? Code::unavailable : Code::temporary,
                           "reading the reply: " + got.status().message());
    if (*got == 0) return error(Code::temporary, "connection closed by the remote host");
    in_.append(buf, *got);
  }
}

Status SmtpClient::command(const std::string& line) {
  auto st = stream_->write_all(line + "\r\n");
  if (!st) return error(Code::temporary, "sending: " + st.message());
  return Status::ok();
}

Result<SmtpReply> SmtpClient::ask(const std::string& line) {
  MAIL_TRY(command(line));
  auto r = read_reply();
  if (r) last_ = *r;
  return r;
}

Status SmtpClient::ehlo() {
  MAIL_ASSIGN_OR_RETURN(SmtpReply r, ask("EHLO " + options_.helo));
  ext_ = Extensions{};
  if (!r.ok()) {
    MAIL_ASSIGN_OR_RETURN(r, ask("HELO " + options_.helo));
    if (!r.ok()) return error(r.permanent() ? Code::denied : Code::temporary, "HELO refused: " + r.str());
    return Status::ok();
  }
  ext_ = parse_ehlo(r);
  return Status::ok();
}

Status SmtpClient::open(const std::string& ip, uint16_t port, const ClientOptions& options) {
  options_ = options;
  MAIL_ASSIGN_OR_RETURN(int fd, connect_to(ip, port, options.connect_timeout_ms));
  stream_ = std::make_unique<service::Stream>(fd);
  MAIL_ASSIGN_OR_RETURN(SmtpReply greeting, read_reply());
  last_ = greeting;
  if (!greeting.ok()) return error(greeting.permanent() ? Code::denied : Code::temporary, "greeting: " + greeting.str());
  MAIL_TRY(ehlo());
  if (options.tls && ext_.starttls) {
    MAIL_ASSIGN_OR_RETURN(SmtpReply r, ask("STARTTLS"));
    if (r.ok()) {
      in_.clear();  // nothing the server sent before TLS may be used after (STARTTLS injection)
      auto st = stream_->start_tls_client(*options.tls, options.tls_name, options.command_timeout_ms);
      if (!st) return error(Code::temporary, st.message());
      MAIL_TRY(ehlo());
    } else if (options.require_tls) {
      return error(Code::temporary, "STARTTLS refused: " + r.str());
    }
  }
  if (options.require_tls && !tls()) return error(Code::temporary, "TLS is required but the host does not offer STARTTLS");
  if (!options.auth_user.empty()) {
    if (!ext_.auth_plain) return error(Code::temporary, "the host does not offer AUTH PLAIN");
    std::string token = std::string(1, '\0') + options.auth_user + '\0' + options.auth_password;
    MAIL_ASSIGN_OR_RETURN(SmtpReply r, ask("AUTH PLAIN " + base64_encode(token)));
    if (!r.ok()) return error(r.permanent() ? Code::denied : Code::temporary, "authentication failed: " + r.str());
  }
  return Status::ok();
}

Result<TransactionResult> SmtpClient::send(const Envelope& env, std::string_view content) {
  TransactionResult res;
  std::string mail = "MAIL FROM:<" + env.sender + ">";
  if (ext_.size) mail += " SIZE=" + std::to_string(content.size());
  if (env.binary) mail += " BODY=BINARYMIME";
  else if (env.eightbit && ext_.eightbit) mail += " BODY=8BITMIME";
  if (env.smtputf8 && ext_.smtputf8) mail += " SMTPUTF8";
  if (ext_.dsn) mail += env.mail_params;
  std::vector<std::string> rcpts;
  for (size_t i = 0; i < env.recipients.size(); ++i) {
    std::string line = "RCPT TO:<" + env.recipients[i] + ">";
    if (ext_.dsn && i < env.rcpt_params.size()) line += env.rcpt_params[i];
    rcpts.push_back(std::move(line));
  }
  const bool bdat = ext_.chunking;
  if (ext_.pipelining) {
    // RFC 2920: MAIL, every RCPT and DATA in one write; the replies come back in order.
    std::string batch = mail + "\r\n";
    for (const auto& r : rcpts) batch += r + "\r\n";
    if (!bdat) batch += "DATA\r\n";
    auto st = stream_->write_all(batch);
    if (!st) return error(Code::temporary, "sending: " + st.message());
    MAIL_ASSIGN_OR_RETURN(res.mail, read_reply());
    for (size_t i = 0; i < rcpts.size(); ++i) {
      MAIL_ASSIGN_OR_RETURN(SmtpReply r, read_reply());
      res.rcpts.push_back(res.mail.ok() ? r : res.mail);
    }
  } else {
    MAIL_ASSIGN_OR_RETURN(res.mail, ask(mail));
    for (const auto& r : rcpts) {
      if (!res.mail.ok()) {
        res.rcpts.push_back(res.mail);
        continue;
      }
      MAIL_ASSIGN_OR_RETURN(SmtpReply rr, ask(r));
      res.rcpts.push_back(rr);
    }
  }
  bool any = false;
  for (const auto& r : res.rcpts) any = any || r.ok();
  if (bdat) {
    if (!res.mail.ok() || !any) {
      (void)ask("RSET");
      return res;
    }
    MAIL_TRY(command("BDAT " + std::to_string(content.size()) + " LAST"));
    auto st = stream_->write_all(content);
    if (!st) return error(Code::temporary, "sending: " + st.message());
    MAIL_ASSIGN_OR_RETURN(res.data, read_reply());
    return res;
  }
  SmtpReply go;
  if (ext_.pipelining) {
    MAIL_ASSIGN_OR_RETURN(go, read_reply());  // the DATA reply, sent in the batch
  } else if (res.mail.ok() && any) {
    MAIL_ASSIGN_OR_RETURN(go, ask("DATA"));
  }
  if (go.code != 354) {
    if (!res.mail.ok() || !any) {
      (void)ask("RSET");
      return res;
    }
    res.data = go;  // DATA refused: the recipients get this reply
    return res;
  }
  if (!any) {  // pipelined DATA accepted with no recipient: send an empty message and drop it
    MAIL_TRY(command("."));
    (void)read_reply();
    return res;
  }
  auto st = stream_->write_all(dot_stuff(content));
  if (!st) return error(Code::temporary, "sending: " + st.message());
  MAIL_ASSIGN_OR_RETURN(res.data, read_reply());
  return res;
}

Status SmtpClient::reset() {
  if (!stream_) return error(Code::temporary, "not connected");
  MAIL_ASSIGN_OR_RETURN(SmtpReply r, ask("RSET"));
  if (!r.ok()) return error(Code::temporary, "RSET refused: " + r.str());
  return Status::ok();
}

void SmtpClient::quit() {
  if (!stream_) return;
  (void)command("QUIT");
  (void)read_reply();
  stream_.reset();
}

}  // namespace mail::queue
