// The dkim and dmarc admin operations (their table entries are in admin.cc).
#pragma once

#include "admin/admin.h"

namespace mail::admin {

Result<Output> dkim_keygen(store::Store& s, const Args& args);
Result<Output> dkim_list(store::Store& s, const Args& args);
Result<Output> dkim_show(store::Store& s, const Args& args);
Result<Output> dkim_remove(store::Store& s, const Args& args);
Result<Output> dmarc_report(store::Store& s, const Args& args);

}  // namespace mail::admin
