// The whole check of one message: tokens, Bayes (global and the account's),
// rules, and the verdict against the thresholds; plus training by raw message.
// This is what mail-spamscore, the SMTP filter and IMAP training call.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "spam/bayes.h"
#include "spam/bulk.h"
#include "spam/rules.h"
#include "spam/tokenizer.h"
#include "store/store.h"

namespace mail {
struct Config;
}

namespace mail::spam {

struct Options {
  double required_score = 5.0;  // at or above: spam (Junk)
  double reject_score = 0;      // at or above: refused at SMTP; 0: never
  uint32_t expiry_days = 180;   // tokens not trained for this long are dropped; 0: never
  BulkOptions bulk;
  Limits limits;
};

struct Verdict {
  double score = 0;
  bool spam = false;
  bool reject = false;
  std::vector<Hit> hits;  // the rules that fired, in rule order
  BayesResult bayes;
  bool truncated = false;  // only part of the message was looked at
};

class Classifier {
 public:
  // `store` may be null: rules only, no Bayes.
  Classifier(store::Store* store, RuleSet rules, Options options);

  // `account` 0: the global model only. `clues`: how many Bayes clues to keep.
  // With context.local_recipients (and a store), the body's digest is counted
  // for BULK_DIGEST.
  Result<Verdict> check(std::string_view raw, store::AccountId account, const Context& context,
                        size_t clues = 0);

  Result<TrainResult> train(store::AccountId account, const std::vector<std::string_view>& messages, bool spam,
                            bool untrain);

  TokenStore* tokens() { return tokens_.get(); }
  const RuleSet& rules() const { return rules_; }
  const Options& options() const { return options_; }

 private:
  store::Store* store_;
  std::unique_ptr<TokenStore> tokens_;
  RuleSet rules_;
  Options options_;
};

// The options of a configuration's [spam] section.
Result<Options> options_from_config(const Config& config);
// The built-in rules, the rule file's and the block lists of [spam]; a resolver
// is made (into `resolver`) only when block lists are configured.
Result<RuleSet> rules_from_config(const Config& config, std::unique_ptr<auth::Resolver>& resolver);

// "X-Spam-Status: Yes, score=7.3 required=5.0 tests=BAYES_99,MISSING_DATE\r\n"
// "X-Spam-Score: 7.3\r\n" (each field ends in CRLF; long lists folded).
std::string status_headers(const Verdict& v, double required);

// A score printed with one decimal ("7.3", "-1.0").
std::string format_score(double score);

}  // namespace mail::spam
