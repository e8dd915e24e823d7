// The dkim and dmarc admin operations (their table entries are in admin.cc).
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

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
  // Whether data of `day` is older than --keep-days (and goes, reported or not).
  bool expired(std::string_view day) const;
};
Result<ReportRun> report_run(const Args& args, std::string_view command);

// One report (a policy domain's day) on its way to its destinations, over as
// many runs as it takes. Who took it is recorded in the report's own data
// namespace until the report's rows go, so a run after a deferral sends to
// the destinations left and to none twice.
class ReportDelivery {
 public:
  static Result<ReportDelivery> load(store::Store& s, std::string_view ns, std::string_view domain,
                                     std::string_view day);
  // Submits through send_env() unless an earlier run did: "sent", "sent
  // before", or "no such user" for a local address that does not exist
  // (a permanent failure); other failures pass up.
  Result<std::string> submit(store::Store& s, const std::string& from, const std::string& to,
                             const std::string& message);
  // A destination could not be tried now (a lookup failed for now).
  void defer() { deferred_ = true; }
  // The rows may go: a destination took the report (in this run or an earlier
  // one) and none waits; the others failed for good.
  bool done() const { return !deferred_ && !sent_.empty(); }
  // The record's key, to delete with the rows once done().
  const std::string& record_key() const { return key_; }

 private:
  std::string ns_, key_;
  std::vector<std::string> sent_;  // destinations that took the report
  bool deferred_ = false;
};
// Whether `key` of a report namespace is a ReportDelivery record, not report data.
bool is_delivery_record(std::string_view key);
// The day ("YYYY-MM-DD") of a ReportDelivery record.
std::string_view delivery_record_day(std::string_view key);
// Deletes `keys` of the global data namespace `ns` (already gone ones count).
Result<size_t> delete_data(store::Store& s, std::string_view ns, const std::set<std::string>& keys);

Result<Output> tls_report_send(store::Store& s, const Args& args);

}  // namespace mail::admin
