// Learning from what users do in IMAP: copying or moving messages into Junk
// trains the account's classifier on them as spam; out of Junk (into anything
// but Trash) as ham. A message learnt before as the other class is moved, so a
// mistake undone is a mistake forgotten.
#pragma once

#include <cstddef>
#include <vector>

#include "config/spam.h"
#include "store/store.h"

namespace mail::spam {

// The process's [spam] settings for learning (mail-imapd sets them at start):
// learn_from_imap off makes learn_from_copy do nothing; trained tokens expire
// after token_expiry_days. Learning only ever changes the account's own model.
void configure_learning(const SpamConfig& config);

// The messages `picked` (indexes into `messages`) went from `from` to `to`.
// Failures are logged, never returned: a COPY or MOVE never fails for this.
void learn_from_copy(store::Store& store, store::AccountId account, const store::MailboxInfo& from,
                     const store::MailboxInfo& to, const std::vector<store::MessageEntry>& messages,
                     const std::vector<size_t>& picked);

bool is_junk(const store::MailboxInfo& mailbox);

}  // namespace mail::spam
