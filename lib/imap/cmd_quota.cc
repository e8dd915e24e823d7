// QUOTA (RFC 9208): one quota root ("") per account, its limits and usage from
// the store's account record. Limits are set with mailctl, never over IMAP.
#include <algorithm>

#include "imap/session.h"
#include "imap/util.h"
#include "mime/summary.h"

namespace mail::imap {

std::string Session::quota_line() {
  auto a = env_.store->account_get({account_.address});
  const store::AccountInfo& acct = a ? *a : account_;
  std::string res;
  if (acct.quota.max_bytes) {
    // STORAGE is in units of 1024 octets.
    res += "STORAGE " + std::to_string((acct.used_bytes + 1023) / 1024) + " " +
           std::to_string(acct.quota.max_bytes / 1024);
  }
  if (acct.quota.max_messages) {
    if (!res.empty()) res += ' ';
    res += "MESSAGE " + std::to_string(acct.used_messages) + " " + std::to_string(acct.quota.max_messages);
  }
  return "* QUOTA \"\" (" + res + ")\r\n";
}

void Session::cmd_quota(const std::string& tag, const std::string& c, Parser& p, std::string& out) {
  std::optional<std::string> arg;
  if (!p.space() || !(arg = p.astring())) {
    out += tag + " BAD " + c + " needs an argument\r\n";
    return;
  }
  if (c == "SETQUOTA") {
    if (!p.space() || !p.skip_value() || !p.at_end()) {
      out += tag + " BAD SETQUOTA needs a root and a resource list\r\n";
      return;
    }
    out += tag + " NO [NOPERM] quotas are set by the administrator\r\n";
    return;
  }
  if (!p.at_end()) {
    out += tag + " BAD trailing characters\r\n";
    return;
  }
  if (c == "GETQUOTA") {
    if (!arg->empty()) {
      out += tag + " NO [NONEXISTENT] no such quota root\r\n";
      return;
    }
    out += quota_line() + tag + " OK GETQUOTA completed\r\n";
    return;
  }
  // GETQUOTAROOT mailbox
  auto mb = env_.store->mailbox_get({account_.id, mailbox_from_imap(*arg)});
  if (!mb) {
    out += tag + " " + no_for(mb.status()) + "\r\n";
    return;
  }
  out += "* QUOTAROOT ";
  mime::append_imap_string(out, mailbox_to_imap(mb->name));
  out += " \"\"\r\n" + quota_line() + tag + " OK GETQUOTAROOT completed\r\n";
}

}  // namespace mail::imap
