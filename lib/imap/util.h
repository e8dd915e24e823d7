// Small helpers shared by the command files.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "store/model.h"

namespace mail::imap {

std::string upper(std::string_view s);
bool is_known_command(const std::string& upper_name);
// "1:3,7" from ascending or unsorted uids.
std::string uid_set_string(std::vector<store::Uid> uids);
// A sequence set keeping the given order (ESORT's ALL): ascending runs become "a:b".
std::string ordered_set_string(const std::vector<uint32_t>& nums);
// A CHARSET that SEARCH, SORT and THREAD accept.
bool known_charset(const std::string& charset);
// \Seen etc. to flag bits; keywords pass through. false for \Recent or \*.
bool flag_bit(const std::string& flag, uint32_t* bit);
// IMAP response code for a store error.
std::string no_for(const Status& st);

}  // namespace mail::imap
