// SEARCH and UID SEARCH (RFC 9051 keys), with ESEARCH RETURN options and SEARCHRES.
#include <algorithm>
#include <cstring>
#include <future>
#include <memory>

#include "imap/session.h"
#include "imap/util.h"
#include "mime/summary.h"
#include "mime/summary_fields.h"

namespace mail::imap {
namespace {

struct Key {
  std::string name;  // upper case
  std::string arg, arg2;
  uint64_t num = 0;
  SeqSet set;
  std::vector<std::unique_ptr<Key>> kids;  // AND list, NOT (1), OR (2)
};

bool parse_key(Parser& p, Key& k, int depth);

bool parse_keys(Parser& p, std::vector<std::unique_ptr<Key>>& out, int depth, bool in_paren) {
  while (true) {
    auto k = std::make_unique<Key>();
    if (!parse_key(p, *k, depth)) return false;
    out.push_back(std::move(k));
    if (in_paren && p.peek() == ')') return true;
    if (!in_paren && p.at_end()) return true;
    if (!p.space()) return p.fail("expected a space between search keys");
  }
}

bool parse_key(Parser& p, Key& k, int depth) {
  if (depth > 30) return p.fail("search nesting too deep");
  if (p.consume('(')) {
    k.name = "AND";
    if (!parse_keys(p, k.kids, depth + 1, true)) return false;
    return p.consume(')') || p.fail("missing )");
  }
  char c = p.peek();
  if (std::isdigit(static_cast<unsigned char>(c)) || c == '*' || c == '$') {
    auto s = p.sequence_set();
    if (!s) return false;
    k.name = "SEQ";
    k.set = *s;
    return true;
  }
  auto a = p.atom();
  if (!a) return false;
  k.name = upper(*a);
  const std::string& n = k.name;
  static const char* noarg[] = {"ALL", "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "NEW", "OLD", "RECENT", "SEEN",
                                "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN"};
  for (const char* x : noarg)
    if (n == x) return true;
  static const char* strarg[] = {"BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO", "EMAILID", "THREADID"};
  for (const char* x : strarg)
    if (n == x) {
      if (!p.space()) return p.fail("missing argument");
      auto s = p.astring();
      if (!s) return false;
      k.arg = *s;
      return true;
    }
  static const char* datearg[] = {"BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"};
  for (const char* x : datearg)
    if (n == x) {
      if (!p.space()) return p.fail("missing date");
      auto s = p.astring();
      if (!s) return false;
      auto t = parse_search_date(*s);
      if (!t) return p.fail("invalid date");
      k.num = static_cast<uint64_t>(*t);
      return true;
    }
  if (n == "KEYWORD" || n == "UNKEYWORD") {
    if (!p.space()) return p.fail("missing keyword");
    auto f = p.flag();
    if (!f) return false;
    k.arg = *f;
    return true;
  }
  if (n == "LARGER" || n == "SMALLER") {
    if (!p.space()) return p.fail("missing number");
    auto v = p.number();
    if (!v) return false;
    k.num = *v;
    return true;
  }
  if (n == "HEADER") {
    if (!p.space()) return p.fail("missing header name");
    auto f = p.astring();
    if (!f || !p.space()) return p.fail("missing header value");
    auto v = p.astring();
    if (!v) return false;
    k.arg = *f;
    k.arg2 = *v;
    return true;
  }
  if (n == "UID") {
    if (!p.space()) return p.fail("missing UID set");
    auto s = p.sequence_set();
    if (!s) return false;
    k.set = *s;
    return true;
  }
  if (n == "NOT") {
    if (!p.space()) return p.fail("missing key");
    k.kids.push_back(std::make_unique<Key>());
    return parse_key(p, *k.kids[0], depth + 1);
  }
  if (n == "OR") {
    for (int i = 0; i < 2; ++i) {
      if (!p.space()) return p.fail("missing key");
      k.kids.push_back(std::make_unique<Key>());
      if (!parse_key(p, *k.kids.back(), depth + 1)) return false;
    }
    return true;
  }
  if (n == "MODSEQ") {
    if (!p.space()) return p.fail("missing modseq");
    if (p.peek() == '"') {  // entry-name entry-type
      if (!p.string() || !p.space() || !p.atom() || !p.space()) return p.fail("bad MODSEQ");
    }
    auto v = p.number();
    if (!v) return false;
    k.num = *v;
    return true;
  }
  return p.fail("unknown search key " + *a);
}

// ASCII case-insensitive. Candidates are found with memchr on one byte of
// the needle, a digit or punctuation when it has one (rarer in text than
// letters, and one case only), else either case of its first letter
// (SEARCH BODY scans every message: std::search with a tolower per byte pair
// was most of its time).
bool icontains(std::string_view hay, std::string_view needle) {
  if (needle.empty()) return true;
  if (needle.size() > hay.size()) return false;
  auto lower = [](unsigned char c) { return static_cast<unsigned char>(c >= 'A' && c <= 'Z' ? c | 0x20 : c); };
  size_t j = 0;  // the needle's byte to look for
  for (size_t i = 0; i < needle.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(needle[i]);
    if (c > ' ' && !((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) {
      j = i;
      break;
    }
  }
  unsigned char lo = lower(static_cast<unsigned char>(needle[j]));
  unsigned char up = lo >= 'a' && lo <= 'z' ? static_cast<unsigned char>(lo & ~0x20) : lo;
  const char* start = hay.data() + j;                        // first place needle[j] can match
  const char* end = hay.data() + (hay.size() - needle.size() + j + 1);  // last place + 1
  auto find = [&](unsigned char c, const char* from) {
    auto* f = static_cast<const char*>(std::memchr(from, c, static_cast<size_t>(end - from)));
    return f ? f : end;
  };
  const char* next_lo = find(lo, start);
  const char* next_up = up == lo ? end : find(up, start);
  while (next_lo < end || next_up < end) {
    const char* at;
    if (next_lo < next_up) {
      at = next_lo;
      next_lo = find(lo, at + 1);
    } else {
      at = next_up;
      next_up = find(up, at + 1);
    }
    const char* s = at - j;
    size_t i = 0;
    while (i < needle.size() && lower(static_cast<unsigned char>(s[i])) == lower(static_cast<unsigned char>(needle[i])))
      ++i;
    if (i == needle.size()) return true;
  }
  return false;
}

// Summaries (and contents) read ahead a chunk at a time from the first
// message whose evaluation needs one: one store request per chunk, none for
// messages that cheaper keys (flags, UID, sequence) already ruled out. Once
// one chunk was needed, the next is read on another thread while this one is
// searched.
template <class T>
struct ReadAhead {
  std::function<std::vector<T>(size_t first)> fill;
  size_t base = 0;
  std::vector<T> sums;
  size_t ahead_base = 0;
  std::future<std::vector<T>> ahead;
  const T& get(size_t i) {
    if (i < base || i - base >= sums.size()) {
      sums = ahead.valid() && ahead_base == i ? ahead.get() : fill(i);
      base = i;
      if (ahead.valid()) ahead.wait();  // a read-ahead of a chunk skipped over
      ahead_base = base + sums.size();
      ahead = std::async(std::launch::async, fill, ahead_base);
    }
    return sums[i - base];
  }
};

using SummaryWindow = ReadAhead<mime::Summary>;

struct Ctx {
  store::Store* store;
  const store::MessageEntry* m;
  uint32_t msn, max_msn, max_uid;
  const std::vector<store::Uid>* saved;
  SummaryWindow* window;
  ReadAhead<store::ContentItem>* contents;
  std::string* failure;  // set when a content could not be read (the command answers NO)
  const store::ContentItem* raw = nullptr;
  const mime::Summary* sum = nullptr;
  bool uses_modseq = false;
  bool recent = false;  // \Recent in this session
  // The message; empty when it was expunged meanwhile or could not be read.
  std::string_view content() {
    if (!raw) raw = &contents->get(msn - 1);
    if (raw->code != Code::ok && raw->code != Code::not_found && failure->empty())
      *failure = content_failure(*raw, m->uid);
    return raw->bytes;
  }
  // The stored summary (parsed at delivery, or now when it has none).
  const mime::Summary& summary() {
    if (!sum) sum = &window->get(msn - 1);
    return *sum;
  }
  // Header keys read the summary's copy of the header, not the message.
  std::string_view header() {
    const auto& s = summary();
    if (!s.header.empty()) return s.header;
    return content().substr(0, std::min<size_t>(s.root.body_begin, content().size()));
  }
};

// An address header without RFC 5322 comments and the spaces they leave
// around '@', so "user (x)@ (y) domain.org" matches "user@domain.org".
std::string address_text(std::string_view v) {
  std::string out;
  int depth = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    char ch = v[i];
    if (ch == '\\' && i + 1 < v.size()) {
      if (!depth) out += v.substr(i, 2);
      ++i;
    } else if (ch == '(') {
      ++depth;
    } else if (ch == ')' && depth) {
      --depth;
    } else if (!depth) {
      out += ch;
    }
  }
  std::string tight;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == ' ' || out[i] == '\t') {
      size_t j = out.find_first_not_of(" \t", i);
      if ((j != std::string::npos && out[j] == '@') || (!tight.empty() && tight.back() == '@')) {
        i = j == std::string::npos ? out.size() : j - 1;
        continue;
      }
    }
    tight += out[i];
  }
  return tight;
}

bool header_match(Ctx& c, const std::string& field, const std::string& value) {
  auto vals = mime::header_values(c.header(), field);
  bool address = field == "FROM" || field == "TO" || field == "CC" || field == "BCC";
  for (const auto& v : vals) {
    if (icontains(v, value) || icontains(mime::decode_header_text(v), value)) return true;
    if (address && icontains(address_text(v), value)) return true;
  }
  return false;
}

bool eval(const Key& k, Ctx& c) {
  const auto& m = *c.m;
  const std::string& n = k.name;
  auto has = [&](uint32_t f) { return (m.flags & f) != 0; };
  if (n == "AND") {
    for (const auto& kid : k.kids)
      if (!eval(*kid, c)) return false;
    return true;
  }
  if (n == "NOT") return !eval(*k.kids[0], c);
  if (n == "OR") return eval(*k.kids[0], c) || eval(*k.kids[1], c);
  if (n == "SEQ") {
    if (k.set.saved) return std::binary_search(c.saved->begin(), c.saved->end(), m.uid);
    return k.set.contains(c.msn, c.max_msn);
  }
  if (n == "UID") {
    if (k.set.saved) return std::binary_search(c.saved->begin(), c.saved->end(), m.uid);
    return k.set.contains(m.uid, c.max_uid);
  }
  if (n == "ALL") return true;
  if (n == "ANSWERED") return has(store::flag::answered);
  if (n == "DELETED") return has(store::flag::deleted);
  if (n == "DRAFT") return has(store::flag::draft);
  if (n == "FLAGGED") return has(store::flag::flagged);
  if (n == "SEEN") return has(store::flag::seen);
  if (n == "UNANSWERED") return !has(store::flag::answered);
  if (n == "UNDELETED") return !has(store::flag::deleted);
  if (n == "UNDRAFT") return !has(store::flag::draft);
  if (n == "UNFLAGGED") return !has(store::flag::flagged);
  if (n == "UNSEEN") return !has(store::flag::seen);
  if (n == "RECENT") return c.recent;
  if (n == "NEW") return c.recent && !has(store::flag::seen);
  if (n == "OLD") return !c.recent;
  if (n == "KEYWORD" || n == "UNKEYWORD") {
    bool found = std::any_of(m.keywords.begin(), m.keywords.end(), [&](const std::string& kw) {
      return upper(kw) == upper(k.arg);
    });
    uint32_t bit;
    if (flag_bit(k.arg, &bit) && bit) found = has(bit);
    return n == "KEYWORD" ? found : !found;
  }
  if (n == "LARGER") return m.size > k.num;
  if (n == "SMALLER") return m.size < k.num;
  int64_t day = static_cast<int64_t>(k.num);
  int64_t idate = m.internal_date;
  if (n == "BEFORE") return idate < day;
  if (n == "ON") return idate >= day && idate < day + 86400;
  if (n == "SINCE") return idate >= day;
  if (n == "SENTBEFORE" || n == "SENTON" || n == "SENTSINCE") {
    int64_t d = c.summary().date;
    // The calendar day in the Date header's own zone (the sender's day).
    if (d == 0) d = idate;
    else d += c.summary().date_offset;
    int64_t dd = d - ((d % 86400) + 86400) % 86400;
    if (n == "SENTBEFORE") return dd < day;
    if (n == "SENTON") return dd == day;
    return dd >= day;
  }
  if (n == "FROM" || n == "TO" || n == "CC" || n == "BCC" || n == "SUBJECT")
    return header_match(c, n, k.arg);
  if (n == "HEADER") {
    if (k.arg2.empty()) return !mime::header_values(c.header(), k.arg).empty();
    return header_match(c, k.arg, k.arg2);
  }
  if (n == "BODY" || n == "TEXT") {
    std::string_view raw = c.content();
    // Nowhere in the message and no encoded part to decode: false without
    // reading the summary (TEXT: the header's encoded words still could match).
    if (n == "BODY" && !icontains(raw, k.arg) && !icontains(raw, "content-transfer-encoding")) return false;
    const auto& s = c.summary();
    std::string_view body = raw.substr(std::min<size_t>(s.root.body_begin, raw.size()));
    if (n == "TEXT" && header_match(c, "", "")) {}
    if (icontains(n == "TEXT" ? raw : body, k.arg)) return true;
    // decoded text parts (base64 / quoted-printable)
    std::vector<const mime::Part*> stack{&s.root};
    while (!stack.empty()) {
      const mime::Part* p = stack.back();
      stack.pop_back();
      for (const auto& ch : p->children) stack.push_back(&ch);
      if (p->type == "text" && !p->encoding.empty() && p->encoding != "7bit" && p->encoding != "8bit") {
        auto d = mime::decode_transfer(p->encoding, raw.substr(std::min<size_t>(p->body_begin, raw.size()),
                                                               p->body_end - p->body_begin));
        if (d && icontains(*d, k.arg)) return true;
      }
    }
    if (n == "TEXT") {
      for (const auto& f : {"From", "To", "Cc", "Subject"})
        if (header_match(c, f, k.arg)) return true;
    }
    return false;
  }
  if (n == "MODSEQ") {
    c.uses_modseq = true;
    return m.modseq >= k.num;
  }
  if (n == "EMAILID") return k.arg == "M" + std::to_string(m.content);
  if (n == "THREADID") return m.thread && k.arg == "T" + std::to_string(m.thread);
  return false;
}

bool uses_modseq(const Key& k) {
  if (k.name == "MODSEQ") return true;
  return std::any_of(k.kids.begin(), k.kids.end(), [](const auto& kid) { return uses_modseq(*kid); });
}

// The summary fields (mime::summary_field) the keys read: header keys the
// header copy, BODY/TEXT the part tree too, SENT* only the date (always sent).
uint32_t summary_fields_for(const Key& k) {
  namespace f = mime::summary_field;
  uint32_t out = 0;
  if (k.name == "BODY" || k.name == "TEXT") out = f::header | f::root;
  else if (k.name == "FROM" || k.name == "TO" || k.name == "CC" || k.name == "BCC" || k.name == "SUBJECT" ||
           k.name == "HEADER")
    out = f::header;
  for (const auto& kid : k.kids) out |= summary_fields_for(*kid);
  return out;
}

// A bare sequence-set key ('$' is SEARCHRES's saved UIDs, not numbers).
bool uses_sequence_numbers(const Key& k) {
  if (k.name == "SEQ" && !k.set.saved) return true;
  return std::any_of(k.kids.begin(), k.kids.end(), [](const auto& kid) { return uses_sequence_numbers(*kid); });
}

}  // namespace

std::optional<Session::SearchHits> Session::search_keys(Parser& p) {
  Key root;
  root.name = "AND";
  if (!parse_keys(p, root.kids, 0, false)) return std::nullopt;
  if (!p.at_end()) {
    p.fail("trailing characters");
    return std::nullopt;
  }
  if (uidonly_ && uses_sequence_numbers(root)) {
    p.fail("[UIDREQUIRED] message sequence numbers are off (UIDONLY): use UID <set>");
    return std::nullopt;
  }
  SearchHits r;
  r.uses_modseq = uses_modseq(root);
  uint32_t max_uid = sel_->msgs.empty() ? 0 : sel_->msgs.back().uid;
  SummaryWindow window;
  uint32_t fields = summary_fields_for(root);
  window.fill = [this, fields](size_t first) {
    std::vector<size_t> idx;
    for (size_t i = first; i < sel_->msgs.size() && idx.size() < kSummaryChunk; ++i) idx.push_back(i);
    std::vector<mime::Summary> out;
    out.reserve(idx.size());
    for_each_summary(idx, [&out](size_t, mime::Summary& s) { out.push_back(std::move(s)); }, fields);
    return out;
  };
  ReadAhead<store::ContentItem> contents;
  contents.fill = [this](size_t first) {
    std::vector<size_t> idx;
    uint64_t bytes = 0;
    // Bigger than a summary window: each window is a wait on a loaded machine.
    for (size_t i = first; i < sel_->msgs.size() && idx.size() < 4 * kSummaryChunk && bytes < kContentChunkBytes;
         ++i) {
      idx.push_back(i);
      bytes += sel_->msgs[i].size;
    }
    return load_contents(idx, 0, idx.size());
  };
  for (size_t i = 0; i < sel_->msgs.size(); ++i) {
    Ctx c{env_.store, &sel_->msgs[i], static_cast<uint32_t>(i + 1), static_cast<uint32_t>(sel_->msgs.size()),
          max_uid, &sel_->saved, &window, &contents, &r.failure};
    c.recent = sel_->recent.count(sel_->msgs[i].uid) != 0;
    if (eval(root, c)) r.hits.push_back(i);
    if (!r.failure.empty()) break;
  }
  return r;
}

std::vector<std::optional<mime::Summary>> Session::load_summaries(const std::vector<size_t>& idx, size_t from,
                                                                  size_t n, uint32_t fields) {
  std::vector<std::optional<mime::Summary>> out(std::min(n, idx.size() - std::min(from, idx.size())));
  // Only the fields asked for cross the socket (~1 KB per message whole); a
  // mail-stored older than summary_fields answers whole summaries.
  store::SummaryFieldsReq want;
  want.fields = fields;
  for (size_t k = 0; k < out.size(); ++k) want.ids.push_back(sel_->msgs[idx[from + k]].content);
  std::vector<std::string> encoded;
  if (auto r = env_.store->summary_fields(want)) {
    encoded = std::move(r->summaries);
  } else if (auto whole = env_.store->content_meta({want.ids})) {
    for (auto& meta : whole->metas) encoded.push_back(std::move(meta.summary));
  }
  for (size_t k = 0; k < out.size() && k < encoded.size(); ++k)
    if (!encoded[k].empty())
      if (auto d = mime::decode_summary(encoded[k])) out[k] = std::move(*d);
  return out;
}

void Session::for_each_summary(const std::vector<size_t>& idx,
                               const std::function<void(size_t, mime::Summary&)>& fn, uint32_t fields) {
  if (idx.empty()) return;
  // The next chunk is read and decoded on another thread meanwhile.
  auto next = std::async(std::launch::async, [this, &idx, fields] { return load_summaries(idx, 0, kSummaryChunk, fields); });
  for (size_t from = 0; from < idx.size(); from += kSummaryChunk) {
    size_t to = std::min(idx.size(), from + kSummaryChunk);
    auto sums = next.get();
    if (to < idx.size())
      next = std::async(std::launch::async,
                        [this, &idx, to, fields] { return load_summaries(idx, to, kSummaryChunk, fields); });
    for (size_t k = from; k < to; ++k) {
      std::optional<mime::Summary>& sum = sums[k - from];
      if (!sum) {  // written before summaries existed: parse the message
        auto c = env_.store->content_get({sel_->msgs[idx[k]].content});
        sum = mime::parse(c ? std::string_view(c->bytes) : std::string_view());
      }
      fn(idx[k], *sum);
    }
  }
}

std::optional<Session::SearchHits> Session::charset_and_search_keys(const std::string& tag, Parser& p, std::string& out,
                                                          const std::string& command) {
  auto bad = [&](const std::string& why) {
    out += tag + " BAD " + why + "\r\n";
    return std::nullopt;
  };
  if (!p.space()) return bad(command + " needs a charset");
  auto cs = p.astring();
  if (!cs) return bad(command + " needs a charset");
  if (!known_charset(*cs)) {
    out += tag + " NO [BADCHARSET (UTF-8 US-ASCII)] unsupported charset\r\n";
    return std::nullopt;
  }
  if (!p.space()) return bad(command + " needs search keys");
  auto found = search_keys(p);
  if (!found) return bad(p.error());
  if (!found->failure.empty()) {
    out += tag + " " + found->failure + "\r\n";
    return std::nullopt;
  }
  if (found->uses_modseq) enable_condstore(out);
  return found;
}

void Session::cmd_search(const std::string& tag, Parser& p, std::string& out, bool uid) {
  auto bad = [&](std::string why) { out += tag + " BAD " + why + "\r\n"; };
  if (!p.space()) return bad("SEARCH needs keys");
  ReturnOptions ret;
  if (auto why = parse_return_options(p, ret)) return bad(*why);
  if (ret.given && !p.space()) return bad("SEARCH needs keys");
  if (p.consume_ci("CHARSET ")) {
    auto cs = p.astring();
    if (!cs) return bad("bad CHARSET");
    if (!known_charset(*cs)) {
      out += tag + " NO [BADCHARSET (UTF-8 US-ASCII)] unsupported charset\r\n";
      return;
    }
    if (!p.space()) return bad("SEARCH needs keys");
  }
  auto found = search_keys(p);
  if (!found) return bad(p.error());
  if (!found->failure.empty()) {
    out += tag + " " + found->failure + "\r\n";
    return;
  }
  bool modseq = found->uses_modseq;
  if (modseq) enable_condstore(out);
  std::vector<store::Uid> hits_uid;
  std::vector<store::ModSeq> hits_modseq;
  std::vector<uint32_t> hits;
  uint64_t max_modseq = 0;
  for (size_t i : found->hits) {
    hits.push_back(uid ? sel_->msgs[i].uid : static_cast<uint32_t>(i + 1));
    hits_uid.push_back(sel_->msgs[i].uid);
    hits_modseq.push_back(sel_->msgs[i].modseq);
    max_modseq = std::max(max_modseq, sel_->msgs[i].modseq);
  }
  if (ret.save) {
    if (ret.min || ret.max) {
      std::vector<store::Uid> s;
      if (!hits_uid.empty()) {
        if (ret.min) s.push_back(hits_uid.front());
        if (ret.max) s.push_back(hits_uid.back());
      }
      sel_->saved = s;
    } else {
      sel_->saved = hits_uid;
    }
    std::sort(sel_->saved.begin(), sel_->saved.end());
  }
  if (ret.given || rev2_) {
    if (!ret.given) ret.all = true;
    std::string line = "* ESEARCH (TAG ";
    mime::append_imap_string(line, tag);
    line += ")";
    if (uid) line += " UID";
    if (!hits.empty()) {
      if (ret.min) line += " MIN " + std::to_string(hits.front());
      if (ret.max) line += " MAX " + std::to_string(hits.back());
      if (ret.all) line += " ALL " + uid_set_string(std::vector<store::Uid>(hits.begin(), hits.end()));
    }
    if (ret.count) line += " COUNT " + std::to_string(hits.size());
    if (modseq && !hits.empty()) {
      // The highest modseq of what is returned (RFC 7162 3.1.5): with only
      // MIN and/or MAX, of those messages alone.
      store::ModSeq returned = max_modseq;
      if (!ret.all && !ret.count && (ret.min || ret.max))
        returned = std::max(ret.min ? hits_modseq.front() : 0, ret.max ? hits_modseq.back() : 0);
      line += " MODSEQ " + std::to_string(returned);
    }
    if (!(ret.save && !ret.min && !ret.max && !ret.count && !ret.all)) out += line + "\r\n";
    else if (!ret.given) out += line + "\r\n";
  } else {
    out += "* SEARCH";
    for (auto h : hits) out += " " + std::to_string(h);
    if (modseq && !hits.empty()) out += " (MODSEQ " + std::to_string(max_modseq) + ")";
    out += "\r\n";
  }
  sync(out, uid);
  out += tag + " OK SEARCH completed\r\n";
}

}  // namespace mail::imap
