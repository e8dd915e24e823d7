// A volatile in-memory Store with just what mail-imapd uses (accounts, mailboxes,
// messages, change push). For `mail-imapd --memory-store` demos and tests while
// no store daemon is available; never for real mail (nothing is durable).
#pragma once

#include <memory>
#include <string>

#include "store/store.h"

namespace mail::imap {

std::unique_ptr<store::Store> make_memory_store();
// Adds an account with an INBOX; `password` is hashed (argon2id).
Status memory_store_add_account(store::Store& s, const std::string& address, const std::string& password);

}  // namespace mail::imap
