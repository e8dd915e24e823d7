// QRESYNC (RFC 7162 3.2): quick resynchronization on SELECT/EXAMINE and the
// VANISHED (EARLIER) answers; live expunges become VANISHED in sync().
#include <algorithm>
#include <utility>

#include "imap/session.h"
#include "imap/util.h"

namespace mail::imap {
namespace {

// A UID set as sorted, merged ranges, so testing a UID is a binary search
// whatever the number of ranges the client sent.
class UidRanges {
 public:
  UidRanges(const SeqSet& set, uint32_t max) {
    for (const auto& r : set.ranges) {
      uint32_t lo = r.lo ? r.lo : max, hi = r.hi ? r.hi : max;
      ranges_.emplace_back(std::min(lo, hi), std::max(lo, hi));
    }
    std::sort(ranges_.begin(), ranges_.end());
    std::vector<std::pair<uint32_t, uint32_t>> merged;
    for (const auto& r : ranges_) {
      if (!merged.empty() && r.first <= merged.back().second) merged.back().second = std::max(merged.back().second, r.second);
      else merged.push_back(r);
    }
    ranges_ = std::move(merged);
  }
  bool contains(uint32_t uid) const {
    auto it = std::upper_bound(ranges_.begin(), ranges_.end(), uid,
                               [](uint32_t u, const std::pair<uint32_t, uint32_t>& r) { return u < r.first; });
    return it != ranges_.begin() && uid <= std::prev(it)->second;
  }

 private:
  std::vector<std::pair<uint32_t, uint32_t>> ranges_;
};

}  // namespace

std::vector<store::Uid> Session::expunged_since(store::ModSeq since, const SeqSet* within) {
  std::vector<store::Uid> gone;
  auto r = env_.store->changes({sel_->info.id, since});
  if (!r) return gone;
  const auto& msgs = sel_->msgs;
  uint32_t max = std::max<uint32_t>(msgs.empty() ? 0 : msgs.back().uid,
                                    sel_->info.uidnext ? sel_->info.uidnext - 1 : 0);
  std::optional<UidRanges> set;
  if (within) set.emplace(*within, max);
  for (store::Uid uid : r->vanished) {
    // One still in the selection is pending: sync() reports it as VANISHED later.
    if (set && !set->contains(uid)) continue;
    if (sel_->index_of(uid) != msgs.size()) continue;
    gone.push_back(uid);
  }
  return gone;
}

void Session::qresync_select(const QresyncParams& q, std::string& out) {
  const SeqSet* known = q.known_uids ? &*q.known_uids : nullptr;
  auto gone = expunged_since(q.modseq, known);
  if (!gone.empty()) out += "* VANISHED (EARLIER) " + uid_set_string(gone) + "\r\n";
  std::optional<UidRanges> set;
  if (known) set.emplace(*known, sel_->msgs.empty() ? 0 : sel_->msgs.back().uid);
  for (size_t i = 0; i < sel_->msgs.size(); ++i) {
    const auto& m = sel_->msgs[i];
    if (m.modseq > q.modseq && (!set || set->contains(m.uid))) fetch_flags_line(out, i, true);
  }
}

}  // namespace mail::imap
