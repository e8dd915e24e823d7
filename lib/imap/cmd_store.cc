// STORE, COPY, MOVE (and UID variants) and APPEND.
#include <algorithm>
#include <ctime>

#include "imap/session.h"
#include "imap/util.h"
#include "mime/summary.h"
#include "spam/learn.h"

namespace mail::imap {

void Session::cmd_store(const std::string& tag, Parser& p, std::string& out, bool uid) {
  auto bad = [&](std::string why) { out += tag + " BAD " + why + "\r\n"; };
  std::optional<SeqSet> set;
  if (!p.space() || !(set = p.sequence_set()) || !p.space()) return bad("STORE needs a set");
  uint64_t unchanged_since = 0;
  bool has_unchanged = false;
  if (p.consume('(')) {
    if (!p.consume_ci("UNCHANGEDSINCE") || !p.space()) return bad("bad STORE modifier");
    auto n = p.number();
    if (!n || !p.consume(')') || !p.space()) return bad("bad UNCHANGEDSINCE");
    unchanged_since = *n;
    has_unchanged = true;
    enable_condstore(out);
  }
  store::FlagMode mode = store::FlagMode::set;
  if (p.consume('+')) mode = store::FlagMode::add;
  else if (p.consume('-')) mode = store::FlagMode::remove;
  auto what = p.atom();
  if (!what) return bad("STORE needs FLAGS");
  std::string w = upper(*what);
  bool silent = false;
  if (w == "FLAGS.SILENT") silent = true;
  else if (w != "FLAGS") return bad("STORE supports FLAGS only");
  if (!p.space()) return bad("STORE needs flags");
  auto flags = p.flag_list();
  if (!flags || !p.at_end()) return bad(p.ok() ? "trailing characters" : p.error());
  if (sel_->read_only) {
    out += tag + " NO [READ-ONLY] mailbox is read-only\r\n";
    return;
  }
  store::FlagsUpdateReq req;
  req.mailbox = sel_->info.id;
  req.mode = mode;
  req.unchanged_since = has_unchanged ? std::max<uint64_t>(unchanged_since, 0) : 0;
  for (const auto& f : *flags) {
    uint32_t bit;
    if (!flag_bit(f, &bit)) {
      if (upper(f) == "\\RECENT") continue;
      return bad("cannot store flag " + f);
    }
    if (bit) req.flags |= bit;
    else if (std::find(req.keywords.begin(), req.keywords.end(), f) == req.keywords.end()) req.keywords.push_back(f);
  }
  if (!uid)
    for (const auto& r : set->ranges)
      if ((r.lo && r.lo > sel_->msgs.size()) || (r.hi && r.hi > sel_->msgs.size()))
        return bad("invalid message sequence number");
  std::vector<size_t> idx = resolve(*set, uid);
  std::vector<store::Uid> modified;
  if (has_unchanged && unchanged_since == 0) {  // nothing can be unchanged since 0
    for (size_t i : idx) modified.push_back(sel_->msgs[i].uid);
    idx.clear();
  }
  for (size_t i : idx) req.uids.push_back(sel_->msgs[i].uid);
  std::vector<bool> touched(sel_->msgs.size(), false);
  if (!req.uids.empty()) {
    auto r = env_.store->flags_update(req);
    if (!r) {
      out += tag + " " + no_for(r.status()) + "\r\n";
      return;
    }
    for (auto u : r->modified) modified.push_back(u);
    sel_->apply_updates(*r, touched);
  }
  std::sort(modified.begin(), modified.end());
  for (size_t i : idx) {
    if (std::binary_search(modified.begin(), modified.end(), sel_->msgs[i].uid)) continue;
    if (silent && !(condstore_ && touched[i])) continue;
    if (silent) {
      append_fetch_head(out, i);
      out += (uid && !uidonly_ ? "UID " + std::to_string(sel_->msgs[i].uid) + " " : "") + "MODSEQ (" +
             std::to_string(sel_->msgs[i].modseq) + "))\r\n";
      continue;
    }
    fetch_flags_line(out, i, uid);
  }
  sync(out, uid);
  if (!modified.empty()) {
    std::string s;
    if (uid) {
      s = uid_set_string(modified);
    } else {
      std::vector<store::Uid> msns;
      for (size_t i = 0; i < sel_->msgs.size(); ++i)
        if (std::binary_search(modified.begin(), modified.end(), sel_->msgs[i].uid))
          msns.push_back(static_cast<store::Uid>(i + 1));
      s = uid_set_string(msns);
    }
    out += tag + " OK [MODIFIED " + s + "] conditional STORE failed for some messages\r\n";
    return;
  }
  out += tag + " OK STORE completed\r\n";
}

void Session::cmd_copy(const std::string& tag, Parser& p, std::string& out, bool uid, bool move) {
  std::optional<SeqSet> set;
  std::optional<std::string> dest;
  if (!p.space() || !(set = p.sequence_set()) || !p.space() || !(dest = p.astring()) || !p.at_end()) {
    out += tag + " BAD needs a set and a mailbox\r\n";
    return;
  }
  if (!uid)  // as in FETCH: a range ending in '*' clamps
    for (const auto& r : set->ranges)
      if (r.lo && r.hi && (r.lo > sel_->msgs.size() || r.hi > sel_->msgs.size())) {
        out += tag + " BAD invalid message sequence number\r\n";
        return;
      }
  if (move && sel_->read_only) {
    out += tag + " NO [READ-ONLY] mailbox is read-only\r\n";
    return;
  }
  auto to = env_.store->mailbox_get({account_.id, mailbox_from_imap(*dest)});
  if (!to) {
    out += tag;
    out += to.code() == Code::not_found ? " NO [TRYCREATE] no such mailbox" : ' ' + no_for(to.status());
    out += "\r\n";
    return;
  }
  std::vector<size_t> idx = resolve(*set, uid);
  if (idx.empty()) {
    sync(out, uid);
    out += tag + " OK nothing to " + (move ? "move" : "copy") + "\r\n";
    return;
  }
  store::CopyReq req;
  req.from = sel_->info.id;
  req.to = to->id;
  // MOVE into the selected mailbox itself gives the messages new UIDs
  // (RFC 6851): a copy, then an expunge of the originals (a crash between
  // leaves both, never neither).
  bool self_move = move && to->id == sel_->info.id;
  req.move = move && !self_move;
  for (size_t i : idx) req.uids.push_back(sel_->msgs[i].uid);
  auto r = env_.store->copy(req);
  if (!r) {
    out += tag + " " + no_for(r.status()) + "\r\n";
    return;
  }
  spam::learn_from_copy(*env_.store, account_.id, sel_->info, *to, sel_->msgs, idx);  // into/out of Junk trains
  if (self_move) {
    auto e = env_.store->expunge({sel_->info.id, r->source_uids});
    if (!e) {
      out += tag + " " + no_for(e.status()) + "\r\n";
      return;
    }
  }
  std::string copyuid = "COPYUID " + std::to_string(r->uidvalidity) + " " + uid_set_string(r->source_uids) + " " +
                        uid_set_string(r->dest_uids);
  if (r->source_uids.empty()) copyuid.clear();
  if (move) {
    if (!copyuid.empty()) out += "* OK [" + copyuid + "] moved\r\n";
    sync(out, true);
    out += tag + " OK MOVE completed\r\n";
  } else {
    sync(out, uid);
    out += tag + " OK " + (copyuid.empty() ? "" : "[" + copyuid + "] ") + "COPY completed\r\n";
  }
}

namespace {

// One append-message (RFC 3501, 3502, 6855): [flag-list SP] [date-time SP]
// then a literal or "UTF8 (" literal8 ")". Fills the content, summary, date and
// the flags of a target for `account`; returns why not, for BAD.
std::optional<std::string> read_append_message(Parser& p, store::AccountId account, store::DeliverReq& req) {
  store::DeliveryTarget target;
  target.account = account;
  if (p.peek() == '(') {
    auto f = p.flag_list();
    if (!f || !p.space()) return p.ok() ? "bad APPEND flags" : p.error();
    for (const auto& flag : *f) {
      uint32_t bit;
      if (!flag_bit(flag, &bit)) {
        if (upper(flag) == "\\RECENT") continue;
        return "invalid flag " + flag;
      }
      if (bit) target.flags |= bit;
      else target.keywords.push_back(flag);
    }
  }
  req.internal_date = time(nullptr);
  if (p.peek() == '"') {
    auto d = p.string();
    if (!d) return p.error();
    auto t = parse_internal_date(*d);
    if (!t) return "invalid date-time";
    req.internal_date = *t;
    if (!p.space()) return "APPEND needs a message";
  }
  std::optional<std::string> msg;
  if (p.consume_ci("UTF8")) {  // UTF8 (~{n}) from UTF8=ACCEPT
    if (!p.space() || !p.consume('(')) return "bad UTF8 APPEND";
    msg = p.literal();
    if (!msg || !p.consume(')')) return "bad UTF8 APPEND";
  } else {
    msg = p.literal();
  }
  if (!msg) return p.error();
  req.summary = msg->empty() ? std::string() : mime::summarize(*msg);
  req.content = std::move(*msg);
  req.targets.push_back(std::move(target));
  return std::nullopt;
}

// The target mailbox of APPEND/REPLACE, or the NO that ends the command.
Result<store::MailboxInfo> append_mailbox(store::Store& store, store::AccountId account, const std::string& name,
                                          const std::string& tag, std::string& out) {
  auto mb = store.mailbox_get({account, name});
  if (!mb) {
    out += tag;
    out += mb.code() == Code::not_found ? " NO [TRYCREATE] no such mailbox" : ' ' + no_for(mb.status());
    out += "\r\n";
  }
  return mb;
}

}  // namespace

void Session::cmd_append(const std::string& tag, Parser& p, std::string& out) {
  auto bad = [&](std::string why) { out += tag + " BAD " + why + "\r\n"; };
  std::optional<std::string> name;
  if (!p.space() || !(name = p.astring()) || !p.space()) return bad("APPEND needs a mailbox and a message");
  // MULTIAPPEND (RFC 3502): every message is parsed first, then all are stored
  // in one transaction, or none.
  store::DeliverBatchReq batch;
  batch.all_or_nothing = true;
  do {
    if (auto why = read_append_message(p, account_.id, batch.messages.emplace_back())) return bad(*why);
  } while (p.space());
  if (!p.at_end()) return bad("trailing characters after APPEND");
  auto mb = append_mailbox(*env_.store, account_.id, mailbox_from_imap(*name), tag, out);
  if (!mb) return;
  for (size_t i = 0; i < batch.messages.size(); ++i) {
    if (batch.messages[i].content.empty()) {
      out += tag + " NO empty message" + (batch.messages.size() > 1 ? " (" + std::to_string(i + 1) + ")" : "") +
             "\r\n";
      return;
    }
    batch.messages[i].targets[0].mailbox = mb->id;
  }
  auto r = env_.store->deliver_batch(batch);
  if (!r) {
    out += tag + " " + no_for(r.status()) + "\r\n";
    return;
  }
  uint32_t uidvalidity = 0;
  std::vector<store::Uid> uids;  // ascending: the batch is applied in order
  for (const auto& m : r->messages) {
    if (m.results.empty()) {
      out += tag + " " + no_for(Status(Code::internal, "no delivery result")) + "\r\n";
      return;
    }
    uidvalidity = m.results[0].uidvalidity;
    uids.push_back(m.results[0].uid);
  }
  if (sel_) sync(out, true);
  out += tag + " OK [APPENDUID " + std::to_string(uidvalidity) + " " + uid_set_string(uids) +
         "] APPEND completed\r\n";
}

// REPLACE (RFC 8508): the new message stored and the old one expunged in one
// store transaction (message_replace): a failure or a crash leaves exactly one.
void Session::cmd_replace(const std::string& tag, Parser& p, std::string& out, bool uid) {
  auto bad = [&](std::string why) { out += tag + " BAD " + why + "\r\n"; };
  std::optional<uint32_t> n;
  std::optional<std::string> name;
  if (!p.space() || !(n = p.nz_number()) || !p.space() || !(name = p.astring()) || !p.space())
    return bad("REPLACE needs a message, a mailbox and the new message");
  store::DeliverReq req;
  if (auto why = read_append_message(p, account_.id, req)) return bad(*why);
  if (!p.at_end()) return bad("trailing characters after REPLACE");
  size_t index = uid ? sel_->index_of(*n) : *n - 1;
  if (!uid && index >= sel_->msgs.size()) return bad("invalid message sequence number");
  const auto& pending = sel_->pending_expunge;
  if (index >= sel_->msgs.size() || std::binary_search(pending.begin(), pending.end(), sel_->msgs[index].uid)) {
    out += tag + " NO no such message\r\n";
    return;
  }
  if (sel_->read_only) {
    out += tag + " NO [READ-ONLY] the mailbox is read-only\r\n";
    return;
  }
  if (req.content.empty()) {
    out += tag + " NO empty message\r\n";
    return;
  }
  store::Uid old_uid = sel_->msgs[index].uid;
  auto mb = append_mailbox(*env_.store, account_.id, mailbox_from_imap(*name), tag, out);
  if (!mb) return;
  req.targets[0].mailbox = mb->id;
  store::ReplaceReq replace;
  replace.mailbox = sel_->info.id;
  replace.uid = old_uid;
  replace.message = std::move(req);
  auto r = env_.store->message_replace(replace);
  if (!r) {
    out += tag + " " + no_for(r.status()) + "\r\n";
    return;
  }
  out += "* OK [APPENDUID " + std::to_string(r->appended.uidvalidity) + " " + std::to_string(r->appended.uid) +
         "] replacement message stored\r\n";
  sync(out, true);
  out += tag + " OK REPLACE completed\r\n";
}

}  // namespace mail::imap
