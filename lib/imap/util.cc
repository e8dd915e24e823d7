#include "imap/util.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace mail::imap {

std::string upper(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
  return r;
}

bool is_known_command(const std::string& c) {
  static const char* known[] = {"SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE",
                                "UNSUBSCRIBE", "LIST", "LSUB", "STATUS", "APPEND", "CLOSE", "UNSELECT",
                                "EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY", "MOVE", "UID", "IDLE",
                                "ENABLE", "NAMESPACE", "CHECK", "UNAUTHENTICATE", "GETQUOTA",
                                "GETQUOTAROOT", "SETQUOTA", "SORT", "THREAD", "REPLACE", "COMPRESS"};
  return std::any_of(std::begin(known), std::end(known), [&](const char* k) { return c == k; });
}

std::string uid_set_string(std::vector<store::Uid> uids) {
  std::sort(uids.begin(), uids.end());
  uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
  return ordered_set_string(uids);
}

std::string ordered_set_string(const std::vector<uint32_t>& nums) {
  std::string out;
  for (size_t i = 0; i < nums.size();) {
    size_t j = i;
    while (j + 1 < nums.size() && nums[j + 1] == nums[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(nums[i]);
    if (j > i) out += ':' + std::to_string(nums[j]);
    i = j + 1;
  }
  return out;
}

bool known_charset(const std::string& charset) {
  std::string u = upper(charset);
  return u == "UTF-8" || u == "US-ASCII";
}

bool flag_bit(const std::string& f, uint32_t* bit) {
  std::string u = upper(f);
  *bit = 0;
  if (u == "\\SEEN") *bit = store::flag::seen;
  else if (u == "\\ANSWERED") *bit = store::flag::answered;
  else if (u == "\\FLAGGED") *bit = store::flag::flagged;
  else if (u == "\\DELETED") *bit = store::flag::deleted;
  else if (u == "\\DRAFT") *bit = store::flag::draft;
  else if (!u.empty() && u[0] == '\\') return false;
  return true;
}

std::string no_for(const Status& st) {
  switch (st.code()) {
    case Code::not_found: return "NO [NONEXISTENT] " + st.message();
    case Code::exists: return "NO [ALREADYEXISTS] " + st.message();
    case Code::quota: return "NO [OVERQUOTA] " + st.message();
    case Code::too_big: return "NO [TOOBIG] " + st.message();
    case Code::denied: return "NO [NOPERM] " + st.message();
    case Code::invalid: return "NO [CANNOT] " + st.message();
    case Code::unavailable:
    case Code::temporary:
    case Code::busy: return "NO [UNAVAILABLE] " + st.message();
    default: return "NO [SERVERBUG] " + st.message();
  }
}

}  // namespace mail::imap
