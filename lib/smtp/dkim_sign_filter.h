// Outbound DKIM signing on submission: mail from an authenticated user whose
// From domain has a key in the store (`mailctl dkim keygen`) gets a
// DKIM-Signature (relaxed/relaxed, the usual header set, From oversigned).
// Mail without a key, or with a From the store has no key for, goes unsigned.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "auth/dkim.h"
#include "smtp/session.h"
#include "store/store.h"

namespace mail::smtp {

// The domains' keys of `mailctl dkim keygen` in the store, each parsed once.
// Thread-safe: sessions share one.
class DkimKeyCache {
 public:
  explicit DkimKeyCache(store::Store& store) : store_(store) {}
  // The domain's key and its selector; null when it has none (or it is unusable).
  std::shared_ptr<const auth::DkimKey> key_for(const std::string& domain, std::string& selector);

 private:
  struct Loaded {
    std::string pem;  // what the key was parsed from: a replaced key is parsed again
    std::string selector;
    std::shared_ptr<const auth::DkimKey> key;
  };
  store::Store& store_;
  std::mutex mu_;
  std::map<std::string, Loaded> keys_;
};

class DkimSignFilter : public MessageFilter {
 public:
  explicit DkimSignFilter(store::Store& store) : keys_(store) {}

  std::string_view name() const override { return "dkim-sign"; }
  FilterResult run(const FilterContext& context, std::string_view message) override;

 private:
  DkimKeyCache keys_;
};

}  // namespace mail::smtp
