#include "spam/filter.h"

#include <cmath>
#include <ctime>
#include <cstdio>

#include "auth/resolver.h"
#include "base/log.h"
#include "config/config.h"

namespace mail::spam {

Classifier::Classifier(store::Store* store, RuleSet rules, Options options)
    : store_(store),
      tokens_(store ? std::make_unique<TokenStore>(*store) : nullptr),
      rules_(std::move(rules)),
      options_(options) {}

Result<Verdict> Classifier::check(std::string_view raw, store::AccountId account, const Context& context,
                                  size_t clues) {
  Analysis a = analyze(raw, options_.limits);
  Verdict v;
  v.truncated = a.truncated;
  if (tokens_) {
    MAIL_ASSIGN_OR_RETURN(auto global, tokens_->model(0));
    std::shared_ptr<const Model> own;
    if (account) {
      MAIL_ASSIGN_OR_RETURN(own, tokens_->model(account));
    }
    v.bayes = classify(*global, own.get(), a.tokens, clues);
  }
  Context ctx = context;
  BulkDigest digest;
  if (store_ && options_.bulk.min_users && !ctx.local_recipients.empty() && bulk_digest(a.text, digest)) {
    auto users = bulk_record(*store_, digest, ctx.local_recipients, static_cast<int64_t>(std::time(nullptr)),
                             options_.bulk);
    if (users) ctx.bulk = *users >= options_.bulk.min_users;
    else log::warn("spam: bulk digest not counted: {}", users.status().message());  // the rest still scores
  }
  v.hits = rules_.evaluate(a, v.bayes, ctx);
  for (const auto& h : v.hits) v.score += h.score;
  v.score = std::round(v.score * 1000) / 1000;  // sums of tenths print as written
  v.spam = v.score >= options_.required_score;
  v.reject = options_.reject_score > 0 && v.score >= options_.reject_score;
  return v;
}

Result<TrainResult> Classifier::train(store::AccountId account, const std::vector<std::string_view>& messages,
                                      bool spam, bool untrain) {
  if (!tokens_) return error(Code::unavailable, "no store to train");
  std::vector<TrainItem> items;
  items.reserve(messages.size());
  for (auto m : messages) items.push_back({message_hash(m), analyze(m, options_.limits).tokens});
  return tokens_->train(account, items, spam, untrain, today(), options_.expiry_days);
}

namespace {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

Result<double> number(const std::string& text, const char* field) {
  char* end = nullptr;
  double d = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || d != d) return error(Code::config, std::string(field) + ": expected a number");
  return d;
}

}  // namespace

Result<Options> options_from_config(const Config& config) {
  Options o;
  MAIL_ASSIGN_OR_RETURN(o.required_score, number(config.spam.required_score, "spam.required_score"));
  MAIL_ASSIGN_OR_RETURN(o.reject_score, number(config.spam.reject_score, "spam.reject_score"));
  o.expiry_days = config.spam.token_expiry_days;
  o.bulk.min_users = config.spam.bulk_min_users;
  o.bulk.window_s = config.spam.bulk_window_hours * 3600;
  return o;
}

Result<RuleSet> rules_from_config(const Config& config, std::unique_ptr<auth::Resolver>& resolver) {
  RuleSet rules;
  if (!config.spam.rules_file.empty()) MAIL_TRY(rules.load_file(config.spam.rules_file));
  auto dnsbl = split_list(config.spam.dnsbl), uribl = split_list(config.spam.uribl);
  if (!dnsbl.empty() || !uribl.empty()) {
    if (!resolver) {  // the DNS server of [auth] resolver, as the other checks of inbound mail use
      MAIL_ASSIGN_OR_RETURN(resolver, config.auth.resolver.empty() ? auth::make_system_resolver()
                                                                   : auth::make_forwarding_resolver(config.auth.resolver));
    }
    rules.set_dns(resolver.get(), std::move(dnsbl), std::move(uribl));
  }
  return rules;
}

std::string format_score(double score) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", score);
  std::string s = buf;
  return s == "-0.0" ? "0.0" : s;
}

std::string status_headers(const Verdict& v, double required) {
  std::string tests;
  for (const auto& h : v.hits) {
    if (!tests.empty()) tests += ",";
    tests += h.name;
  }
  std::string line = "X-Spam-Status: " + std::string(v.spam ? "Yes" : "No") + ", score=" + format_score(v.score) +
                     " required=" + format_score(required) + " tests=" + (tests.empty() ? "none" : tests);
  // Fold at commas so no line runs past 78 characters.
  std::string out;
  size_t col = 0;
  size_t start = 0;
  while (start < line.size()) {
    size_t comma = line.find(',', start);
    std::string piece = line.substr(start, comma == std::string::npos ? std::string::npos : comma + 1 - start);
    if (col + piece.size() > 76 && col > 0) {
      out += "\r\n\t";
      col = 1;
    }
    out += piece;
    col += piece.size();
    start = comma == std::string::npos ? line.size() : comma + 1;
  }
  out += "\r\nX-Spam-Score: " + format_score(v.score) + "\r\n";
  return out;
}

}  // namespace mail::spam
