#include "base/status.h"

namespace mail {

std::string_view code_name(Code c) {
  switch (c) {
    case Code::ok: return "ok";
    case Code::invalid: return "invalid";
    case Code::not_found: return "not_found";
    case Code::exists: return "exists";
    case Code::not_empty: return "not_empty";
    case Code::quota: return "quota";
    case Code::too_big: return "too_big";
    case Code::denied: return "denied";
    case Code::busy: return "busy";
    case Code::unavailable: return "unavailable";
    case Code::temporary: return "temporary";
    case Code::corrupt: return "corrupt";
    case Code::io: return "io";
    case Code::config: return "config";
    case Code::protocol: return "protocol";
    case Code::internal: return "internal";
  }
  return "unknown";
}

int exit_code(Code c) {
  // sysexits(3): EX_OK 0, EX_USAGE 64, EX_DATAERR 65, EX_NOUSER 67, EX_UNAVAILABLE 69,
  // EX_SOFTWARE 70, EX_CANTCREAT 73, EX_IOERR 74, EX_TEMPFAIL 75, EX_PROTOCOL 76,
  // EX_NOPERM 77, EX_CONFIG 78.
  switch (c) {
    case Code::ok: return 0;
    case Code::invalid: return 65;
    case Code::exists: return 65;
    case Code::not_empty: return 65;
    case Code::not_found: return 67;
    case Code::quota: return 75;
    case Code::too_big: return 65;
    case Code::denied: return 77;
    case Code::busy: return 75;
    case Code::unavailable: return 69;
    case Code::temporary: return 75;
    case Code::corrupt: return 65;
    case Code::io: return 74;
    case Code::config: return 78;
    case Code::protocol: return 76;
    case Code::internal: return 70;
  }
  return 70;
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  std::string s(code_name(code_));
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  return s;
}

}  // namespace mail
