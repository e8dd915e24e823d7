// The outbound SMTP client: one connection to one host, EHLO (HELO fallback),
// opportunistic or required STARTTLS, AUTH PLAIN, and one transaction with
// per-recipient results (PIPELINING when offered, BDAT when offered).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "service/tls.h"

namespace mail::queue {

// One SMTP reply: code and its text lines joined with "; ".
struct SmtpReply {
  int code = 0;
  std::string text;
  bool ok() const { return code >= 200 && code < 300; }
  bool permanent() const { return code >= 500; }
  // "550 5.1.1 No such user" as the peer said it (first line, then the rest).
  std::string str() const;
  // The enhanced status code (RFC 3463) of the reply, or one derived from the code.
  std::string status() const;
};

struct Extensions {
  bool pipelining = false, starttls = false, eightbit = false, smtputf8 = false, dsn = false;
  bool chunking = false, binarymime = false, auth_plain = false;
  uint64_t size = 0;  // 0: no limit given
};

struct ClientOptions {
  std::string helo;
  int connect_timeout_ms = 30000;
  int command_timeout_ms = 300000;
  std::shared_ptr<service::TlsContext> tls;  // null: no STARTTLS
  bool require_tls = false;
  std::string tls_name;  // SNI and, when the context verifies, the name checked
  std::string auth_user, auth_password;  // empty user: no AUTH
};

// What the transaction carries; the content has CRLF lines.
struct Envelope {
  std::string sender;
  std::vector<std::string> recipients;
  std::vector<std::string> rcpt_params;  // per recipient: " NOTIFY=... ORCPT=..." (DSN only)
  std::string mail_params;               // " RET=... ENVID=..." (DSN only)
  bool eightbit = false, binary = false, smtputf8 = false;
};

struct TransactionResult {
  SmtpReply mail;                   // the MAIL reply (non-2xx fails every recipient)
  std::vector<SmtpReply> rcpts;     // per recipient
  SmtpReply data;                   // the final reply after the content
};

class SmtpClient {
 public:
  ~SmtpClient();

  // Connects to ip:port and greets (EHLO, STARTTLS, EHLO, AUTH). A non-OK Status
  // carries the failing reply in `last()`; Code::temporary for network errors.
  Status open(const std::string& ip, uint16_t port, const ClientOptions& options);
  const Extensions& extensions() const { return ext_; }
  bool tls() const { return stream_ && stream_->is_tls(); }
  const SmtpReply& last() const { return last_; }

  // One transaction; on a network error the Status says so and results are partial.
  Result<TransactionResult> send(const Envelope& envelope, std::string_view content);
  // RSET before another transaction on a kept session; not OK when the
  // session is no longer usable.
  Status reset();
  void quit();

 private:
  Result<SmtpReply> read_reply();
  Status command(const std::string& line);
  Result<SmtpReply> ask(const std::string& line);
  Status ehlo();

  std::unique_ptr<service::Stream> stream_;
  std::string in_;
  Extensions ext_;
  SmtpReply last_;
  ClientOptions options_;
};

// Takes one whole reply off the front of `in` (what the peer sent so far):
// nullopt while it is incomplete, Code::protocol when it is malformed.
Result<std::optional<SmtpReply>> take_reply(std::string& in);

// The extensions an EHLO reply announces.
Extensions parse_ehlo(const SmtpReply& reply);

// A non-blocking TCP connect bounded by timeout_ms; the fd stays non-blocking
// (Stream polls). Code::temporary when the host cannot be reached.
Result<int> connect_to(const std::string& ip, uint16_t port, int timeout_ms);

// Dot-stuffed DATA content ending with CRLF.CRLF.
std::string dot_stuff(std::string_view content);

}  // namespace mail::queue
