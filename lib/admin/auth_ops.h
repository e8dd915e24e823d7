// The dkim and dmarc admin operations (their table entries are in admin.cc).
#pragma once

#include <functional>
#include <memory>
#include <set>
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

// Shared by `dmarc send` and `tls-report send`.
DmarcSendEnv& send_env();
// "YYYY-MM-DD" as the Unix time of its start (UTC).
Result<int64_t> day_start(const std::string& day);
// Who we are in reports: --org, else the configured host name, else the machine's.
std::string report_org(const Args& args, const std::string& hostname);
// What `dmarc send` and `tls-report send` take from their arguments, checked:
// --date, --keep-days, --org, --email; fails as unavailable without send_env().
struct ReportRun {
  int64_t now = 0;
  std::string today;     // UTC; only finished days (before it) are reported
  std::string only_day;  // --date, or "" for every finished day
  uint64_t keep_days = 7;
  std::string org, email;
  bool reports_on(const std::string& day) const { return only_day.empty() ? day < today : day == only_day; }
};
Result<ReportRun> report_run(const Args& args, std::string_view command);
// Submits a report through send_env(): "sent", or "no such user" for a local
// address that does not exist; other failures pass up.
Result<std::string> submit_report(store::Store& s, const std::string& from, const std::string& to,
                                  const std::string& message);
// Deletes `keys` of the global data namespace `ns` (already gone ones count).
Result<size_t> delete_data(store::Store& s, std::string_view ns, const std::set<std::string>& keys);

Result<Output> tls_report_send(store::Store& s, const Args& args);

}  // namespace mail::admin
