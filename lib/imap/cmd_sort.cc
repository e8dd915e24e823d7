// SORT and UID SORT (RFC 5256) with ESORT's RETURN options (RFC 5267) and
// SORT=DISPLAY's keys (RFC 5957). Keys come from the stored summaries, so no
// message content is read.
#include <algorithm>

#include "imap/session.h"
#include "imap/util.h"
#include "mime/summary.h"
#include "mime/summary_fields.h"

namespace mail::imap {
namespace {

enum class SortKey { arrival, cc, date, from, size, subject, to, displayfrom, displayto };
struct Criterion {
  SortKey key = SortKey::arrival;
  bool reverse = false;
};

bool parse_sort_key(const std::string& name, SortKey* key) {
  static const std::pair<const char*, SortKey> keys[] = {
      {"ARRIVAL", SortKey::arrival}, {"CC", SortKey::cc},           {"DATE", SortKey::date},
      {"FROM", SortKey::from},       {"SIZE", SortKey::size},       {"SUBJECT", SortKey::subject},
      {"TO", SortKey::to},           {"DISPLAYFROM", SortKey::displayfrom}, {"DISPLAYTO", SortKey::displayto}};
  for (const auto& k : keys)
    if (name == k.first) {
      *key = k.second;
      return true;
    }
  return false;
}

// i;ascii-casemap (RFC 4790) compares a-z as A-Z and other octets as they
// are: the keys are mapped once when read, then compared bytewise (unsigned,
// as memcmp), not mapped again in each of the n log n comparisons.
void casemap(std::string& s) {
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
}

int sign(int c) { return c < 0 ? -1 : (c > 0 ? 1 : 0); }

// The summary fields (mime::summary_field) a key is read from: address keys
// from the header copy, or the stored key when a summary has none.
uint32_t summary_fields_for(SortKey key) {
  namespace f = mime::summary_field;
  switch (key) {
    case SortKey::from: return f::header | f::sort_from;
    case SortKey::to: return f::header | f::sort_to;
    case SortKey::cc: return f::header | f::sort_cc;
    case SortKey::subject: return f::subject;
    case SortKey::displayfrom: return f::header | f::display_from;
    case SortKey::displayto: return f::header | f::display_to;
    default: return 0;  // date: the integers always come
  }
}

// What one message sorts by; only the requested keys are filled (the
// strings case-mapped).
struct Row {
  size_t index = 0;
  int64_t arrival = 0, date = 0;
  uint64_t size = 0;
  std::string from, to, cc, subject, displayfrom, displayto;
};

int compare(const Row& a, const Row& b, SortKey key) {
  auto num = [](auto x, auto y) { return x < y ? -1 : (x > y ? 1 : 0); };
  switch (key) {
    case SortKey::arrival: return num(a.arrival, b.arrival);
    case SortKey::date: return num(a.date, b.date);
    case SortKey::size: return num(a.size, b.size);
    case SortKey::from: return sign(a.from.compare(b.from));
    case SortKey::to: return sign(a.to.compare(b.to));
    case SortKey::cc: return sign(a.cc.compare(b.cc));
    case SortKey::subject: return sign(a.subject.compare(b.subject));
    case SortKey::displayfrom: return sign(a.displayfrom.compare(b.displayfrom));
    case SortKey::displayto: return sign(a.displayto.compare(b.displayto));
  }
  return 0;
}

}  // namespace

void Session::cmd_sort(const std::string& tag, Parser& p, std::string& out, bool uid) {
  auto bad = [&](std::string why) { out += tag + " BAD " + why + "\r\n"; };
  if (!p.space()) return bad("SORT needs sort criteria");
  ReturnOptions ret;
  if (auto why = parse_return_options(p, ret)) return bad(*why);
  if (ret.given && !p.space()) return bad("SORT needs sort criteria");
  std::vector<Criterion> crit;
  if (!p.consume('(')) return bad("SORT needs a parenthesised list of sort criteria");
  while (true) {
    auto a = p.atom();
    if (!a) return bad("bad sort criterion");
    Criterion c;
    std::string u = upper(*a);
    if (u == "REVERSE") {
      c.reverse = true;
      if (!p.space() || !(a = p.atom())) return bad("REVERSE needs a sort key");
      u = upper(*a);
    }
    if (!parse_sort_key(u, &c.key)) return bad("unknown sort key " + *a);
    crit.push_back(c);
    if (p.consume(')')) break;
    if (!p.space()) return bad("bad sort criteria");
  }
  auto found = charset_and_search_keys(tag, p, out, "SORT");
  if (!found) return;

  bool need_summary = std::any_of(crit.begin(), crit.end(), [](const Criterion& c) {
    return c.key != SortKey::arrival && c.key != SortKey::size;
  });
  std::vector<Row> rows(found->hits.size());
  for (size_t k = 0; k < rows.size(); ++k) {
    const auto& m = sel_->msgs[found->hits[k]];
    rows[k].index = found->hits[k];
    rows[k].arrival = m.internal_date;
    rows[k].size = m.size;
  }
  if (need_summary) {
    uint32_t fields = 0;
    for (const auto& c : crit) fields |= summary_fields_for(c.key);
    size_t k = 0;
    for_each_summary(found->hits, [&](size_t, mime::Summary& s) {
      Row& r = rows[k++];
      // RFC 5256 2.2: the Date header in UTC, else the internal date.
      r.date = s.date ? s.date : r.arrival;
      // Address keys from the summary's header copy when it has one: older
      // summaries stored keys that skipped a group's name.
      bool from_header = !s.header.empty();
      auto address = [&](std::string_view field, std::string* display) {
        auto v = mime::header_values(s.header, field);
        return mime::sort_address(v.empty() ? std::string_view() : std::string_view(v[0]), display);
      };
      for (const auto& c : crit) {
        switch (c.key) {
          case SortKey::from: r.from = from_header ? address("From", nullptr) : std::move(s.sort_from); break;
          case SortKey::to: r.to = from_header ? address("To", nullptr) : std::move(s.sort_to); break;
          case SortKey::cc: r.cc = from_header ? address("Cc", nullptr) : std::move(s.sort_cc); break;
          // From the decoded subject, not the stored base: older summaries
          // kept a base computed by an earlier, looser rule.
          case SortKey::subject: r.subject = mime::base_subject(s.subject); break;
          case SortKey::displayfrom:
            if (from_header) address("From", &r.displayfrom);
            else r.displayfrom = std::move(s.display_from);
            break;
          case SortKey::displayto:
            if (from_header) address("To", &r.displayto);
            else r.displayto = std::move(s.display_to);
            break;
          default: break;
        }
      }
      for (std::string* key : {&r.from, &r.to, &r.cc, &r.subject, &r.displayfrom, &r.displayto}) casemap(*key);
    }, fields);
  }
  // Equal keys keep mailbox order (RFC 5256: sequence number breaks ties).
  // Positions are sorted, not rows: moving a row moves six strings.
  std::vector<uint32_t> order(rows.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = static_cast<uint32_t>(k);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    for (const auto& c : crit) {
      int r = compare(rows[a], rows[b], c.key);
      if (r) return c.reverse ? r > 0 : r < 0;
    }
    return false;
  });
  std::vector<Row> sorted;
  sorted.reserve(rows.size());
  for (uint32_t k : order) sorted.push_back(std::move(rows[k]));
  rows.swap(sorted);

  std::vector<uint32_t> nums;
  nums.reserve(rows.size());
  store::ModSeq max_modseq = 0;
  for (const auto& r : rows) {
    const auto& m = sel_->msgs[r.index];
    nums.push_back(uid ? m.uid : static_cast<uint32_t>(r.index + 1));
    max_modseq = std::max(max_modseq, m.modseq);
  }
  auto modseq_of = [&](size_t k) { return sel_->msgs[rows[k].index].modseq; };
  if (ret.save) {
    sel_->saved.clear();
    if (!rows.empty()) {
      if (ret.min) sel_->saved.push_back(sel_->msgs[rows.front().index].uid);
      if (ret.max) sel_->saved.push_back(sel_->msgs[rows.back().index].uid);
      if (!ret.min && !ret.max)
        for (const auto& r : rows) sel_->saved.push_back(sel_->msgs[r.index].uid);
    }
    std::sort(sel_->saved.begin(), sel_->saved.end());
    sel_->saved.erase(std::unique(sel_->saved.begin(), sel_->saved.end()), sel_->saved.end());
  }
  if (ret.given) {
    // RFC 5267 3.2: MIN and MAX are the first and last in sort order.
    std::string line = "* ESEARCH (TAG ";
    mime::append_imap_string(line, tag);
    line += ")";
    if (uid) line += " UID";
    if (!nums.empty()) {
      if (ret.min) line += " MIN " + std::to_string(nums.front());
      if (ret.max) line += " MAX " + std::to_string(nums.back());
      if (ret.all) line += " ALL " + ordered_set_string(nums);
    }
    if (ret.count) line += " COUNT " + std::to_string(nums.size());
    if (found->uses_modseq && !nums.empty()) {
      store::ModSeq returned = max_modseq;
      if (!ret.all && !ret.count && (ret.min || ret.max))
        returned = std::max(ret.min ? modseq_of(0) : 0, ret.max ? modseq_of(rows.size() - 1) : 0);
      line += " MODSEQ " + std::to_string(returned);
    }
    // SAVE alone answers nothing (RFC 5182 2.1).
    if (ret.min || ret.max || ret.all || ret.count) out += line + "\r\n";
  } else {
    out += "* SORT";
    for (auto n : nums) out += " " + std::to_string(n);
    if (found->uses_modseq && !nums.empty()) out += " (MODSEQ " + std::to_string(max_modseq) + ")";
    out += "\r\n";
  }
  sync(out, uid);
  out += tag + " OK SORT completed\r\n";
}

}  // namespace mail::imap
