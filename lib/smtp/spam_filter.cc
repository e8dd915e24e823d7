#include "smtp/spam_filter.h"

#include <algorithm>
#include <cctype>

#include "auth/canon.h"
#include "auth/resolver.h"
#include "base/log.h"
#include "config/config.h"

namespace mail::smtp {

SpamFilter::SpamFilter(std::unique_ptr<auth::Resolver> resolver, std::unique_ptr<spam::Classifier> classifier,
                       std::string authserv_id)
    : resolver_(std::move(resolver)), classifier_(std::move(classifier)), authserv_id_(std::move(authserv_id)) {}

SpamFilter::~SpamFilter() = default;

Result<std::unique_ptr<SpamFilter>> SpamFilter::make(const Config& config, store::Store& store,
                                                     std::string authserv_id) {
  if (!config.spam.enabled) return std::unique_ptr<SpamFilter>();
  MAIL_ASSIGN_OR_RETURN(auto options, spam::options_from_config(config));
  std::unique_ptr<auth::Resolver> resolver;
  MAIL_ASSIGN_OR_RETURN(auto rules, spam::rules_from_config(config, resolver));
  auto classifier = std::make_unique<spam::Classifier>(&store, std::move(rules), options);
  return std::unique_ptr<SpamFilter>(
      new SpamFilter(std::move(resolver), std::move(classifier), std::move(authserv_id)));
}

namespace {

// X-Spam-* fields that came with the message: a sender's "X-Spam-Status: No"
// must not pass for our verdict (nor feed the classifier), so they go, as forged
// Authentication-Results do. Offsets into `message`; none when the parser had
// to copy it (bare LF input, which the session refuses anyway).
std::vector<std::pair<size_t, size_t>> foreign_spam_fields(std::string_view message) {
  std::vector<std::pair<size_t, size_t>> out;
  auth::MailMessage msg(message);
  if (msg.text().data() != message.data()) return out;
  for (const auto& h : msg.headers()) {
    std::string_view name = h.name;
    if (name.size() < 7 || !std::equal(name.begin(), name.begin() + 7, "x-spam-", [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == b;
        }))
      continue;
    size_t at = static_cast<size_t>(h.raw.data() - message.data());
    out.emplace_back(at, at + h.raw.size());
  }
  return out;
}

}  // namespace

FilterResult SpamFilter::run(const FilterContext& context, std::string_view message) {
  FilterResult result;
  if (context.mode == Mode::submission) return result;
  result.remove = foreign_spam_fields(message);
  std::string cleaned;
  if (!result.remove.empty()) {
    cleaned = message;
    for (auto it = result.remove.rbegin(); it != result.remove.rend(); ++it) cleaned.erase(it->first, it->second - it->first);
    message = cleaned;
  }
  std::vector<store::AccountId> accounts;
  if (context.recipients)
    for (const auto& r : *context.recipients)
      for (auto a : r.accounts)
        if (std::find(accounts.begin(), accounts.end(), a) == accounts.end()) accounts.push_back(a);
  store::AccountId own = accounts.size() == 1 ? accounts.front() : 0;
  spam::Context sc{context.peer_ip, authserv_id_};
  sc.local_recipients = accounts;
  auto verdict = classifier_->check(message, own, sc);
  if (!verdict) {
    log::warn("spam: message not scored: {}", verdict.status().message());
    return result;
  }
  result.prepend = spam::status_headers(*verdict, classifier_->options().required_score);
  if (verdict->reject) {
    result.action = FilterResult::Action::reject;
    result.reply = Reply{550, "5.7.1", "Message refused as spam (score " + spam::format_score(verdict->score) + ")"};
    return result;
  }
  if (verdict->spam) {
    for (auto a : accounts) result.placement[a] = Placement{"Junk", 0, {"$Junk"}, false};
  }
  return result;
}

}  // namespace mail::smtp
