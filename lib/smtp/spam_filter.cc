#include "smtp/spam_filter.h"

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

FilterResult SpamFilter::run(const FilterContext& context, std::string_view message) {
  FilterResult result;
  if (context.mode == Mode::submission) return result;
  std::vector<store::AccountId> accounts;
  if (context.recipients)
    for (const auto& r : *context.recipients)
      for (auto a : r.accounts)
        if (std::find(accounts.begin(), accounts.end(), a) == accounts.end()) accounts.push_back(a);
  store::AccountId own = accounts.size() == 1 ? accounts.front() : 0;
  auto verdict = classifier_->check(message, own, spam::Context{context.peer_ip, authserv_id_});
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
