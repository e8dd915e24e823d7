// FETCH and UID FETCH: flags and dates from the message list, ENVELOPE and
// BODYSTRUCTURE from the stored summary, sections by slicing the raw message.
#include <algorithm>
#include <future>
#include <iterator>

#include "imap/session.h"
#include "imap/util.h"
#include "mime/summary.h"
#include "mime/summary_fields.h"

namespace mail::imap {

std::vector<size_t> Session::resolve(const SeqSet& set, bool uid) const {
  std::vector<size_t> out;
  const auto& msgs = sel_->msgs;
  if (set.saved) {
    for (size_t i = 0; i < msgs.size(); ++i)
      if (std::binary_search(sel_->saved.begin(), sel_->saved.end(), msgs[i].uid)) out.push_back(i);
    return out;
  }
  if (msgs.empty()) return out;
  // Each range maps to an index interval (UIDs by binary search), so a single
  // message costs the same in any mailbox size.
  uint32_t max = uid ? msgs.back().uid : static_cast<uint32_t>(msgs.size());
  std::vector<std::pair<size_t, size_t>> spans;  // [begin, end) indexes
  for (const auto& r : set.ranges) {
    uint32_t lo = r.lo ? r.lo : max, hi = r.hi ? r.hi : max;
    if (lo > hi) std::swap(lo, hi);
    size_t b, e;
    if (uid) {
      auto first = std::lower_bound(msgs.begin(), msgs.end(), lo,
                                    [](const store::MessageEntry& m, uint32_t u) { return m.uid < u; });
      auto last = std::upper_bound(first, msgs.end(), hi,
                                   [](uint32_t u, const store::MessageEntry& m) { return u < m.uid; });
      b = static_cast<size_t>(first - msgs.begin());
      e = static_cast<size_t>(last - msgs.begin());
    } else {
      b = lo ? lo - 1 : 0;
      e = std::min<size_t>(hi, msgs.size());
    }
    if (b < e) spans.emplace_back(b, e);
  }
  std::sort(spans.begin(), spans.end());
  size_t next = 0;  // overlapping ranges give each index once
  for (const auto& span : spans) {
    for (size_t i = std::max(span.first, next); i < span.second; ++i) out.push_back(i);
    next = std::max(next, span.second);
  }
  return out;
}

namespace {

constexpr size_t kFetchChunk = 1024;       // summaries per store request (~1 MB)
constexpr size_t kFlushBytes = 256 << 10;  // output handed to the connection at a time

struct Section {
  std::vector<uint32_t> path;
  std::string text;  // "", HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME
  std::vector<std::string> fields;
  std::string spec;  // as echoed in the response
};

struct Item {
  enum Kind { flags, internaldate, size, envelope, bodystructure, body, uid, modseq, emailid, threadid,
              section, binary, binary_size, rfc822, rfc822_header, rfc822_text, preview };
  Kind kind = flags;
  Item() = default;
  explicit Item(Kind k) : kind(k) {}
  bool peek = false;
  Section sec;
  bool partial = false;
  uint64_t offset = 0, length = 0;
};

bool parse_section(Parser& p, Section& s, bool binary) {
  size_t start = p.pos();
  std::string spec;
  while (std::isdigit(static_cast<unsigned char>(p.peek()))) {
    auto n = p.nz_number();
    if (!n) return false;
    s.path.push_back(*n);
    if (!spec.empty()) spec += '.';
    spec += std::to_string(*n);
    if (!p.consume('.')) break;
    if (!std::isdigit(static_cast<unsigned char>(p.peek()))) {
      spec += '.';
      break;
    }
  }
  (void)start;
  if (binary) {
    if (!p.consume(']')) return p.fail("bad BINARY section");
    s.spec = spec;
    return true;
  }
  if (p.peek() != ']') {
    if (!spec.empty() && spec.back() != '.') return p.fail("bad section");
    auto a = p.atom();
    if (!a) return false;
    s.text = upper(*a);
    spec += s.text;
    if (s.text == "HEADER.FIELDS" || s.text == "HEADER.FIELDS.NOT") {
      if (!p.space() || !p.consume('(')) return p.fail("bad header list");
      spec += " (";
      while (!p.consume(')')) {
        auto f = p.astring();
        if (!f) return false;
        if (!s.fields.empty()) spec += ' ';
        spec += upper(*f);
        s.fields.push_back(*f);
        p.space();
      }
      if (s.fields.empty()) return p.fail("empty header list");
      spec += ')';
    } else if (s.text == "MIME") {
      if (s.path.empty()) return p.fail("MIME needs a part number");
    } else if (s.text != "HEADER" && s.text != "TEXT") {
      return p.fail("bad section text");
    }
  } else if (!spec.empty() && spec.back() == '.') {
    return p.fail("bad section");
  }
  if (!p.consume(']')) return p.fail("bad section");
  s.spec = spec;
  return true;
}

bool parse_item(Parser& p, std::vector<Item>& items) {
  auto a = p.item_name();
  if (!a) return false;
  std::string u = upper(*a);
  auto push = [&](Item::Kind k) {
    Item it(k);
    items.push_back(it);
    return true;
  };
  if (u == "ALL" || u == "FAST" || u == "FULL") {
    push(Item::flags);
    push(Item::internaldate);
    push(Item::size);
    if (u != "FAST") push(Item::envelope);
    if (u == "FULL") push(Item::body);
    return true;
  }
  if (u == "FLAGS") return push(Item::flags);
  if (u == "INTERNALDATE") return push(Item::internaldate);
  if (u == "RFC822.SIZE") return push(Item::size);
  if (u == "ENVELOPE") return push(Item::envelope);
  if (u == "BODYSTRUCTURE") return push(Item::bodystructure);
  if (u == "UID") return push(Item::uid);
  if (u == "MODSEQ") return push(Item::modseq);
  if (u == "EMAILID") return push(Item::emailid);
  if (u == "THREADID") return push(Item::threadid);
  if (u == "RFC822") return push(Item::rfc822);
  if (u == "RFC822.HEADER") return push(Item::rfc822_header);
  if (u == "RFC822.TEXT") return push(Item::rfc822_text);
  if (u == "PREVIEW") {
    if (p.space()) {  // PREVIEW (LAZY)
      return p.fail("PREVIEW modifiers are not supported");
    }
    return push(Item::preview);
  }
  if (u == "BODY" && p.peek() != '[') return push(Item::body);
  Item it(Item::section);
  if (u == "BODY" || u == "BODY.PEEK") {
    it.peek = u == "BODY.PEEK";
  } else if (u == "BINARY" || u == "BINARY.PEEK") {
    it.kind = Item::binary;
    it.peek = u == "BINARY.PEEK";
  } else if (u == "BINARY.SIZE") {
    it.kind = Item::binary_size;
    it.peek = true;
  } else {
    return p.fail("unknown FETCH item " + *a);
  }
  if (!p.consume('[')) return p.fail("missing section");
  if (!parse_section(p, it.sec, it.kind != Item::section)) return false;
  if (p.consume('<')) {
    if (it.kind == Item::binary_size) return p.fail("no partial for BINARY.SIZE");
    auto o = p.number();
    if (!o || !p.consume('.')) return p.fail("bad partial");
    auto l = p.nz_number();
    if (!l || !p.consume('>')) return p.fail("bad partial");
    it.partial = true;
    it.offset = *o;
    it.length = *l;
  }
  items.push_back(std::move(it));
  return true;
}

// The summary fields (mime::summary_field) the items read: ENVELOPE alone
// or the top-level header need ~100-300 bytes of the ~1 KB summary.
uint32_t summary_fields_for(const std::vector<Item>& items) {
  namespace f = mime::summary_field;
  uint32_t out = 0;
  for (const auto& it : items) {
    bool header_only = it.kind == Item::rfc822_header ||
                       (it.kind == Item::section && it.sec.path.empty() &&
                        (it.sec.text == "HEADER" || it.sec.text == "HEADER.FIELDS" ||
                         it.sec.text == "HEADER.FIELDS.NOT"));
    if (it.kind == Item::envelope) out |= f::envelope;
    else if (it.kind == Item::bodystructure) out |= f::bodystructure;
    else if (it.kind == Item::body) out |= f::body;
    else if (it.kind == Item::preview) out |= f::preview;
    else if (header_only) out |= f::header | f::root;  // root: where the header ends
    else if (it.kind == Item::section || it.kind == Item::binary || it.kind == Item::binary_size ||
             it.kind == Item::rfc822_text)
      out |= f::all;
  }
  return out;
}

void append_literal(std::string& out, std::string_view data, bool binary = false) {
  bool has_nul = data.find('\0') != std::string_view::npos;
  out += (binary && has_nul) ? "~{" : "{";
  out += std::to_string(data.size()) + "}\r\n";
  size_t at = out.size();
  out.append(data);
  // Only literal8 (BINARY) may carry NUL (RFC 9051 4.3, RFC 3516 4.2): in
  // BODY[] of binary content it becomes 0x80, keeping the size.
  if (has_nul && !binary) std::replace(out.begin() + static_cast<std::ptrdiff_t>(at), out.end(), '\0', '\x80');
}

}  // namespace

std::vector<store::ContentItem> Session::load_contents(const std::vector<size_t>& idx, size_t from, size_t n) {
  n = std::min(n, idx.size() - std::min(from, idx.size()));
  // Parts of the range go out as requests in parallel: mail-stored reads them
  // on several workers, and their waits (for a core, on a loaded machine)
  // overlap instead of adding up.
  constexpr size_t kParts = 8, kMinPart = 32;
  size_t per = std::max(kMinPart, (n + kParts - 1) / kParts);
  std::vector<std::future<std::vector<store::ContentItem>>> rest;
  for (size_t b = per; b < n; b += per)
    rest.push_back(std::async(std::launch::async, [this, &idx, from, b, per, n] {
      return load_content_range(idx, from + b, std::min(per, n - b));
    }));
  auto out = load_content_range(idx, from, std::min(per, n));
  for (auto& f : rest) {
    auto part = f.get();
    std::move(part.begin(), part.end(), std::back_inserter(out));
  }
  return out;
}

std::vector<store::ContentItem> Session::load_content_range(const std::vector<size_t>& idx, size_t from,
                                                            size_t n) {
  constexpr uint64_t kRequestBytes = 32 << 20;  // well inside the protocol's frame limit
  std::vector<store::ContentItem> out;
  out.reserve(n);
  while (out.size() < n) {
    store::ContentManyReq req;
    req.max_bytes = kRequestBytes;
    for (size_t k = out.size(); k < n; ++k) req.ids.push_back(sel_->msgs[idx[from + k]].content);
    auto r = env_.store->content_get_many(req);
    if (!r || r->contents.empty()) {
      store::ContentItem failed;
      failed.code = r ? Code::internal : r.code();
      if (failed.code == Code::not_found) failed.code = Code::internal;  // not "expunged": the request failed
      failed.message = r ? "the store answered no content" : r.status().message();
      out.resize(n, failed);
      break;
    }
    for (auto& c : r->contents)
      if (out.size() < n) out.push_back(std::move(c));
  }
  return out;
}

std::string content_failure(const store::ContentItem& item, store::Uid uid) {
  return no_for(Status(item.code, "cannot read message UID " + std::to_string(uid) + ": " + item.message));
}

void Session::cmd_fetch(const std::string& tag, Parser& p, std::string& out, bool uid) {
  std::optional<SeqSet> set;
  auto bad = [&](std::string why) { out += tag + " BAD " + why + "\r\n"; };
  if (!p.space() || !(set = p.sequence_set()) || !p.space()) return bad("FETCH needs a set and items");
  std::vector<Item> items;
  if (p.consume('(')) {
    while (!p.consume(')')) {
      if (!parse_item(p, items)) return bad(p.error());
      if (!p.space() && p.peek() != ')') return bad("bad FETCH item list");
    }
  } else if (!parse_item(p, items)) {
    return bad(p.error());
  }
  uint64_t changed_since = 0;
  bool has_changed_since = false, vanished = false;
  if (p.space()) {
    if (!p.consume('(')) return bad("bad FETCH modifier");
    do {
      auto a = p.atom();
      std::string m = a ? upper(*a) : "";
      if (m == "CHANGEDSINCE") {
        auto n = p.space() ? p.number() : std::nullopt;
        if (!n) return bad("bad CHANGEDSINCE");
        changed_since = *n;
        has_changed_since = true;
      } else if (m == "VANISHED") {
        vanished = true;
      } else {
        return bad("bad FETCH modifier");
      }
    } while (p.space());
    if (!p.consume(')')) return bad("bad FETCH modifier");
    // RFC 7162 3.2.6: only UID FETCH, with CHANGEDSINCE, after ENABLE QRESYNC.
    if (vanished && (!uid || !has_changed_since || !qresync_)) return bad("VANISHED needs UID FETCH with CHANGEDSINCE and QRESYNC enabled");
    if (has_changed_since) enable_condstore(out);
  }
  if (!p.at_end()) return bad("trailing characters");
  if (items.empty()) return bad("no FETCH items");
  if (std::any_of(items.begin(), items.end(), [](const Item& i) { return i.kind == Item::modseq; }))
    enable_condstore(out);
  // UIDFETCH (UIDONLY) carries the UID already: only an asked-for UID item goes in.
  if (uid && !uidonly_ && std::none_of(items.begin(), items.end(), [](const Item& i) { return i.kind == Item::uid; }))
    items.insert(items.begin(), Item(Item::uid));
  if (has_changed_since && std::none_of(items.begin(), items.end(), [](const Item& i) { return i.kind == Item::modseq; }))
    items.push_back(Item(Item::modseq));
  bool need_meta = false, need_content = false, need_header = false, sets_seen = false;
  for (const auto& it : items) {
    // The whole message (BODY[], BINARY[], their partials) needs no summary.
    bool whole = (it.kind == Item::section || it.kind == Item::binary || it.kind == Item::binary_size) &&
                 it.sec.path.empty() && it.sec.text.empty();
    if (it.kind == Item::envelope || it.kind == Item::bodystructure || it.kind == Item::body ||
        it.kind == Item::preview || it.kind == Item::rfc822_header || it.kind == Item::rfc822_text ||
        ((it.kind == Item::section || it.kind == Item::binary || it.kind == Item::binary_size) && !whole))
      need_meta = true;
    // The top-level header alone comes from the summary (no message read).
    bool header_only = it.kind == Item::rfc822_header ||
                       (it.kind == Item::section && it.sec.path.empty() &&
                        (it.sec.text == "HEADER" || it.sec.text == "HEADER.FIELDS" ||
                         it.sec.text == "HEADER.FIELDS.NOT"));
    if (header_only) {
      need_meta = need_header = true;
    } else if (it.kind == Item::section || it.kind == Item::binary || it.kind == Item::binary_size ||
               it.kind == Item::rfc822 || it.kind == Item::rfc822_text) {
      need_content = true;
    }
    if ((it.kind == Item::section || it.kind == Item::binary) && !it.peek) sets_seen = true;
    if (it.kind == Item::rfc822 || it.kind == Item::rfc822_text) sets_seen = true;
  }
  // A number past the end is BAD; a range ending in '*' just clamps, so
  // `FETCH 1:*` on an empty mailbox is OK with no results (clients rely on it).
  if (!uid && set->saved == false)
    for (const auto& r : set->ranges)
      if (r.lo && r.hi && (r.lo > sel_->msgs.size() || r.hi > sel_->msgs.size())) {
        out += tag + " BAD invalid message sequence number\r\n";
        return;
      }
  if (vanished && !set->saved) {
    auto gone = expunged_since(changed_since, &*set);
    if (!gone.empty()) out += "* VANISHED (EARLIER) " + uid_set_string(gone) + "\r\n";
  }
  std::vector<size_t> idx = resolve(*set, uid);
  if (has_changed_since)
    idx.erase(std::remove_if(idx.begin(), idx.end(), [&](size_t i) { return sel_->msgs[i].modseq <= changed_since; }),
              idx.end());
  // Mark \Seen first, so the FLAGS we send are the new ones.
  std::vector<bool> seen_changed(sel_->msgs.size(), false);
  if (sets_seen && !sel_->read_only) {
    std::vector<store::Uid> uids;
    for (size_t i : idx)
      if (!(sel_->msgs[i].flags & store::flag::seen)) uids.push_back(sel_->msgs[i].uid);
    if (!uids.empty()) {
      store::FlagsUpdateReq req;
      req.mailbox = sel_->info.id;
      req.uids = uids;
      req.mode = store::FlagMode::add;
      req.flags = store::flag::seen;
      auto r = env_.store->flags_update(req);
      if (r) sel_->apply_updates(*r, seen_changed);
    }
  }
  // Summaries (one store request per chunk) and messages are read and decoded
  // on another thread while the chunk before is rendered; the response goes
  // out as it grows, so a FETCH 1:* is never held whole in memory and the
  // client reads meanwhile.
  struct Chunk {
    size_t end = 0;  // idx[..end) read so far
    std::vector<std::optional<mime::Summary>> metas;
    std::vector<store::ContentItem> raws;
  };
  uint32_t fields = summary_fields_for(items);
  auto load = [this, &idx, need_meta, need_content, fields](size_t from) {
    Chunk c;
    uint64_t bytes = 0;
    c.end = from;
    while (c.end < idx.size() && c.end - from < kFetchChunk && (!need_content || bytes < kContentChunkBytes))
      bytes += sel_->msgs[idx[c.end++]].size;
    if (need_meta) c.metas = load_summaries(idx, from, c.end - from, fields);
    if (need_content) c.raws = load_contents(idx, from, c.end - from);
    return c;
  };
  bool read_ahead = need_meta || need_content;
  std::future<Chunk> next;
  if (read_ahead && !idx.empty()) next = std::async(std::launch::async, load, 0);
  Chunk chunk;
  size_t chunk_begin = 0;
  std::optional<mime::Summary> no_meta;
  std::string fail_text;
  std::string line;
  for (size_t k = 0; k < idx.size(); ++k) {
    if (out.size() >= kFlushBytes && env_.flush) {
      if (!env_.flush(out)) break;  // the client is gone
      out.clear();
    }
    if (read_ahead && k == chunk.end) {
      chunk = next.get();
      chunk_begin = k;
      if (chunk.end < idx.size()) next = std::async(std::launch::async, load, chunk.end);
    }
    auto& meta = need_meta ? chunk.metas[k - chunk_begin] : no_meta;
    const auto& m = sel_->msgs[idx[k]];
    std::string raw;
    if (need_content) {
      auto& c = chunk.raws[k - chunk_begin];
      if (c.code == Code::not_found) continue;  // expunged meanwhile
      if (c.code != Code::ok) {
        // What was sent is whole; the rest is not sent at all.
        fail_text = content_failure(c, m.uid);
        break;
      }
      raw = std::move(c.bytes);
    } else if (need_header) {
      // Offsets in the header block are the message's own.
      if (meta && !meta->header.empty()) {
        raw = std::move(meta->header);
      } else {  // a summary from before it kept the header
        auto c = env_.store->content_get({m.content});
        if (!c) continue;
        raw = std::move(c->bytes);
      }
    }
    if (need_meta && !meta) meta = mime::parse(raw);  // summary missing: parse now
    const mime::Summary* sum = meta ? &*meta : nullptr;
    line.clear();  // reused: one buffer for every message's line
    append_fetch_head(line, idx[k]);
    bool first = true;
    bool flags_done = false;
    auto sep = [&] {
      if (!first) line += ' ';
      first = false;
    };
    for (const auto& it : items) {
      sep();
      switch (it.kind) {
        case Item::flags:
          line += "FLAGS ";
          append_flags(line, m);
          flags_done = true;
          break;
        case Item::internaldate: line += "INTERNALDATE \"" + format_internal_date(m.internal_date) + "\""; break;
        case Item::size: line += "RFC822.SIZE " + std::to_string(m.size); break;
        case Item::envelope: line += "ENVELOPE " + (sum ? sum->envelope : std::string("NIL")); break;
        case Item::bodystructure: line += "BODYSTRUCTURE " + (sum ? sum->bodystructure : std::string("NIL")); break;
        case Item::body: line += "BODY " + (sum ? sum->body : std::string("NIL")); break;
        case Item::uid: line += "UID " + std::to_string(m.uid); break;
        case Item::modseq: line += "MODSEQ (" + std::to_string(m.modseq) + ")"; break;
        case Item::emailid: line += "EMAILID (M" + std::to_string(m.content) + ")"; break;
        case Item::threadid:
          line += m.thread ? "THREADID (T" + std::to_string(m.thread) + ")" : std::string("THREADID NIL");
          break;
        case Item::preview:
          line += "PREVIEW ";
          mime::append_imap_string(line, sum ? sum->preview : std::string());
          break;
        case Item::rfc822:
          line += "RFC822 ";
          append_literal(line, raw);
          break;
        case Item::rfc822_header:
          line += "RFC822.HEADER ";
          append_literal(line, std::string_view(raw).substr(0, sum ? sum->root.body_begin : raw.size()));
          break;
        case Item::rfc822_text:
          line += "RFC822.TEXT ";
          append_literal(line, std::string_view(raw).substr(std::min<size_t>(sum ? sum->root.body_begin : 0, raw.size())));
          break;
        case Item::section:
        case Item::binary:
        case Item::binary_size: {
          std::string_view rv = raw;
          const mime::Part* part = sum ? mime::find_part(sum->root, it.sec.path) : nullptr;
          std::string owned;  // data when it is not a slice of the message
          std::string_view data;
          bool found = part != nullptr || (it.sec.path.empty() && it.sec.text.empty());
          if (found) {
            auto slice = [&](uint64_t b, uint64_t e) {
              b = std::min<uint64_t>(b, rv.size());
              e = std::min<uint64_t>(std::max(b, e), rv.size());
              return rv.substr(b, e - b);
            };
            const mime::Part* msg = part;  // the message whose HEADER/TEXT is meant
            if (!it.sec.path.empty() && part->is_message() && !part->children.empty()) msg = &part->children[0];
            const std::string& t = it.sec.text;
            if (it.kind != Item::section) {
              if (it.sec.path.empty()) data = rv;
              else data = slice(part->body_begin, part->body_end);
            } else if (t.empty()) {
              data = it.sec.path.empty() ? rv : slice(part->body_begin, part->body_end);
            } else if (t == "MIME") {
              data = slice(part->header_begin, part->body_begin);
            } else if (!it.sec.path.empty() && !part->is_message()) {
              found = false;
            } else if (t == "HEADER") {
              data = slice(msg->header_begin, msg->body_begin);
            } else if (t == "TEXT") {
              data = slice(msg->body_begin, msg->body_end);
            } else {
              owned = mime::header_fields(slice(msg->header_begin, msg->body_begin), it.sec.fields,
                                          t == "HEADER.FIELDS.NOT");
              data = owned;
            }
            if (found && it.kind != Item::section && !it.sec.path.empty()) {
              // BINARY[] is the message as stored (nothing of it is decoded).
              if (part->is_multipart() || part->is_message()) {
                if (part->is_multipart()) fail_text = "NO [UNKNOWN-CTE] BINARY of a multipart";
              } else {
                auto d = mime::decode_transfer(part->encoding, data);
                if (!d) {
                  fail_text = "NO [UNKNOWN-CTE] " + d.status().message();
                  found = false;
                } else {
                  owned = std::move(*d);
                  data = owned;
                }
              }
            }
          }
          std::string name = it.kind == Item::section ? "BODY[" : it.kind == Item::binary ? "BINARY[" : "BINARY.SIZE[";
          line += name + it.sec.spec + "]";
          if (it.kind == Item::binary_size) {
            line += " " + std::to_string(found ? data.size() : 0);
            break;
          }
          if (it.partial) {
            line += "<" + std::to_string(it.offset) + ">";
            data = it.offset >= data.size() ? std::string_view() : data.substr(it.offset, it.length);
          }
          line += ' ';
          if (!found) line += it.kind == Item::section ? "\"\"" : "NIL";
          else append_literal(line, data, it.kind == Item::binary);
          break;
        }
      }
    }
    if (seen_changed[idx[k]] && !flags_done) {
      line += " FLAGS ";
      append_flags(line, m);
    }
    if (condstore_ && seen_changed[idx[k]] &&
        std::none_of(items.begin(), items.end(), [](const Item& i) { return i.kind == Item::modseq; }))
      line += " MODSEQ (" + std::to_string(m.modseq) + ")";
    line += ")\r\n";
    out += line;
  }
  sync(out, uid);
  if (!fail_text.empty()) out += tag + " " + fail_text + "\r\n";
  else out += tag + " OK FETCH completed\r\n";
}

}  // namespace mail::imap
