#include "smtp/dkim_sign_filter.h"

#include "auth/dkim_keys.h"
#include "auth/dmarc.h"
#include "base/log.h"

namespace mail::smtp {

std::shared_ptr<const auth::DkimKey> DkimKeyCache::key_for(const std::string& domain, std::string& selector) {
  // One store read per message (the key may have been replaced or removed);
  // parsing the PEM is what the cache saves.
  auto v = store_.data_get(store::DataKey{0, std::string(auth::kDkimNamespace), domain});
  if (!v) {
    log::warn("dkim: cannot read the key of {}: {}", domain, v.status().message());
    return nullptr;
  }
  if (!v->found) return nullptr;
  auth::DkimKeyEntry entry;
  if (!decode(v->value, entry)) {
    log::warn("dkim: the key record of {} is damaged", domain);
    return nullptr;
  }
  std::lock_guard lock(mu_);
  Loaded& slot = keys_[domain];
  if (!slot.key || slot.pem != entry.private_pem) {
    auto key = auth::DkimKey::parse(entry.private_pem);
    if (!key) {
      log::warn("dkim: the key of {} is unusable: {}", domain, key.status().message());
      keys_.erase(domain);
      return nullptr;
    }
    slot.key = std::make_shared<const auth::DkimKey>(std::move(*key));
    slot.pem = entry.private_pem;
  }
  slot.selector = entry.selector;
  selector = slot.selector;
  return slot.key;
}

FilterResult DkimSignFilter::run(const FilterContext& ctx, std::string_view message) {
  FilterResult out;
  if (ctx.mode != Mode::submission || ctx.auth_user.empty()) return out;
  auth::MailMessage msg(message);
  auto from = auth::dmarc_from_domain(msg);
  if (!from) return out;  // the session checked the sender; a message without one From is not signed
  // Only for the user's own domain (or the envelope sender's, which the session
  // checked): one local domain's users cannot sign as another's.
  auto domain_of = [](const std::string& address) { return address.substr(address.rfind('@') + 1); };
  if (*from != domain_of(ctx.auth_user) && (ctx.sender.empty() || *from != domain_of(ctx.sender))) return out;
  std::string selector;
  auto key = keys_.key_for(*from, selector);
  if (!key) return out;
  auth::DkimSignOptions options;
  options.domain = *from;
  options.selector = selector;
  auto sig = auth::dkim_sign(msg, *key, options);
  if (!sig) {
    log::warn("dkim-sign: cannot sign for {}: {}", *from, sig.status().message());
    return out;
  }
  out.prepend = std::move(*sig);
  return out;
}

}  // namespace mail::smtp
