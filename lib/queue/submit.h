// Injecting a new message (sendmail, DSNs, queued mail for local domains):
// recipients are resolved like SMTP does it, local mailboxes get their copy and
// remote recipients a queue entry, all in one durable store transaction.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "store/store.h"

namespace mail::queue {

struct Submission {
  std::string sender;                            // envelope sender; empty: the null sender
  std::vector<store::QueueRecipient> recipients;  // address (+ notify/orcpt for the queue)
  std::string content;                           // CRLF lines
  store::UnixTime now = 0;
  store::AccountId submitter = 0;
  std::string envid;
  uint8_t ret = 0;
};

struct SubmitResult {
  std::vector<Code> recipients;  // per recipient: ok, or not_found (no such local user)
  size_t local = 0;              // mailboxes the message went to
  store::QueueId queued = 0;     // the queue entry, 0 if none
};

// Fails (nothing stored) on store errors; unknown local users are per-recipient
// results, and when every recipient is unknown nothing is stored.
Result<SubmitResult> submit(store::Store& store, const Submission& submission);

// Any byte above 127 (8BITMIME needed), and whether a string is plain ASCII.
bool has_8bit(std::string_view text);

}  // namespace mail::queue
