// Mailbox commands: SELECT/EXAMINE, CREATE, DELETE, RENAME, (UN)SUBSCRIBE,
// LIST/LSUB, STATUS, CLOSE/UNSELECT, EXPUNGE.
#include <algorithm>

#include "base/mutf7.h"
#include "imap/session.h"
#include "imap/util.h"
#include "mime/summary.h"

namespace mail::imap {

// The store keeps UTF-8 names; IMAP4rev1 clients spell them in modified
// UTF-7 unless they enabled UTF8=ACCEPT (RFC 6855) or IMAP4rev2 (RFC 9051).
bool Session::utf8_names() const { return rev2_ || utf8_; }

std::string Session::mailbox_from_imap(const std::string& imap_name) const {
  std::string name = utf8_names() ? imap_name : mutf7_decode(imap_name);
  std::string u = upper(name);
  if (u == "INBOX") return "INBOX";
  if (u.rfind("INBOX/", 0) == 0) return "INBOX" + name.substr(5);
  return name;
}

std::string Session::mailbox_to_imap(const std::string& name) const {
  return utf8_names() ? name : mutf7_encode(name);
}

namespace {
bool valid_name(const std::string& n) {
  if (n.empty() || n.size() > 1000 || n.front() == '/' || n.back() == '/' || n.find("//") != std::string::npos)
    return false;
  return std::none_of(n.begin(), n.end(), [](char c) { return c == '*' || c == '%' || (c < 0x20 && c >= 0); });
}

// IMAP LIST pattern match: '*' matches anything, '%' anything but the delimiter.
bool pattern_match(std::string_view pat, std::string_view name) {
  if (pat.empty()) return name.empty();
  if (pat[0] == '*' || pat[0] == '%') {
    for (size_t i = 0; i <= name.size(); ++i) {
      if (pattern_match(pat.substr(1), name.substr(i))) return true;
      if (i < name.size() && pat[0] == '%' && name[i] == '/') return false;
    }
    return false;
  }
  if (name.empty()) return false;
  char a = pat[0], b = name[0];
  if (a != b) return false;
  return pattern_match(pat.substr(1), name.substr(1));
}

const char* special_use_name(store::SpecialUse s) {
  switch (s) {
    case store::SpecialUse::sent: return "\\Sent";
    case store::SpecialUse::drafts: return "\\Drafts";
    case store::SpecialUse::trash: return "\\Trash";
    case store::SpecialUse::junk: return "\\Junk";
    case store::SpecialUse::archive: return "\\Archive";
    case store::SpecialUse::all: return "\\All";
    case store::SpecialUse::flagged: return "\\Flagged";
    default: return nullptr;
  }
}

// Subscriptions of names with no mailbox (RFC 3501 6.3.6: SUBSCRIBE does not
// need the mailbox, DELETE does not unsubscribe), kept in the account's data.
store::DataKey orphan_subscription(store::AccountId account, const std::string& name) {
  return {account, "imap", "s/" + name};
}

// list-mailbox (RFC 3501): a string, or atom characters with the wildcards.
std::optional<std::string> list_pattern(Parser& p) {
  if (p.peek() == '"' || p.at_literal()) return p.string();
  std::string pat;
  for (char c = p.peek(); c == '%' || c == '*' || c == ']' || is_atom_char(c) || static_cast<unsigned char>(c) >= 0x80;
       c = p.peek()) {
    pat += c;
    p.consume(c);
  }
  if (pat.empty()) return std::nullopt;
  return pat;
}

store::SpecialUse special_use_from(const std::string& f) {
  std::string u = upper(f);
  if (u == "\\SENT") return store::SpecialUse::sent;
  if (u == "\\DRAFTS") return store::SpecialUse::drafts;
  if (u == "\\TRASH") return store::SpecialUse::trash;
  if (u == "\\JUNK") return store::SpecialUse::junk;
  if (u == "\\ARCHIVE") return store::SpecialUse::archive;
  if (u == "\\ALL") return store::SpecialUse::all;
  if (u == "\\FLAGGED") return store::SpecialUse::flagged;
  return store::SpecialUse::none;
}
}  // namespace

void Session::cmd_select(const std::string& tag, Parser& p, std::string& out, bool examine) {
  std::optional<std::string> name;
  if (!p.space() || !(name = p.astring())) {
    out += tag + " BAD SELECT needs a mailbox name\r\n";
    return;
  }
  bool want_condstore = false;
  std::optional<QresyncParams> qr;
  if (p.space()) {
    if (!p.consume('(')) {
      out += tag + " BAD bad SELECT parameters\r\n";
      return;
    }
    while (!p.consume(')')) {
      auto a = p.atom();
      if (!a) {
        out += tag + " BAD bad SELECT parameters\r\n";
        return;
      }
      std::string u = upper(*a);
      if (u == "CONDSTORE") {
        want_condstore = true;
      } else if (u == "QRESYNC") {
        if (!qresync_) {
          out += tag + " BAD QRESYNC is not enabled\r\n";
          return;
        }
        if (!p.space() || !(qr = parse_qresync_params(p))) {
          out += tag + " BAD bad QRESYNC parameters\r\n";
          return;
        }
      } else {
        out += tag + " BAD unknown SELECT parameter\r\n";
        return;
      }
      p.space();
    }
  }
  if (!p.at_end()) {
    out += tag + " BAD trailing characters\r\n";
    return;
  }
  // Leaving the old mailbox first (RFC 9051 6.3.2).
  if (sel_) {
    sel_.reset();
    state_ = State::authenticated;
    out += "* OK [CLOSED] previous mailbox closed\r\n";
  }
  auto mb = env_.store->mailbox_get({account_.id, mailbox_from_imap(*name)});
  if (!mb) {
    out += tag + " " + no_for(mb.status()) + "\r\n";
    return;
  }
  auto list = env_.store->message_list({mb->id, 1, 0});
  if (!list) {
    out += tag + " " + no_for(list.status()) + "\r\n";
    return;
  }
  if (want_condstore) condstore_ = true;
  Selected s;
  s.info = list->mailbox;
  s.msgs = std::move(list->messages);
  // Changes after the listing are picked up by sync(); starting from the
  // newest entry's modseq may report some again, which is harmless.
  for (const auto& m : s.msgs) s.known_modseq = std::max(s.known_modseq, m.modseq);
  s.read_only = examine;
  std::set<std::string> keywords;
  for (const auto& m : s.msgs)
    for (const auto& k : m.keywords) keywords.insert(k);
  std::string kw;
  for (const auto& k : keywords) kw += " " + k;
  out += "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft" + kw + ")\r\n";
  out += "* OK [PERMANENTFLAGS (" +
         std::string(examine ? "" : "\\Answered \\Flagged \\Deleted \\Seen \\Draft" + kw + " \\*") +
         ")] flags permitted\r\n";
  out += "* " + std::to_string(s.msgs.size()) + " EXISTS\r\n";
  if (!rev2_) {
    if (env_.recent && !s.msgs.empty()) {
      store::Uid first = examine ? env_.recent->first(s.info.id)
                                 : env_.recent->claim(s.info.id, s.msgs.back().uid + 1);
      for (const auto& m : s.msgs)
        if (m.uid >= first) s.recent.insert(m.uid);
    }
    out += "* " + std::to_string(s.recent.size()) + " RECENT\r\n";
    for (size_t i = 0; i < s.msgs.size(); ++i)
      if (!(s.msgs[i].flags & store::flag::seen)) {
        out += "* OK [UNSEEN " + std::to_string(i + 1) + "] first unseen\r\n";
        break;
      }
  }
  out += "* OK [UIDVALIDITY " + std::to_string(s.info.uidvalidity) + "] UIDs valid\r\n";
  out += "* OK [UIDNEXT " + std::to_string(s.info.uidnext) + "] predicted next UID\r\n";
  out += "* OK [HIGHESTMODSEQ " + std::to_string(std::max<uint64_t>(s.info.highest_modseq, 1)) + "] modseq\r\n";
  if (rev2_) {
    out += "* LIST () \"/\" ";
    mime::append_imap_string(out, mailbox_to_imap(s.info.name));
    out += "\r\n";
  }
  sel_ = std::move(s);
  state_ = State::selected;
  if (qr && qr->uidvalidity == sel_->info.uidvalidity) qresync_select(*qr, out);
  out += tag + (examine ? " OK [READ-ONLY] EXAMINE completed\r\n" : " OK [READ-WRITE] SELECT completed\r\n");
}

void Session::cmd_create(const std::string& tag, Parser& p, std::string& out) {
  std::optional<std::string> name;
  if (!p.space() || !(name = p.astring())) {
    out += tag + " BAD CREATE needs a mailbox name\r\n";
    return;
  }
  store::SpecialUse use = store::SpecialUse::none;
  if (p.space()) {  // (USE (\Sent))
    if (!p.consume('(') || !p.consume_ci("USE") || !p.space()) {
      out += tag + " BAD bad CREATE parameters\r\n";
      return;
    }
    auto flags = p.flag_list();
    if (!flags || !p.consume(')')) {
      out += tag + " BAD bad CREATE parameters\r\n";
      return;
    }
    for (const auto& f : *flags) {
      use = special_use_from(f);
      if (use == store::SpecialUse::none) {
        out += tag + " NO [USEATTR] unsupported special-use attribute\r\n";
        return;
      }
    }
  }
  if (!p.at_end()) {
    out += tag + " BAD trailing characters\r\n";
    return;
  }
  std::string n = mailbox_from_imap(*name);
  while (!n.empty() && n.back() == '/') n.pop_back();  // "foo/" creates foo
  if (!valid_name(n)) {
    out += tag + " NO [CANNOT] invalid mailbox name\r\n";
    return;
  }
  if (n == "INBOX") {
    out += tag + " NO [ALREADYEXISTS] INBOX always exists\r\n";
    return;
  }
  // Create missing parents so the hierarchy has no holes.
  size_t slash = 0;
  while ((slash = n.find('/', slash + 1)) != std::string::npos) {
    auto parent = n.substr(0, slash);
    auto r = env_.store->mailbox_create({account_.id, parent, store::SpecialUse::none});
    (void)r;
  }
  auto r = env_.store->mailbox_create({account_.id, n, use});
  if (!r) {
    out += tag + " " + no_for(r.status()) + "\r\n";
    return;
  }
  // A name subscribed while it had no mailbox: the new mailbox is subscribed.
  auto key = orphan_subscription(account_.id, n);
  if (auto had = env_.store->data_get(key); had && had->found &&
      env_.store->mailbox_subscribe({account_.id, n, true}))
    (void)env_.store->data_delete(key);
  out += tag + " OK CREATE completed\r\n";
}

void Session::cmd_delete(const std::string& tag, Parser& p, std::string& out) {
  std::optional<std::string> name;
  if (!p.space() || !(name = p.astring()) || !p.at_end()) {
    out += tag + " BAD DELETE needs a mailbox name\r\n";
    return;
  }
  std::string n = mailbox_from_imap(*name);
  if (n == "INBOX") {
    out += tag + " NO [CANNOT] INBOX cannot be deleted\r\n";
    return;
  }
  if (sel_ && sel_->info.name == n) {
    sel_.reset();
    state_ = State::authenticated;
  }
  auto before = env_.store->mailbox_get({account_.id, n});
  auto r = env_.store->mailbox_delete({account_.id, n});
  if (!r) {
    out += tag + " " + no_for(r.status()) + "\r\n";
    return;
  }
  if (before && before->subscribed) (void)env_.store->data_put({orphan_subscription(account_.id, n), ""});
  out += tag + " OK DELETE completed\r\n";
}

void Session::cmd_rename(const std::string& tag, Parser& p, std::string& out) {
  std::optional<std::string> from, to;
  if (!p.space() || !(from = p.astring()) || !p.space() || !(to = p.astring()) || !p.at_end()) {
    out += tag + " BAD RENAME needs two mailbox names\r\n";
    return;
  }
  std::string f = mailbox_from_imap(*from), t = mailbox_from_imap(*to);
  if (!valid_name(t)) {
    out += tag + " NO [CANNOT] invalid mailbox name\r\n";
    return;
  }
  auto r = env_.store->mailbox_rename({account_.id, f, t});
  if (!r) {
    out += tag + " " + no_for(r.status()) + "\r\n";
    return;
  }
  out += tag + " OK RENAME completed\r\n";
}

void Session::cmd_subscribe(const std::string& tag, Parser& p, std::string& out, bool on) {
  std::optional<std::string> name;
  if (!p.space() || !(name = p.astring()) || !p.at_end()) {
    out += tag + " BAD needs a mailbox name\r\n";
    return;
  }
  std::string n = mailbox_from_imap(*name);
  auto r = env_.store->mailbox_subscribe({account_.id, n, on});
  if (!r && r.code() == Code::not_found && on && valid_name(n)) {
    r = env_.store->data_put({orphan_subscription(account_.id, n), ""});
  } else if (!r && r.code() == Code::not_found && !on) {
    auto key = orphan_subscription(account_.id, n);
    auto had = env_.store->data_get(key);
    if (had && had->found) r = env_.store->data_delete(key);
  }
  if (!r) {
    out += tag + " " + no_for(r.status()) + "\r\n";
    return;
  }
  out += tag + " OK completed\r\n";
}

// STATUS RECENT: messages no session has claimed as \Recent yet.
uint64_t Session::recent_count(const store::MailboxInfo& mb) {
  if (!env_.recent) return 0;
  store::Uid first = env_.recent->first(mb.id);
  if (first <= 1) return mb.messages;
  if (first >= mb.uidnext) return 0;
  auto r = env_.store->message_list({mb.id, first, 0});
  return r ? r->messages.size() : 0;
}

std::string Session::status_items(const store::MailboxInfo& mb, const std::vector<std::string>& items) {
  std::string s;
  for (const auto& it : items) {
    std::string u = upper(it);
    std::string v;
    if (u == "MESSAGES") v = std::to_string(mb.messages);
    else if (u == "UIDNEXT") v = std::to_string(mb.uidnext);
    else if (u == "UIDVALIDITY") v = std::to_string(mb.uidvalidity);
    else if (u == "UNSEEN") v = std::to_string(mb.unseen);
    else if (u == "RECENT") v = std::to_string(recent_count(mb));
    else if (u == "SIZE") v = std::to_string(mb.bytes);
    else if (u == "DELETED") v = std::to_string(mb.deleted);
    else if (u == "HIGHESTMODSEQ") v = std::to_string(std::max<uint64_t>(mb.highest_modseq, 1));
    else if (u == "APPENDLIMIT") v = std::to_string(env_.config->max_literal);
    else if (u == "DELETED-STORAGE") v = std::to_string(mb.deleted ? deleted_storage(mb.id) : 0);
    else continue;
    if (!s.empty()) s += ' ';
    s += u + ' ' + v;
  }
  return s;
}

uint64_t Session::deleted_storage(store::MailboxId mailbox) {
  auto r = env_.store->message_list({mailbox, 1, 0});
  uint64_t bytes = 0;
  if (r)
    for (const auto& m : r->messages)
      if (m.flags & store::flag::deleted) bytes += m.size;
  return bytes;
}

void Session::cmd_status(const std::string& tag, Parser& p, std::string& out) {
  std::optional<std::string> name;
  if (!p.space() || !(name = p.astring()) || !p.space() || !p.consume('(')) {
    out += tag + " BAD STATUS needs a mailbox and items\r\n";
    return;
  }
  std::vector<std::string> items;
  while (!p.consume(')')) {
    auto a = p.atom();
    if (!a) {
      out += tag + " BAD bad STATUS items\r\n";
      return;
    }
    std::string u = upper(*a);
    if (u != "MESSAGES" && u != "UIDNEXT" && u != "UIDVALIDITY" && u != "UNSEEN" && u != "RECENT" &&
        u != "SIZE" && u != "DELETED" && u != "HIGHESTMODSEQ" && u != "APPENDLIMIT" && u != "DELETED-STORAGE") {
      out += tag + " BAD unknown STATUS item " + *a + "\r\n";
      return;
    }
    items.push_back(u);
    p.space();
  }
  if (items.empty() || !p.at_end()) {
    out += tag + " BAD bad STATUS items\r\n";
    return;
  }
  auto mb = env_.store->mailbox_get({account_.id, mailbox_from_imap(*name)});
  if (!mb) {
    out += tag + " " + no_for(mb.status()) + "\r\n";
    return;
  }
  if (sel_) sync(out, false);
  out += "* STATUS ";
  mime::append_imap_string(out, mailbox_to_imap(mb->name));
  out += " (" + status_items(*mb, items) + ")\r\n";
  out += tag + " OK STATUS completed\r\n";
}

void Session::cmd_list(const std::string& tag, Parser& p, std::string& out, bool lsub) {
  bool sel_subscribed = false, ret_subscribed = false, ret_children = false, ret_special = false,
       recursive = false, sel_special = false;
  std::vector<std::string> status;
  auto bad = [&](const char* why) { out += tag + " BAD " + std::string(why) + "\r\n"; };
  if (!p.space()) return bad("LIST needs arguments");
  if (!lsub && p.consume('(')) {
    while (!p.consume(')')) {
      auto a = p.atom();
      if (!a) return bad("bad selection options");
      std::string u = upper(*a);
      if (u == "SUBSCRIBED") sel_subscribed = true;
      else if (u == "RECURSIVEMATCH") recursive = true;
      else if (u == "SPECIAL-USE") sel_special = true;
      else if (u == "REMOTE") {
      } else return bad("unknown selection option");
      p.space();
    }
    if (recursive && !sel_subscribed && !sel_special) return bad("RECURSIVEMATCH needs another option");
    if (!p.space()) return bad("LIST needs a reference");
  }
  auto ref = p.astring();
  if (!ref || !p.space()) return bad("LIST needs a reference and a pattern");
  std::vector<std::string> patterns;
  if (!lsub && p.consume('(')) {  // LIST-EXTENDED pattern list
    do {
      auto s = list_pattern(p);
      if (!s) return bad("bad pattern list");
      patterns.push_back(*s);
    } while (p.space());
    if (!p.consume(')')) return bad("bad pattern list");
  } else {
    auto s = list_pattern(p);
    if (!s) return bad("bad pattern");
    patterns.push_back(*s);
  }
  if (p.space()) {
    if (lsub || !p.consume_ci("RETURN") || !p.space() || !p.consume('(')) return bad("bad return options");
    while (!p.consume(')')) {
      auto a = p.atom();
      if (!a) return bad("bad return options");
      std::string u = upper(*a);
      if (u == "SUBSCRIBED") ret_subscribed = true;
      else if (u == "CHILDREN") ret_children = true;
      else if (u == "SPECIAL-USE") ret_special = true;
      else if (u == "STATUS") {
        if (!p.space() || !p.consume('(')) return bad("bad STATUS return option");
        while (!p.consume(')')) {
          auto s = p.atom();
          if (!s) return bad("bad STATUS return option");
          status.push_back(upper(*s));
          p.space();
        }
      } else return bad("unknown return option");
      p.space();
    }
  }
  if (!p.at_end()) return bad("trailing characters");
  (void)ret_children;
  if (patterns.size() == 1 && patterns[0].empty() && !lsub) {
    out += "* LIST (\\Noselect) \"/\" \"\"\r\n" + tag + " OK LIST completed\r\n";
    return;
  }
  auto mbs = env_.store->mailbox_list({account_.id});
  if (!mbs) {
    out += tag + " " + no_for(mbs.status()) + "\r\n";
    return;
  }
  auto& list = mbs->mailboxes;
  // Subscribed names without a mailbox: \NonExistent (RFC 5258) entries.
  if (sel_subscribed || lsub) {
    auto orphans = env_.store->data_scan({account_.id, "imap", "s/", 0});
    if (orphans)
      for (const auto& item : orphans->items) {
        store::MailboxInfo gone;
        gone.name = item.key.substr(2);
        gone.subscribed = true;
        gone.id = 0;  // marks it as not existing
        if (std::none_of(list.begin(), list.end(), [&](const auto& m) { return m.name == gone.name; }))
          list.push_back(std::move(gone));
      }
  }
  std::sort(list.begin(), list.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  auto is_under = [](const std::string& child, const std::string& n) {
    return child.size() > n.size() + 1 && child.compare(0, n.size() + 1, n + "/") == 0;
  };
  auto has_children = [&](const std::string& n) {
    return std::any_of(list.begin(), list.end(), [&](const auto& m) { return m.id && is_under(m.name, n); });
  };
  auto matches = [&](const std::string& name) {
    std::string imap_name = mailbox_to_imap(name);
    return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& pat) {
      std::string full = *ref + pat;
      std::string up = upper(full);
      if (up.rfind("INBOX", 0) == 0 && (up.size() == 5 || up[5] == '/')) full = "INBOX" + full.substr(5);
      return pattern_match(full, imap_name);
    });
  };
  for (const auto& mb : list) {
    std::string imap_name = mailbox_to_imap(mb.name);
    if (!matches(mb.name)) continue;
    // RECURSIVEMATCH (RFC 5258 3): a match with a subscribed descendant the
    // patterns do not reach is listed with CHILDINFO, subscribed or not.
    bool childinfo = recursive && sel_subscribed && std::any_of(list.begin(), list.end(), [&](const auto& m) {
                       return m.subscribed && is_under(m.name, mb.name) && !matches(m.name);
                     });
    // LSUB with '%': an unsubscribed parent of subscribed mailboxes is listed
    // \Noselect so the client can descend (RFC 3501 6.3.9).
    bool lsub_parent = false;
    if (lsub && !mb.subscribed) {
      bool wild = std::any_of(patterns.begin(), patterns.end(),
                              [](const std::string& pat) { return pat.find('%') != std::string::npos; });
      lsub_parent = wild && std::any_of(list.begin(), list.end(), [&](const auto& m) {
                      return m.subscribed && m.name.size() > mb.name.size() + 1 &&
                             m.name.compare(0, mb.name.size() + 1, mb.name + "/") == 0;
                    });
      if (!lsub_parent) continue;
    }
    if (sel_subscribed && !mb.subscribed && !childinfo) continue;
    if (sel_special && mb.special_use == store::SpecialUse::none) continue;
    std::string attrs;
    auto add = [&](const char* a) {
      if (!attrs.empty()) attrs += ' ';
      attrs += a;
    };
    if (!mb.id && !lsub) add("\\NonExistent");
    else if (!lsub) add(has_children(mb.name) ? "\\HasChildren" : "\\HasNoChildren");
    if (lsub_parent) add("\\Noselect");
    if ((sel_subscribed || ret_subscribed) && mb.subscribed) add("\\Subscribed");
    if (const char* su = special_use_name(mb.special_use); su && (ret_special || sel_special || !ret_subscribed))
      add(su);
    out += std::string("* ") + (lsub ? "LSUB" : "LIST") + " (" + attrs + ") \"/\" ";
    mime::append_imap_string(out, imap_name);
    if (childinfo) out += " (\"CHILDINFO\" (\"SUBSCRIBED\"))";
    out += "\r\n";
    if (!status.empty() && mb.id) {
      std::string s = status_items(mb, status);
      out += "* STATUS ";
      mime::append_imap_string(out, imap_name);
      out += " (" + s + ")\r\n";
    }
  }
  out += tag + (lsub ? " OK LSUB completed\r\n" : " OK LIST completed\r\n");
}

void Session::cmd_close(const std::string& tag, Parser& p, std::string& out, bool expunge) {
  if (!p.at_end()) {
    out += tag + " BAD trailing characters\r\n";
    return;
  }
  if (expunge && !sel_->read_only) {
    std::vector<store::Uid> del;
    auto r = env_.store->message_list({sel_->info.id, 1, 0});
    if (r)
      for (const auto& m : r->messages)
        if (m.flags & store::flag::deleted) del.push_back(m.uid);
    if (!del.empty()) {
      auto e = env_.store->expunge({sel_->info.id, del});
      if (!e) {
        out += tag + " " + no_for(e.status()) + "\r\n";
        return;
      }
    }
  }
  sel_.reset();
  state_ = State::authenticated;
  out += tag + " OK completed\r\n";
}

void Session::cmd_expunge(const std::string& tag, Parser& p, std::string& out, bool uid) {
  std::optional<SeqSet> set;
  if (uid && (!p.space() || !(set = p.sequence_set()))) {
    out += tag + " BAD UID EXPUNGE needs a UID set\r\n";
    return;
  }
  if (!p.at_end()) {
    out += tag + " BAD trailing characters\r\n";
    return;
  }
  if (sel_->read_only) {
    out += tag + " NO [READ-ONLY] mailbox is read-only\r\n";
    return;
  }
  std::vector<store::Uid> del;
  auto r = env_.store->message_list({sel_->info.id, 1, 0});
  if (!r) {
    out += tag + " " + no_for(r.status()) + "\r\n";
    return;
  }
  store::Uid max_uid = r->messages.empty() ? 0 : r->messages.back().uid;
  for (const auto& m : r->messages)
    if ((m.flags & store::flag::deleted) && (!set || set->contains(m.uid, max_uid))) del.push_back(m.uid);
  if (!del.empty()) {
    auto e = env_.store->expunge({sel_->info.id, del});
    if (!e) {
      out += tag + " " + no_for(e.status()) + "\r\n";
      return;
    }
  }
  sync(out, true);
  out += tag + " OK EXPUNGE completed\r\n";
}

}  // namespace mail::imap
