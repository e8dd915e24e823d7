#include "queue/dsn.h"

#include <fmt/format.h>

#include <atomic>
#include <random>

#include "base/ascii.h"
#include "base/date.h"
#include "base/xtext.h"

namespace mail::queue {

namespace {

bool starts_with_field(std::string_view line, std::string_view name) {
  return line.size() > name.size() && line[name.size()] == ':' && ascii_istarts_with(line, name);
}

std::string boundary() {
  static std::atomic<uint64_t> counter{std::random_device{}()};
  return fmt::format("=_dsn_{:016x}", counter.fetch_add(0x9e3779b97f4a7c15ull));
}

// "rfc822;joe+2Bx@a" -> "rfc822;joe+x@a" (RFC 3461 6.3: decoded in the report).
std::string decode_orcpt(std::string_view orcpt) {
  size_t semi = orcpt.find(';');
  if (semi == std::string_view::npos) return "";
  auto addr = xtext_decode(orcpt.substr(semi + 1));
  if (!addr) return "";
  return std::string(orcpt.substr(0, semi)) + ";" + *addr;
}

// One line: no CR/LF smuggled from a remote reply into our header fields.
std::string one_line(std::string_view s) {
  std::string out;
  for (char c : s) out.push_back(c == '\r' || c == '\n' ? ' ' : c);
  return out;
}

}  // namespace

std::string_view outbound_content(std::string_view stored) {
  for (;;) {
    size_t nl = stored.find('\n');
    if (nl == std::string_view::npos) return stored;
    std::string_view line = stored.substr(0, nl);
    if (!starts_with_field(line, "Return-Path") && !starts_with_field(line, "Delivered-To")) return stored;
    stored.remove_prefix(nl + 1);
  }
}

std::string_view header_of(std::string_view message) {
  if (message.substr(0, 2) == "\r\n") return message.substr(0, 2);
  size_t end = message.find("\r\n\r\n");
  return end == std::string_view::npos ? message : message.substr(0, end + 4);
}

std::string build_dsn(const Dsn& d) {
  bool failed = false, delayed = false;
  for (const auto& r : d.recipients) {
    failed = failed || r.action == "failed";
    delayed = delayed || r.action == "delayed";
  }
  const std::string b = boundary();
  std::string m;
  m += "From: Mail Delivery System <MAILER-DAEMON@" + d.reporting_mta + ">\r\n";
  m += "To: <" + d.to + ">\r\n";
  m += std::string("Subject: ") +
       (failed ? "Undelivered Mail Returned to Sender" : delayed ? "Delayed Mail (still being retried)"
                                                                 : "Successful Mail Delivery Report") +
       "\r\n";
  m += "Date: " + rfc5322_date(d.now) + "\r\n";
  m += fmt::format("Message-ID: <{}.{}@{}>\r\n", d.now, b.substr(6), d.reporting_mta);
  m += "Auto-Submitted: auto-replied\r\n";
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"" + b + "\"\r\n\r\n";
  m += "This is a MIME-encapsulated message.\r\n\r\n";

  m += "--" + b + "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n";
  m += "This is the mail system at " + d.reporting_mta + ".\r\n\r\n";
  if (failed) m += "Your message could not be delivered to one or more recipients.\r\n\r\n";
  else if (delayed) m += "Your message has not been delivered yet; delivery will be retried.\r\n\r\n";
  else m += "Your message was delivered to the recipients below.\r\n\r\n";
  for (const auto& r : d.recipients) {
    m += "<" + r.address + ">: " + r.action;
    if (!r.remote_mta.empty()) m += " (host " + one_line(r.remote_mta) + ")";
    if (!r.diagnostic.empty()) m += ": " + one_line(r.diagnostic);
    m += "\r\n";
  }

  m += "\r\n--" + b + "\r\nContent-Type: message/delivery-status\r\n\r\n";
  m += "Reporting-MTA: dns; " + d.reporting_mta + "\r\n";
  if (!d.envid.empty()) m += "Original-Envelope-Id: " + one_line(d.envid) + "\r\n";
  if (d.arrival) m += "Arrival-Date: " + rfc5322_date(d.arrival) + "\r\n";
  for (const auto& r : d.recipients) {
    m += "\r\n";
    std::string orcpt = decode_orcpt(r.orcpt);
    if (!orcpt.empty()) m += "Original-Recipient: " + one_line(orcpt) + "\r\n";
    m += "Final-Recipient: rfc822; " + r.address + "\r\n";
    m += "Action: " + r.action + "\r\n";
    m += "Status: " + r.status + "\r\n";
    if (!r.remote_mta.empty()) m += "Remote-MTA: dns; " + one_line(r.remote_mta) + "\r\n";
    if (!r.diagnostic.empty()) m += "Diagnostic-Code: smtp; " + one_line(r.diagnostic) + "\r\n";
    m += "Last-Attempt-Date: " + rfc5322_date(d.now) + "\r\n";
  }

  bool full = d.ret == 1 || (d.ret == 0 && d.original.size() <= kDsnFullLimit);
  m += "\r\n--" + b + "\r\n";
  if (full) {
    m += "Content-Type: message/rfc822\r\n\r\n";
    m += d.original;
    if (!d.original.empty() && d.original.back() != '\n') m += "\r\n";
  } else {
    m += "Content-Type: text/rfc822-headers\r\n\r\n";
    m += header_of(d.original);
  }
  m += "\r\n--" + b + "--\r\n";
  return m;
}

}  // namespace mail::queue
