#include "spam/bulk.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <string>

namespace mail::spam {
namespace {

constexpr size_t kMaxSeen = 1000;  // a value's list stays small however big the run
constexpr size_t kMaxWords = 5000;

uint64_t mix(uint64_t x) {  // splitmix64's finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t fnv1a(std::string_view s, uint64_t h = 0xcbf29ce484222325ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace

bool bulk_digest(std::string_view text, BulkDigest& digest) {
  std::vector<uint64_t> words;
  std::string word;
  bool digits = false;
  auto flush = [&] {
    if (!word.empty()) words.push_back(digits ? fnv1a("#") : fnv1a(word));
    word.clear();
    digits = false;
  };
  for (unsigned char c : text) {
    if (words.size() >= kMaxWords) break;
    if (std::isalnum(c) || c >= 0x80) {
      digits = digits || std::isdigit(c);
      word.push_back(static_cast<char>(std::tolower(c)));
    } else {
      flush();
    }
  }
  flush();
  if (words.size() < 8) return false;
  digest.fill(UINT64_MAX);
  for (size_t i = 0; i + 4 <= words.size(); ++i) {
    uint64_t shingle = mix(words[i] ^ mix(words[i + 1] ^ mix(words[i + 2] ^ mix(words[i + 3]))));
    for (size_t k = 0; k < kBulkHashes; ++k) digest[k] = std::min(digest[k], mix(shingle ^ (0x9e3779b97f4a7c15ull * (k + 1))));
  }
  return true;
}

Result<uint32_t> bulk_record(store::Store& store, const BulkDigest& digest,
                             const std::vector<store::AccountId>& accounts, int64_t now, const BulkOptions& options) {
  // A window of 0 counts (about) this message alone, not everything ever seen.
  store::DataSetAddReq req{{}, accounts, now, std::max<uint32_t>(options.window_s, 1), kMaxSeen};
  for (uint64_t value : digest) {
    char hex[24];
    std::snprintf(hex, sizeof hex, "d/%016llx", static_cast<unsigned long long>(value));
    req.keys.push_back(store::DataKey{0, std::string(kBulkNamespace), hex});
  }
  MAIL_ASSIGN_OR_RETURN(auto added, store.data_set_add(req));
  if (added.sizes.size() != kBulkHashes) return error(Code::protocol, "data_set_add answered the wrong number of sets");
  std::sort(added.sizes.begin(), added.sizes.end(), std::greater<>());
  return added.sizes[1];
}

}  // namespace mail::spam
