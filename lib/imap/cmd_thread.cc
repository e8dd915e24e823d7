// THREAD and UID THREAD (RFC 5256 2.2-2.3): ORDEREDSUBJECT and REFERENCES,
// from the stored summaries (Message-ID, References, In-Reply-To, subject, date).
#include <algorithm>
#include <unordered_map>

#include "imap/session.h"
#include "imap/util.h"
#include "mime/summary.h"
#include "mime/summary_fields.h"

namespace mail::imap {
namespace {

struct Msg {
  uint32_t num = 0;   // sequence number or UID, as answered
  size_t order = 0;   // mailbox order: breaks ties of equal dates
  int64_t date = 0;   // sent date (RFC 5256 2.2)
  std::string subject;  // base subject
  bool reply = false;   // the base subject removed a Re:/Fwd:
  std::string id;
  std::vector<std::string> refs;
};

// The msg-ids of a Message-ID/References/In-Reply-To value, brackets
// dropped; comments and phrases between them are skipped.
std::vector<std::string> msg_ids(std::string_view v) {
  std::vector<std::string> out;
  size_t i = 0;
  int depth = 0;
  while (i < v.size()) {
    char c = v[i];
    if (c == '\\') {
      i += 2;
    } else if (c == '(') {
      ++depth, ++i;
    } else if (c == ')' && depth) {
      --depth, ++i;
    } else if (c == '<' && !depth) {
      size_t e = v.find('>', i);
      if (e == std::string_view::npos) break;
      std::string id;
      for (char x : v.substr(i + 1, e - i - 1))
        if (x != ' ' && x != '\t' && x != '\r' && x != '\n') id += x;
      // A valid id-left "@" id-right; anything else is no msg-id.
      size_t at = id.find('@');
      if (at != std::string::npos && at > 0 && at + 1 < id.size()) out.push_back(std::move(id));
      i = e + 1;
    } else {
      ++i;
    }
  }
  return out;
}

// One container of the REFERENCES algorithm; msg < 0 is a dummy.
struct Node {
  int msg = -1;
  int parent = -1;
  std::vector<int> kids;
};

class References {
 public:
  explicit References(const std::vector<Msg>& msgs) : msgs_(msgs) {
    // A message and its parent's id each make a container at most once in
    // most mailboxes: no rehash while linking 100,000 of them.
    ids_.reserve(msgs.size() * 2);
    nodes_.reserve(msgs.size() * 2);
  }

  std::vector<int> run() {
    link_all();
    bound_depth();
    std::vector<int> roots;
    for (int i = 0; i < static_cast<int>(nodes_.size()); ++i)
      if (nodes_[i].parent < 0) roots.push_back(i);
    roots = prune(roots, true);
    for (int r : roots) nodes_[r].parent = -1;
    // (4) top level by date; a dummy by its first child
    for (int r : roots)
      if (nodes_[r].msg < 0) sort_siblings(nodes_[r].kids);
    sort_siblings(roots);
    roots = merge_subjects(roots);
    sort_tree(roots);
    return roots;
  }

  void render(int n, std::string& out) const {
    const Node& node = nodes_[n];
    if (node.msg >= 0) {
      out += std::to_string(msgs_[node.msg].num);
      if (node.kids.size() == 1) {
        out += ' ';
        render(node.kids[0], out);
        return;
      }
      if (!node.kids.empty()) out += ' ';
    }
    for (int k : node.kids) {
      out += '(';
      render(k, out);
      out += ')';
    }
  }

 private:
  int by_id(const std::string& id) {
    auto it = ids_.find(id);
    if (it != ids_.end()) return it->second;
    nodes_.emplace_back();
    ids_.emplace(id, static_cast<int>(nodes_.size() - 1));
    return static_cast<int>(nodes_.size() - 1);
  }
  // Whether `a` is `b` or one of its ancestors. A longer walk than kMaxWalk
  // counts as yes (no link): crafted References must not make THREAD quadratic.
  bool reaches(int a, int b) const {
    int steps = 0;
    for (int n = b; n >= 0; n = nodes_[n].parent)
      if (n == a || ++steps > kMaxWalk) return true;
    return false;
  }
  // Cuts the trees every kMaxDepth levels (the cut node becomes a root), so the
  // recursive steps below stay shallow however the References chain.
  void bound_depth() {
    std::vector<int> depth(nodes_.size(), -1);
    std::vector<int> path;
    for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) {
      int n = i;
      while (n >= 0 && depth[n] < 0) {
        path.push_back(n);
        n = nodes_[n].parent;
      }
      int d = n >= 0 ? depth[n] : -1;
      for (auto it = path.rbegin(); it != path.rend(); ++it) depth[*it] = ++d;
      path.clear();
    }
    for (int i = 0; i < static_cast<int>(nodes_.size()); ++i)
      if (depth[i] > 0 && depth[i] % kMaxDepth == 0) unlink(i);
  }
  static constexpr int kMaxWalk = 2000;
  static constexpr int kMaxDepth = 1000;
  void unlink(int c) {
    int p = nodes_[c].parent;
    if (p < 0) return;
    auto& k = nodes_[p].kids;
    k.erase(std::find(k.begin(), k.end(), c));
    nodes_[c].parent = -1;
  }
  void link(int p, int c) {
    unlink(c);
    nodes_[c].parent = p;
    nodes_[p].kids.push_back(c);
  }

  // (1) containers by Message-ID, linked by References.
  void link_all() {
    for (int m = 0; m < static_cast<int>(msgs_.size()); ++m) {
      const Msg& msg = msgs_[m];
      // (A) a missing or duplicate Message-ID gets a container of its own
      int node = -1;
      if (!msg.id.empty()) {
        node = by_id(msg.id);
        if (nodes_[node].msg >= 0) node = -1;
      }
      if (node < 0) {
        nodes_.emplace_back();
        node = static_cast<int>(nodes_.size() - 1);
      }
      nodes_[node].msg = m;
      // (B) each reference the parent of the next, unless already linked or a loop
      std::vector<int> refs;
      for (const auto& r : msg.refs) refs.push_back(by_id(r));
      for (size_t i = 1; i < refs.size(); ++i) {
        int p = refs[i - 1], c = refs[i];
        if (nodes_[c].parent < 0 && !reaches(c, p)) link(p, c);
      }
      // (C) the message's parent is its last reference: a parent guessed from
      // other messages' References goes, even when the new link would loop
      unlink(node);
      if (!refs.empty() && !reaches(node, refs.back())) link(refs.back(), node);
    }
  }

  // (3) empty dummies go; a dummy's children move up, but at the top only a single child.
  std::vector<int> prune(const std::vector<int>& kids, bool top) {
    std::vector<int> out;
    for (int c : kids) {
      nodes_[c].kids = prune(nodes_[c].kids, false);
      for (int g : nodes_[c].kids) nodes_[g].parent = c;
      if (nodes_[c].msg < 0 && (!top || nodes_[c].kids.size() <= 1)) {
        out.insert(out.end(), nodes_[c].kids.begin(), nodes_[c].kids.end());
        continue;
      }
      out.push_back(c);
    }
    return out;
  }

  // A node's sort position: its message's date, a dummy's first child's.
  const Msg& first_msg(int n) const {
    while (nodes_[n].msg < 0) n = nodes_[n].kids[0];
    return msgs_[nodes_[n].msg];
  }
  void sort_siblings(std::vector<int>& v) const {
    std::stable_sort(v.begin(), v.end(), [&](int a, int b) {
      const Msg& x = first_msg(a);
      const Msg& y = first_msg(b);
      return x.date != y.date ? x.date < y.date : x.order < y.order;
    });
  }
  // (6) children before parents, so a dummy sorts by its earliest child.
  void sort_tree(std::vector<int>& v) {
    for (int n : v) sort_tree(nodes_[n].kids);
    sort_siblings(v);
  }

  // (5) top-level threads with the same base subject come together.
  std::vector<int> merge_subjects(std::vector<int> roots) {
    auto subject_of = [&](int n) -> const std::string& { return first_msg(n).subject; };
    auto dummy = [&](int n) { return nodes_[n].msg < 0; };
    auto reply = [&](int n) { return !dummy(n) && msgs_[nodes_[n].msg].reply; };
    std::unordered_map<std::string, int> table;
    for (int r : roots) {
      const std::string& s = subject_of(r);
      if (s.empty()) continue;
      auto it = table.find(s);
      if (it == table.end()) table.emplace(s, r);
      else if (!dummy(it->second) && (dummy(r) || (reply(it->second) && !reply(r)))) it->second = r;
    }
    std::vector<bool> gone(nodes_.size() + roots.size(), false);
    for (size_t i = 0; i < roots.size(); ++i) {
      int r = roots[i];
      const std::string s = subject_of(r);
      if (s.empty()) continue;
      int& t = table[s];
      if (t == r) continue;
      if (dummy(t) && dummy(r)) {
        for (int k : nodes_[r].kids) nodes_[k].parent = t;
        nodes_[t].kids.insert(nodes_[t].kids.end(), nodes_[r].kids.begin(), nodes_[r].kids.end());
        nodes_[r].kids.clear();
      } else if (dummy(t) || (reply(r) && !reply(t))) {
        nodes_[t].kids.push_back(r);
        nodes_[r].parent = t;
      } else {
        nodes_.emplace_back();
        int d = static_cast<int>(nodes_.size() - 1);
        for (int k : {t, r}) {
          nodes_[d].kids.push_back(k);
          nodes_[k].parent = d;
        }
        // the dummy takes the table entry's place at the top
        std::replace(roots.begin(), roots.end(), t, d);
        gone.resize(nodes_.size(), false);
        t = d;
      }
      gone[r] = true;
    }
    std::vector<int> out;
    for (int r : roots)
      if (!gone[r]) out.push_back(r);
    return out;
  }

  const std::vector<Msg>& msgs_;
  std::vector<Node> nodes_;
  std::unordered_map<std::string, int> ids_;
};

std::string ordered_subject(std::vector<Msg>& msgs) {
  // By base subject, then sent date; each subject is one thread whose first
  // message is the parent of the others; threads by their first message's date.
  std::stable_sort(msgs.begin(), msgs.end(), [](const Msg& a, const Msg& b) {
    if (a.subject != b.subject) return a.subject < b.subject;
    return a.date != b.date ? a.date < b.date : a.order < b.order;
  });
  std::vector<std::pair<size_t, size_t>> threads;  // [begin, end) in msgs
  for (size_t i = 0; i < msgs.size();) {
    size_t j = i + 1;
    while (j < msgs.size() && msgs[j].subject == msgs[i].subject) ++j;
    threads.emplace_back(i, j);
    i = j;
  }
  std::stable_sort(threads.begin(), threads.end(), [&](const auto& a, const auto& b) {
    const Msg& x = msgs[a.first];
    const Msg& y = msgs[b.first];
    return x.date != y.date ? x.date < y.date : x.order < y.order;
  });
  std::string out;
  for (const auto& t : threads) {
    out += '(' + std::to_string(msgs[t.first].num);
    size_t kids = t.second - t.first - 1;
    if (kids) out += ' ';
    for (size_t k = t.first + 1; k < t.second; ++k)
      out += kids == 1 ? std::to_string(msgs[k].num) : '(' + std::to_string(msgs[k].num) + ')';
    out += ')';
  }
  return out;
}

}  // namespace

void Session::cmd_thread(const std::string& tag, Parser& p, std::string& out, bool uid) {
  auto bad = [&](std::string why) { out += tag + " BAD " + why + "\r\n"; };
  std::optional<std::string> alg;
  if (!p.space() || !(alg = p.atom())) return bad("THREAD needs an algorithm");
  std::string a = upper(*alg);
  if (a != "REFERENCES" && a != "ORDEREDSUBJECT") return bad("unknown threading algorithm " + *alg);
  auto found = charset_and_search_keys(tag, p, out, "THREAD");
  if (!found) return;

  std::vector<Msg> msgs(found->hits.size());
  size_t k = 0;
  bool refs = a == "REFERENCES";
  namespace f = mime::summary_field;  // what is read of each summary (the date always comes)
  uint32_t fields = f::subject | (refs ? f::message_id | f::references | f::in_reply_to : 0);
  for_each_summary(found->hits, [&](size_t i, mime::Summary& s) {
    const auto& m = sel_->msgs[i];
    Msg& msg = msgs[k];
    msg.num = uid ? m.uid : static_cast<uint32_t>(i + 1);
    msg.order = k++;
    msg.date = s.date ? s.date : m.internal_date;
    msg.subject = mime::base_subject(s.subject, &msg.reply);
    if (!refs) return;
    auto ids = msg_ids(s.message_id);
    if (!ids.empty()) msg.id = std::move(ids[0]);
    msg.refs = msg_ids(s.references);
    if (msg.refs.empty()) {  // no usable References: the first In-Reply-To id
      auto irt = msg_ids(s.in_reply_to);
      if (!irt.empty()) msg.refs.push_back(std::move(irt[0]));
    }
  }, fields);
  std::string line = "* THREAD ";
  if (refs) {
    References r(msgs);
    for (int root : r.run()) {
      line += '(';
      r.render(root, line);
      line += ')';
    }
  } else {
    line += ordered_subject(msgs);
  }
  if (line.back() == ' ') line.pop_back();
  out += line + "\r\n";
  sync(out, uid);
  out += tag + " OK THREAD completed\r\n";
}

}  // namespace mail::imap
