// SMTP/LMTP command lines (RFC 5321, RFC 2033) and the ESMTP parameters this
// server understands, parsed into values. Syntax only: whether a parameter is
// allowed in this session (advertised, authenticated, TLS) is the session's
// decision (session.cc).
//
//   MAIL FROM:<path> [SIZE= BODY= SMTPUTF8 RET= ENVID= REQUIRETLS AUTH=
//                     HOLDFOR= HOLDUNTIL= BY=]
//   RCPT TO:<path>   [NOTIFY= ORCPT=]
//
// Parameters: RFC 1870 SIZE, RFC 6152/3030 BODY, RFC 6531 SMTPUTF8, RFC 3461 DSN
// (RET, ENVID, NOTIFY, ORCPT), RFC 8689 REQUIRETLS, RFC 4954 AUTH, RFC 4865
// FUTURERELEASE (HOLDFOR, HOLDUNTIL), RFC 2852 DELIVERBY (BY).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/xtext.h"

namespace mail::smtp {

// One reply: "250 2.1.0 Ok". `enhanced` (RFC 3463) may be empty (greeting,
// EHLO); `text` may hold several lines separated by '\n' (multi-line reply).
struct Reply {
  int code = 0;
  std::string enhanced;
  std::string text;
  bool ok() const { return code >= 200 && code < 400; }
  // The wire form, CRLF terminated, "250-" continuation lines for multi-line text.
  std::string render() const;
};

enum class Verb {
  unknown,
  helo,
  ehlo,
  lhlo,  // LMTP's EHLO
  mail,
  rcpt,
  data,
  bdat,
  rset,
  noop,
  quit,
  vrfy,
  expn,
  help,
  starttls,
  auth,
};

// Values match store::QueueEntry::body_type.
enum class BodyType : uint8_t { seven_bit = 0, eight_bit_mime = 1, binary_mime = 2 };

// RFC 2852 BY=<time>;<mode>[T]
struct DeliverBy {
  int64_t seconds = 0;  // relative to the time of MAIL; may be negative for R mode
  char mode = 'N';      // 'N' notify, 'R' return
  bool trace = false;
};

struct MailParams {
  std::optional<uint64_t> size;
  std::optional<BodyType> body;
  bool smtputf8 = false;
  uint8_t ret = 0;        // 0 unset, 1 FULL, 2 HDRS (as store::QueueEntry::ret)
  std::string envid;      // xtext-decoded
  bool requiretls = false;
  std::optional<std::string> auth;  // AUTH= mailbox, xtext-decoded; "<>" for none
  std::optional<int64_t> hold_for;    // seconds
  std::optional<int64_t> hold_until;  // unix time
  std::optional<DeliverBy> by;
};

struct RcptParams {
  uint8_t notify = 0;   // store::notify bits; 0: not given
  std::string orcpt;    // "addr-type;xtext" as given, for the queue
  std::string orcpt_address;  // its xtext-decoded address part
};

struct Command {
  Verb verb = Verb::unknown;
  std::string keyword;  // as received, upper-cased (for replies and logs)
  std::string arg;      // the rest of the line (HELO domain, AUTH mechanism and response, VRFY text)

  // MAIL / RCPT: the path without angle brackets and without a source route
  // ("" for the null reverse-path <>); not yet canonicalised.
  std::string path;
  MailParams mail;
  RcptParams rcpt;

  // BDAT
  uint64_t chunk_size = 0;
  bool last = false;
};

struct ParseResult {
  std::optional<Command> command;
  Reply error;  // when !command: 500/501/504/555 with enhanced code
};

// Parses one command line without its CRLF.
ParseResult parse_command(std::string_view line);

// RFC 3461 xtext lives in base (the queue relays ENVID/ORCPT too).
using mail::xtext_decode;
using mail::xtext_encode;

// RFC 3339 date-time ("2026-01-02T03:04:05Z", "...+01:00", fractions ignored)
// as unix time; nullopt when malformed.
std::optional<int64_t> parse_rfc3339(std::string_view text);

}  // namespace mail::smtp
