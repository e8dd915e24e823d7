// The client side of mail-master's control socket (protocol in supervisor.h and
// mail-master(8)), used by `mailctl stack ...` and `mailctl logs`.
#pragma once

#include <ostream>
#include <string>

#include "admin/admin.h"

namespace mail::master {

// Sends one request line ("status", "reload", "stop", "restart smtpd", ...) to
// the mail-master running on data_dir. Code::unavailable when none runs; the
// supervisor's refusals come back with their code (not_found, invalid).
Result<admin::Output> stack_request(const std::string& data_dir, const std::string& request);

// Runs an admin operation in mail-master (which reaches the store through
// mail-stored): the control socket serves the same table as mailctl.
Result<admin::Output> admin_request(const std::string& data_dir, const admin::Operation& op,
                                    const admin::Args& args);

// Prints the last `lines` lines of the collected log (only SERVICE's if given),
// then, with follow, new lines as they come until interrupted.
Status print_logs(const std::string& data_dir, const std::string& service, size_t lines, bool follow,
                  std::ostream& out);

}  // namespace mail::master
