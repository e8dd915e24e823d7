// Delivery status notifications (RFC 3464): multipart/report with a readable
// part, message/delivery-status, and the original message or its header.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "store/model.h"

namespace mail::queue {

// The message as it leaves: the Return-Path and Delivered-To fields that local
// delivery put on top of the one stored copy are dropped.
std::string_view outbound_content(std::string_view stored);

// The header of a message (up to and including the blank line).
std::string_view header_of(std::string_view message);

struct DsnRecipient {
  std::string address;
  std::string orcpt;       // "rfc822;xtext" as kept in the queue, may be empty
  std::string action;      // failed, delayed, delivered, relayed
  std::string status;      // "5.1.1"
  std::string remote_mta;  // host name, may be empty
  std::string diagnostic;  // the remote's reply, "550 5.1.1 No such user"
};

struct Dsn {
  std::string reporting_mta;  // our host name
  std::string to;             // the envelope sender being notified
  std::string envid;          // xtext-decoded ENVID, may be empty
  uint8_t ret = 0;            // 0 unset, 1 FULL, 2 HDRS
  store::UnixTime arrival = 0;
  store::UnixTime now = 0;
  std::vector<DsnRecipient> recipients;
  std::string_view original;  // outbound content
};

// Largest original returned whole when RET is not given; above it only the header.
constexpr size_t kDsnFullLimit = 1 << 20;

std::string build_dsn(const Dsn& dsn);

}  // namespace mail::queue
