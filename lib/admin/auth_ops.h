// The dkim and dmarc admin operations (their table entries are in admin.cc).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "admin/admin.h"

namespace mail::auth {
class Resolver;
}

namespace mail::admin {

Result<Output> dkim_keygen(store::Store& s, const Args& args);
Result<Output> dkim_list(store::Store& s, const Args& args);
Result<Output> dkim_show(store::Store& s, const Args& args);
Result<Output> dkim_remove(store::Store& s, const Args& args);
Result<Output> dmarc_report(store::Store& s, const Args& args);
Result<Output> dmarc_send(store::Store& s, const Args& args);

// What `dmarc send` needs from above the admin layer: mail submission (lib/queue,
// a higher layer) and the DNS resolver of the configuration. The front end that
// has them (mailctl) sets them; elsewhere `dmarc send` fails as unavailable.
struct DmarcSendEnv {
  // Submits `content` from `sender` to one `recipient` (local mailbox or the queue).
  std::function<Status(store::Store&, const std::string& sender, const std::string& recipient,
                       const std::string& content)>
      submit;
  std::function<Result<std::unique_ptr<auth::Resolver>>()> make_resolver;  // called once, when needed
  std::string hostname;  // the configuration's general.hostname ("" : the machine's name)
};
void set_dmarc_send_env(DmarcSendEnv env);

}  // namespace mail::admin
