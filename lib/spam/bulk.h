// The bulk-message digest: the same body reaching many local users (a spam
// run, or a phish sent to every address of a domain) is a signal the
// per-message tests cannot see. A body's digest is a MinHash of its normalized
// word shingles, so small per-recipient changes (a name, an order number) keep
// most of it; the store counts, per digest value, which accounts received it
// within a time window.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "store/store.h"

namespace mail::spam {

// Global data (account 0) in this namespace, key "d/" + 16 hex digits per value,
// a store::DataTimedSet of account ids.
constexpr std::string_view kBulkNamespace = "bulk";

constexpr size_t kBulkHashes = 4;
using BulkDigest = std::array<uint64_t, kBulkHashes>;

// The digest of a decoded body text: words lower-cased, words with digits as
// one placeholder, 4-word shingles, kBulkHashes minimums of seeded hashes.
// False for text too short to tell a bulk message from a common reply (under
// 8 words).
bool bulk_digest(std::string_view text, BulkDigest& digest);

struct BulkOptions {
  uint32_t min_users = 10;  // BULK_DIGEST fires at this many distinct local users; 0: off
  uint32_t window_s = 86400;
};

// Adds `accounts` (this message's local recipients) to each digest value's
// users seen within the window and returns how many distinct users received
// the message: the second highest count over the values, so two of them must
// agree. All values are one store data_set_add, applied in the store's writer
// transaction, so concurrent deliveries of one body never lose a user.
Result<uint32_t> bulk_record(store::Store& store, const BulkDigest& digest,
                             const std::vector<store::AccountId>& accounts, int64_t now, const BulkOptions& options);

}  // namespace mail::spam
