#include "spam/learn.h"

#include <atomic>

#include "base/log.h"
#include "spam/bayes.h"
#include "spam/tokenizer.h"

namespace mail::spam {

namespace {
// Set once at start, before sessions run; SpamConfig's defaults until then.
struct LearnSettings {
  std::atomic<bool> enabled{SpamConfig{}.learn_from_imap};
  std::atomic<uint32_t> expiry_days{SpamConfig{}.token_expiry_days};
};
LearnSettings& settings() {
  static LearnSettings s;
  return s;
}
}  // namespace

void configure_learning(const SpamConfig& config) {
  settings().enabled = config.learn_from_imap;
  settings().expiry_days = config.token_expiry_days;
}

bool is_junk(const store::MailboxInfo& m) {
  if (m.special_use == store::SpecialUse::junk) return true;
  if (m.name.size() != 4) return false;
  std::string n = m.name;
  for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return n == "junk";
}

void learn_from_copy(store::Store& store, store::AccountId account, const store::MailboxInfo& from,
                     const store::MailboxInfo& to, const std::vector<store::MessageEntry>& messages,
                     const std::vector<size_t>& picked) {
  if (!settings().enabled) return;
  bool spam;
  if (is_junk(to) && !is_junk(from)) spam = true;
  else if (is_junk(from) && !is_junk(to) && to.special_use != store::SpecialUse::trash) spam = false;
  else return;
  std::vector<TrainItem> items;
  for (size_t i : picked) {
    if (i >= messages.size()) continue;
    auto c = store.content_get({messages[i].content});
    if (!c) {
      log::warn("spam: cannot learn message {}: {}", messages[i].uid, c.status().message());
      continue;
    }
    items.push_back({message_hash(c->bytes), analyze(c->bytes).tokens});
  }
  if (items.empty()) return;
  TokenStore tokens(store);
  auto r = tokens.train(account, items, spam, false, today(), settings().expiry_days);
  if (!r) log::warn("spam: learning failed: {}", r.status().message());
}

}  // namespace mail::spam
