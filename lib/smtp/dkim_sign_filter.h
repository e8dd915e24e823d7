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

class DkimSignFilter : public MessageFilter {
 public:
  explicit DkimSignFilter(store::Store& store) : store_(store) {}

  std::string_view name() const override { return "dkim-sign"; }
  FilterResult run(const FilterContext& context, std::string_view message) override;

 private:
  struct Loaded {
    std::string pem;  // what the key was parsed from: a replaced key is parsed again
    std::string selector;
    std::shared_ptr<const auth::DkimKey> key;
  };
  // The domain's key, parsed once; null when it has none.
  std::shared_ptr<const auth::DkimKey> key_for(const std::string& domain, std::string& selector);

  store::Store& store_;
  std::mutex mu_;
  std::map<std::string, Loaded> keys_;
};

}  // namespace mail::smtp
