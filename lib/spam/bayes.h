// The learning part: token counts per account (0 = global) in the store's
// per-account data, namespace "spam", and Robinson-Fisher chi-square combining
// of the tokens' probabilities (as in SpamBayes and bogofilter).
//
// Storage: counts are kept as fixed 20-byte records (64-bit token hash, spam
// count, ham count, day last trained) in 16 shards per account, keys "t/0".."t/f";
// the messages already learnt (hash of the content, and as what) likewise under
// "s/0".."s/f", so training the same message twice counts once and training it
// as the other class moves it; "meta" holds the message counts and a generation
// that changes with every training. A classifier loads an account with one
// data_scan and keeps it until the generation changes (one data_get per
// classification), so a message never costs a store round trip per token.
// Training rewrites the touched shards concurrently (the store commits them
// with one fsync) and then the meta. Two processes training the same account at
// the same instant can lose one's counts (each rewrites whole shards); the
// counts are statistics, so that is tolerated rather than locked against.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/codec.h"
#include "base/status.h"
#include "store/store.h"

namespace mail::spam {

constexpr std::string_view kNamespace = "spam";
constexpr size_t kShards = 16;

uint64_t token_hash(std::string_view token);
// Hash of a message's bytes with CR removed (a message reads the same from a
// file with LF and from the store with CRLF).
uint64_t message_hash(std::string_view raw);

struct Counts {
  uint32_t spam = 0, ham = 0;
  uint32_t day = 0;  // days since the epoch it was last trained
};

struct Meta {
  uint64_t nspam = 0, nham = 0;
  uint64_t generation = 0;
  uint32_t last_expire_day = 0;
  MAIL_FIELDS(nspam, nham, generation, last_expire_day)
};

using Shard = std::unordered_map<uint64_t, Counts>;

// One account's learnt data in memory.
struct Model {
  Meta meta;
  std::array<Shard, kShards> tokens;
  std::array<Shard, kShards> seen;  // message hash -> {spam:1} or {ham:1}
  size_t token_count() const;
  const Counts* find(uint64_t hash) const;
};

struct Clue {
  std::string token;
  double probability = 0.5;
};

struct BayesResult {
  bool used = false;         // enough training to say anything
  double probability = 0.5;  // 0 ham .. 1 spam
  std::vector<Clue> clues;   // the most telling tokens, strongest first (at most `clues`)
};

// Messages of each class needed before the classifier is used.
constexpr uint64_t kMinTrained = 5;

// Classifies `tokens` with the global model and, when given, an account's
// (their counts add up).
BayesResult classify(const Model& global, const Model* account, const std::vector<std::string>& tokens,
                     size_t clues = 0);

struct TrainItem {
  uint64_t message = 0;  // message_hash()
  std::vector<std::string> tokens;
};

struct TrainResult {
  uint64_t learned = 0;    // new to the classifier
  uint64_t relearned = 0;  // moved from the other class
  uint64_t unlearned = 0;  // untrain: forgotten
  uint64_t skipped = 0;    // already learnt as asked / untrain of an unknown message
  uint64_t expired = 0;    // tokens dropped by expiry
};

struct Stats {
  Meta meta;
  uint64_t tokens = 0;
  uint64_t messages_seen = 0;
  uint64_t bytes = 0;  // stored size of the shards
};

// Reads and writes the counts in a store; thread-safe. Keeps loaded models.
class TokenStore {
 public:
  explicit TokenStore(store::Store& store) : store_(store) {}

  // The model of `account`, loaded or refreshed when it changed in the store.
  Result<std::shared_ptr<const Model>> model(store::AccountId account);

  // Learns (spam or ham) or, with `untrain`, forgets the messages. Tokens not
  // trained for `expiry_days` (0: never) are dropped, at most once a day.
  Result<TrainResult> train(store::AccountId account, const std::vector<TrainItem>& items, bool spam,
                            bool untrain, uint32_t today, uint32_t expiry_days);

  Result<Stats> stats(store::AccountId account);

 private:
  Result<std::shared_ptr<Model>> load(store::AccountId account, Stats* stats);

  store::Store& store_;
  std::mutex mu_;  // the cache
  std::mutex train_mu_;
  std::unordered_map<store::AccountId, std::shared_ptr<const Model>> cache_;
};

uint32_t today();

}  // namespace mail::spam
