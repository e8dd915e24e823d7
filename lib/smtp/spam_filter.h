// The spam filter in the SMTP pipeline (after mail authentication, so the
// rules see its Authentication-Results): MX and LMTP mail is scored with the
// global model, plus the recipient's own when there is one local account;
// above spam.reject_score the message is refused (550 5.7.1 at DATA), above
// spam.required_score every local copy goes into Junk with the $Junk keyword,
// and X-Spam-Status/X-Spam-Score go on top. Submissions are not scored. A
// store error never loses mail: the message goes on unscored.
#pragma once

#include <memory>
#include <string>

#include "smtp/session.h"
#include "spam/filter.h"

namespace mail {
struct Config;
}
namespace mail::auth {
class Resolver;
}

namespace mail::smtp {

class SpamFilter : public MessageFilter {
 public:
  // nullptr (no filter) when spam.enabled is false.
  static Result<std::unique_ptr<SpamFilter>> make(const Config& config, store::Store& store,
                                                  std::string authserv_id);
  ~SpamFilter() override;
  std::string_view name() const override { return "spam"; }
  FilterResult run(const FilterContext& context, std::string_view message) override;

 private:
  SpamFilter(std::unique_ptr<auth::Resolver> resolver, std::unique_ptr<spam::Classifier> classifier,
             std::string authserv_id);
  std::unique_ptr<auth::Resolver> resolver_;
  std::unique_ptr<spam::Classifier> classifier_;
  std::string authserv_id_;
};

}  // namespace mail::smtp
