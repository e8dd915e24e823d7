// MIME structure parsing. Offsets come from our own boundary scan (GMime does
// not expose per-part byte positions); GMime does the decoding: RFC 2047 words,
// dates and transfer encodings.
#include "mime/summary.h"

#include <gmime/gmime.h>

#include <algorithm>
#include <cstring>
#include <mutex>

namespace mail::mime {
namespace {

constexpr int kMaxDepth = 24;
constexpr int kMaxParts = 2000;

void init_gmime() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

std::string lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return r;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (tolower(static_cast<unsigned char>(a[i])) != tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

// Removes CR and LF (header unfolding).
std::string unfold(std::string_view v) {
  std::string r;
  r.reserve(v.size());
  for (char c : v)
    if (c != '\r' && c != '\n') r.push_back(c);
  return std::string(trim(r));
}

struct Field {
  std::string_view name;
  std::string_view value;  // raw, possibly folded
};

std::vector<Field> split_fields(std::string_view header) {
  std::vector<Field> out;
  size_t pos = 0;
  while (pos < header.size()) {
    size_t start = pos;
    // A field runs until a line that does not start with whitespace.
    size_t end = pos;
    while (true) {
      size_t nl = header.find('\n', end);
      if (nl == std::string_view::npos) {
        end = header.size();
        break;
      }
      end = nl + 1;
      if (end >= header.size() || (header[end] != ' ' && header[end] != '\t')) break;
    }
    pos = end;
    std::string_view line = header.substr(start, end - start);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = trim(line.substr(0, colon));
    if (name.empty() || name.find(' ') != std::string_view::npos) continue;
    out.push_back({name, line.substr(colon + 1)});
  }
  return out;
}

const Field* first_field(const std::vector<Field>& fields, std::string_view name) {
  for (const auto& f : fields)
    if (iequals(f.name, name)) return &f;
  return nullptr;
}

// ---- Content-Type style values: token; name=value; ... ---------------------
struct Param {
  std::string name;
  std::string value;
};
struct HeaderValue {
  std::string token;
  std::vector<Param> params;
};

HeaderValue parse_params(std::string_view v) {
  HeaderValue hv;
  std::string s = unfold(v);
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < s.size()) {
      if (s[i] == ' ' || s[i] == '\t') {
        ++i;
      } else if (s[i] == '(') {  // comment
        int depth = 0;
        while (i < s.size()) {
          if (s[i] == '\\') ++i;
          else if (s[i] == '(') ++depth;
          else if (s[i] == ')' && --depth == 0) { ++i; break; }
          ++i;
        }
      } else {
        break;
      }
    }
  };
  auto token = [&] {
    std::string t;
    while (i < s.size() && s[i] != ';' && s[i] != '=' && s[i] != ' ' && s[i] != '\t' && s[i] != '(' &&
           s[i] != '"')
      t.push_back(s[i++]);
    return t;
  };
  skip_ws();
  hv.token = token();
  while (i < s.size()) {
    skip_ws();
    if (i < s.size() && s[i] != ';') {  // junk: skip to the next ';'
      while (i < s.size() && s[i] != ';') ++i;
    }
    if (i >= s.size()) break;
    ++i;  // ';'
    skip_ws();
    std::string name = token();
    skip_ws();
    if (i >= s.size() || s[i] != '=') continue;
    ++i;
    skip_ws();
    std::string value;
    if (i < s.size() && s[i] == '"') {
      ++i;
      while (i < s.size() && s[i] != '"') {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        value.push_back(s[i++]);
      }
      if (i < s.size()) ++i;
    } else {
      value = token();
    }
    if (!name.empty()) hv.params.push_back({name, value});
  }
  return hv;
}

// ---- IMAP rendering ------------------------------------------------------------
void append_params(std::string& out, const std::vector<Param>& params) {
  if (params.empty()) {
    out += "NIL";
    return;
  }
  out += '(';
  bool first = true;
  for (const auto& p : params) {
    if (!first) out += ' ';
    first = false;
    append_imap_string(out, p.name);
    out += ' ';
    append_imap_string(out, p.value);
  }
  out += ')';
}

void append_field_nstring(std::string& out, const std::vector<Field>& fields, std::string_view name) {
  const Field* f = first_field(fields, name);
  if (!f) {
    out += "NIL";
    return;
  }
  append_imap_string(out, unfold(f->value));
}

// ---- addresses (RFC 5322 address-list, lenient) ----------------------------------
struct Addr {
  std::string name, route, mailbox, host;
  bool group_start = false, group_end = false;
};

struct AddrTok {
  char special = 0;  // 0: word
  std::string text;
  bool quoted = false;
  std::string comment;  // a comment right after this token
};

// Unlike strchr, never matches '\0' (a NUL in a header is just a byte).
bool is_one_of(char c, std::string_view set) { return set.find(c) != std::string_view::npos; }

std::vector<AddrTok> addr_tokens(std::string_view s) {
  std::vector<AddrTok> out;
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      ++i;
    } else if (c == '(') {
      int depth = 0;
      size_t start = i + 1;
      while (i < s.size()) {
        if (s[i] == '\\') ++i;
        else if (s[i] == '(') ++depth;
        else if (s[i] == ')' && --depth == 0) { ++i; break; }
        ++i;
      }
      size_t end = std::min(i, s.size());
      if (end > start && s[end - 1] == ')') --end;  // closed
      if (!out.empty() && out.back().special == 0) out.back().comment = std::string(s.substr(start, end - start));
    } else if (c == '"') {
      AddrTok t;
      t.quoted = true;
      ++i;
      while (i < s.size() && s[i] != '"') {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        if (s[i] != '\r' && s[i] != '\n') t.text.push_back(s[i]);
        ++i;
      }
      ++i;
      out.push_back(std::move(t));
    } else if (is_one_of(c, "<>@,;:[]")) {
      if (c == '[') {  // domain literal kept whole
        AddrTok t;
        size_t e = s.find(']', i);
        if (e == std::string_view::npos) e = s.size() - 1;
        t.text = std::string(s.substr(i, e - i + 1));
        out.push_back(std::move(t));
        i = e + 1;
        continue;
      }
      out.push_back({c, {}, false});
      ++i;
    } else {
      AddrTok t;
      while (i < s.size() && !is_one_of(s[i], " \t\r\n()\"<>@,;:[]")) t.text.push_back(s[i++]);
      if (t.text.empty()) {  // a stray ')': skip it (taking nothing would loop for ever)
        ++i;
        continue;
      }
      out.push_back(std::move(t));
    }
  }
  return out;
}

std::vector<Addr> parse_addresses(std::string_view value) {
  std::vector<Addr> out;
  auto toks = addr_tokens(value);
  size_t i = 0;
  bool in_group = false;
  while (i < toks.size() && out.size() < 1000) {
    if (toks[i].special == ',') { ++i; continue; }
    if (toks[i].special == ';') {
      if (in_group) {
        Addr a;
        a.group_end = true;
        out.push_back(a);
        in_group = false;
      }
      ++i;
      continue;
    }
    // Collect words up to a special.
    std::string phrase;
    std::vector<const AddrTok*> words;
    while (i < toks.size() && toks[i].special == 0) {
      words.push_back(&toks[i]);
      ++i;
    }
    char sp = i < toks.size() ? toks[i].special : 0;
    auto join = [&](bool spaced) {
      std::string r;
      for (size_t k = 0; k < words.size(); ++k) {
        if (spaced && k) r += ' ';
        r += words[k]->text;
      }
      return r;
    };
    if (sp == ':' && !in_group) {
      Addr a;
      a.group_start = true;
      a.mailbox = join(true);
      out.push_back(a);
      in_group = true;
      ++i;
      continue;
    }
    Addr a;
    if (sp == '<') {
      a.name = join(true);
      ++i;
      // optional route: @a,@b:
      std::string route;
      while (i < toks.size() && toks[i].special == '@') {
        size_t k = i;
        std::string r;
        while (k < toks.size() && toks[k].special != ':' && toks[k].special != '>') {
          r += toks[k].special ? std::string(1, toks[k].special) : toks[k].text;
          ++k;
        }
        if (k < toks.size() && toks[k].special == ':') {
          route = r;
          i = k + 1;
        }
        break;
      }
      a.route = route;
      std::string local;
      while (i < toks.size() && toks[i].special == 0) local += toks[i++].text;
      a.mailbox = local;
      if (i < toks.size() && toks[i].special == '@') {
        ++i;
        std::string host;
        while (i < toks.size() && toks[i].special == 0) host += toks[i++].text;
        a.host = host;
      }
      while (i < toks.size() && toks[i].special != '>' && toks[i].special != ',') ++i;
      if (i < toks.size() && toks[i].special == '>') ++i;
    } else {
      a.mailbox = join(false);
      if (sp == '@') {
        ++i;
        std::string host;
        while (i < toks.size() && toks[i].special == 0) host += toks[i++].text;
        a.host = host;
        // "user@host (Real Name)": the legacy comment is the display name.
        if (!host.empty() && !toks[i - 1].comment.empty()) a.name = toks[i - 1].comment;
      }
      // skip anything up to the next separator
      while (i < toks.size() && toks[i].special != ',' && toks[i].special != ';') ++i;
      if (a.mailbox.empty() && a.host.empty()) continue;
    }
    out.push_back(std::move(a));
  }
  if (in_group) {
    Addr a;
    a.group_end = true;
    out.push_back(a);
  }
  return out;
}

void append_addresses(std::string& out, const std::vector<Field>& fields, std::string_view name,
                      std::string_view fallback = {}) {
  const Field* f = first_field(fields, name);
  if (!f && !fallback.empty()) f = first_field(fields, fallback);
  if (!f) {
    out += "NIL";
    return;
  }
  auto addrs = parse_addresses(unfold(f->value));
  // An empty Sender/Reply-To defaults to From like a missing one.
  if (addrs.empty() && !fallback.empty()) {
    if (const Field* fb = first_field(fields, fallback)) addrs = parse_addresses(unfold(fb->value));
  }
  if (addrs.empty()) {
    out += "NIL";
    return;
  }
  out += '(';
  for (const auto& a : addrs) {
    if (a.group_start) {
      out += "(NIL NIL ";
      append_imap_string(out, a.mailbox);
      out += " NIL)";
    } else if (a.group_end) {
      out += "(NIL NIL NIL NIL)";
    } else {
      out += '(';
      append_imap_nstring(out, a.name, !a.name.empty());
      out += ' ';
      append_imap_nstring(out, a.route, !a.route.empty());
      out += ' ';
      append_imap_nstring(out, a.mailbox, true);
      out += ' ';
      append_imap_nstring(out, a.host, !a.host.empty());
      out += ')';
    }
  }
  out += ')';
}

std::string render_envelope(const std::vector<Field>& fields) {
  std::string out = "(";
  append_field_nstring(out, fields, "Date");
  out += ' ';
  append_field_nstring(out, fields, "Subject");
  out += ' ';
  append_addresses(out, fields, "From");
  out += ' ';
  append_addresses(out, fields, "Sender", "From");
  out += ' ';
  append_addresses(out, fields, "Reply-To", "From");
  out += ' ';
  append_addresses(out, fields, "To");
  out += ' ';
  append_addresses(out, fields, "Cc");
  out += ' ';
  append_addresses(out, fields, "Bcc");
  out += ' ';
  append_field_nstring(out, fields, "In-Reply-To");
  out += ' ';
  append_field_nstring(out, fields, "Message-ID");
  out += ')';
  return out;
}

// ---- the part tree -----------------------------------------------------------------
struct Parsed {
  Part part;
  std::string bodystructure;
  std::string body;
  std::string envelope;
};

struct Ctx {
  std::string_view raw;
  int parts = 0;
};

// Returns body_begin for a header starting at `begin`.
size_t header_end(std::string_view raw, size_t begin, size_t end) {
  size_t pos = begin;
  while (pos < end) {
    size_t nl = raw.find('\n', pos);
    if (nl == std::string_view::npos || nl >= end) return end;
    size_t len = nl - pos;
    if (len == 0 || (len == 1 && raw[pos] == '\r')) return nl + 1;
    pos = nl + 1;
  }
  return end;
}

uint32_t count_lines(std::string_view s) {
  uint32_t n = static_cast<uint32_t>(std::count(s.begin(), s.end(), '\n'));
  if (!s.empty() && s.back() != '\n') ++n;
  return n;
}

Parsed parse_entity(Ctx& ctx, size_t begin, size_t end, bool digest_child, int depth);

void append_ext_fields(std::string& out, const std::vector<Field>& fields) {
  // disposition, language, location
  out += ' ';
  if (const Field* d = first_field(fields, "Content-Disposition")) {
    HeaderValue hv = parse_params(d->value);
    if (hv.token.empty()) {
      out += "NIL";
    } else {
      out += '(';
      append_imap_string(out, hv.token);
      out += ' ';
      append_params(out, hv.params);
      out += ')';
    }
  } else {
    out += "NIL";
  }
  out += ' ';
  if (const Field* l = first_field(fields, "Content-Language")) {
    std::string v = unfold(l->value);
    std::vector<std::string> langs;
    size_t p = 0;
    while (p <= v.size()) {
      size_t c = v.find(',', p);
      if (c == std::string::npos) c = v.size();
      std::string t(trim(std::string_view(v).substr(p, c - p)));
      if (!t.empty()) langs.push_back(t);
      p = c + 1;
    }
    if (langs.empty()) {
      out += "NIL";
    } else if (langs.size() == 1) {
      append_imap_string(out, langs[0]);
    } else {
      out += '(';
      for (size_t k = 0; k < langs.size(); ++k) {
        if (k) out += ' ';
        append_imap_string(out, langs[k]);
      }
      out += ')';
    }
  } else {
    out += "NIL";
  }
  out += ' ';
  append_field_nstring(out, fields, "Content-Location");
}

Parsed parse_entity(Ctx& ctx, size_t begin, size_t end, bool digest_child, int depth) {
  Parsed r;
  ++ctx.parts;
  std::string_view raw = ctx.raw;
  Part& p = r.part;
  p.header_begin = begin;
  p.body_begin = header_end(raw, begin, end);
  p.body_end = end;
  auto fields = split_fields(raw.substr(begin, p.body_begin - begin));

  HeaderValue ct;
  const Field* ctf = first_field(fields, "Content-Type");
  if (ctf) ct = parse_params(ctf->value);
  size_t slash = ct.token.find('/');
  if (ctf && slash != std::string::npos && slash > 0 && slash + 1 < ct.token.size()) {
    p.type = lower(ct.token.substr(0, slash));
    p.subtype = lower(ct.token.substr(slash + 1));
  } else {
    ct.params.clear();
    if (digest_child) {
      p.type = "message";
      p.subtype = "rfc822";
    } else {
      p.type = "text";
      p.subtype = "plain";
      ct.params.push_back({"charset", "us-ascii"});
    }
  }
  for (const auto& prm : ct.params)
    if (iequals(prm.name, "charset")) p.charset = lower(prm.value);
  if (const Field* cte = first_field(fields, "Content-Transfer-Encoding"))
    p.encoding = lower(trim(unfold(cte->value)));
  if (ctx.parts == 1 && depth == 0) r.envelope = render_envelope(fields);

  std::string_view body = raw.substr(p.body_begin, p.body_end - p.body_begin);
  std::string boundary;
  for (const auto& prm : ct.params)
    if (iequals(prm.name, "boundary")) boundary = prm.value;

  if (p.is_multipart() && !boundary.empty() && depth < kMaxDepth) {
    std::string delim = "--" + boundary;
    size_t pos = p.body_begin;
    size_t part_start = std::string::npos;
    std::vector<std::pair<size_t, size_t>> ranges;
    bool closed = false;
    while (pos < end) {
      size_t nl = raw.find('\n', pos);
      size_t line_end = (nl == std::string_view::npos || nl >= end) ? end : nl;
      std::string_view line = raw.substr(pos, line_end - pos);
      if (line.size() >= delim.size() && line.compare(0, delim.size(), delim) == 0) {
        std::string_view rest = line.substr(delim.size());
        bool close = rest.size() >= 2 && rest[0] == '-' && rest[1] == '-';
        if (close || trim(rest).empty()) {
          if (part_start != std::string::npos) {
            size_t pe = pos;
            if (pe > part_start && raw[pe - 1] == '\n') --pe;
            if (pe > part_start && raw[pe - 1] == '\r') --pe;
            ranges.emplace_back(part_start, pe);
          }
          part_start = line_end < end ? line_end + 1 : end;
          if (close) {
            closed = true;
            break;
          }
        }
      }
      pos = line_end + 1;
    }
    if (!closed && part_start != std::string::npos) ranges.emplace_back(part_start, end);
    std::string bs = "(", bd = "(";
    for (auto [b, e] : ranges) {
      if (ctx.parts >= kMaxParts) break;
      Parsed c = parse_entity(ctx, b, std::max(b, e), p.subtype == "digest", depth + 1);
      bs += c.bodystructure;
      bd += c.body;
      p.children.push_back(std::move(c.part));
    }
    if (p.children.empty()) {
      bs += "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)";
      bd += "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)";
    }
    bs += ' ';
    append_imap_string(bs, p.subtype);
    bd += ' ';
    append_imap_string(bd, p.subtype);
    bd += ')';
    bs += ' ';
    append_params(bs, ct.params);
    append_ext_fields(bs, fields);
    bs += ')';
    r.bodystructure = std::move(bs);
    r.body = std::move(bd);
    return r;
  }
  if (p.is_multipart()) {  // no boundary: treat as opaque
    p.type = "text";
    p.subtype = "plain";
    ct.params = {{"charset", "us-ascii"}};
  }

  // A single part.
  std::string common = "(";
  append_imap_string(common, p.type);
  common += ' ';
  append_imap_string(common, p.subtype);
  common += ' ';
  append_params(common, ct.params);
  common += ' ';
  append_field_nstring(common, fields, "Content-ID");
  common += ' ';
  append_field_nstring(common, fields, "Content-Description");
  common += ' ';
  append_imap_string(common, p.encoding.empty() ? "7bit" : p.encoding);
  common += ' ';
  common += std::to_string(body.size());
  std::string bs = common, bd = common;
  if (p.is_message() && depth < kMaxDepth && ctx.parts < kMaxParts) {
    Ctx sub{raw, ctx.parts};
    Parsed c = parse_entity(sub, p.body_begin, p.body_end, false, depth + 1);
    ctx.parts = sub.parts;
    auto inner_fields = split_fields(raw.substr(p.body_begin, c.part.body_begin - p.body_begin));
    std::string env = render_envelope(inner_fields);
    p.lines = count_lines(body);
    bs += ' ' + env + ' ' + c.bodystructure + ' ' + std::to_string(p.lines);
    bd += ' ' + env + ' ' + c.body + ' ' + std::to_string(p.lines);
    p.children.push_back(std::move(c.part));
  } else if (p.type == "text") {
    p.lines = count_lines(body);
    bs += ' ' + std::to_string(p.lines);
    bd += ' ' + std::to_string(p.lines);
  }
  bd += ')';
  bs += ' ';
  append_field_nstring(bs, fields, "Content-MD5");
  append_ext_fields(bs, fields);
  bs += ')';
  r.bodystructure = std::move(bs);
  r.body = std::move(bd);
  return r;
}

// ---- sort keys ------------------------------------------------------------------------
std::string first_mailbox(const std::vector<Field>& fields, std::string_view name, std::string* display) {
  const Field* f = first_field(fields, name);
  if (!f) return {};
  return sort_address(unfold(f->value), display);
}

// ---- preview -----------------------------------------------------------------------------
const Part* preview_part(const Part& p, int depth) {
  if (depth > kMaxDepth) return nullptr;
  if (p.type == "text" && (p.subtype == "plain" || p.subtype == "html")) return &p;
  if (p.is_multipart()) {
    const Part* html = nullptr;
    for (const auto& c : p.children) {
      const Part* f = preview_part(c, depth + 1);
      if (f && f->subtype == "plain") return f;
      if (f && !html) html = f;
    }
    return html;
  }
  return nullptr;
}

std::string make_preview(std::string_view raw, const Part& root) {
  const Part* p = preview_part(root, 0);
  if (!p) return {};
  std::string_view body = raw.substr(p->body_begin, std::min<uint64_t>(p->body_end - p->body_begin, 16384));
  auto dec = decode_transfer(p->encoding, body);
  std::string text = dec ? *dec : std::string(body);
  if (!p->charset.empty() && p->charset != "utf-8" && p->charset != "us-ascii") {
    gsize written = 0;
    gchar* conv = g_convert(text.data(), static_cast<gssize>(text.size()), "UTF-8", p->charset.c_str(),
                            nullptr, &written, nullptr);
    if (conv) {
      text.assign(conv, written);
      g_free(conv);
    }
  }
  if (p->subtype == "html") {
    std::string t;
    bool in_tag = false;
    for (char c : text) {
      if (c == '<') in_tag = true;
      else if (c == '>') { in_tag = false; t += ' '; }
      else if (!in_tag) t += c;
    }
    text = std::move(t);
  }
  if (!g_utf8_validate(text.data(), static_cast<gssize>(text.size()), nullptr)) {
    gchar* v = g_utf8_make_valid(text.data(), static_cast<gssize>(text.size()));
    text = v;
    g_free(v);
  }
  std::string out;
  bool sp = false;
  size_t chars = 0;
  for (size_t i = 0; i < text.size() && chars < 200;) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c < 0x20) {
      sp = true;
      ++i;
      continue;
    }
    if (sp && !out.empty()) {
      out += ' ';
      ++chars;
      if (chars >= 200) break;
    }
    sp = false;
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
    out.append(text, i, len);
    i += len;
    ++chars;
  }
  return out;
}

}  // namespace

void append_imap_string(std::string& out, std::string_view s) {
  bool quotable = s.size() < 1024;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u == '\r' || u == '\n' || u == 0 || u >= 0x80) {
      quotable = false;
      break;
    }
  }
  if (quotable) {
    out += '"';
    for (char c : s) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  } else {
    out += '{';
    out += std::to_string(s.size());
    out += "}\r\n";
    out.append(s);
  }
}

void append_imap_nstring(std::string& out, std::string_view s, bool present) {
  if (!present) {
    out += "NIL";
    return;
  }
  append_imap_string(out, s);
}

std::string decode_header_text(std::string_view value) {
  init_gmime();
  std::string in = unfold(value);
  char* d = g_mime_utils_header_decode_text(nullptr, in.c_str());
  if (!d) return in;
  std::string r(d);
  g_free(d);
  return r;
}

namespace {
// Quoted-printable per RFC 2045 6.7: whitespace at a line's end is transport
// padding and dropped, "=" ending a line (optionally followed by such
// whitespace) is a soft break; GMime keeps the padding.
std::string decode_qp(std::string_view in) {
  auto hex = [](char ch) -> int {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    return -1;
  };
  std::string out;
  out.reserve(in.size());
  size_t pos = 0;
  while (pos < in.size()) {
    size_t nl = in.find('\n', pos);
    bool has_nl = nl != std::string_view::npos;
    std::string_view line = in.substr(pos, (has_nl ? nl : in.size()) - pos);
    pos = has_nl ? nl + 1 : in.size();
    size_t end = line.find_last_not_of(" \t\r");
    line = end == std::string_view::npos ? std::string_view() : line.substr(0, end + 1);
    bool soft = !line.empty() && line.back() == '=';
    if (soft) line.remove_suffix(1);
    for (size_t i = 0; i < line.size(); ++i) {
      int a, b;
      if (line[i] == '=' && i + 2 < line.size() && (a = hex(line[i + 1])) >= 0 &&
          (b = hex(line[i + 2])) >= 0) {
        out += static_cast<char>(a * 16 + b);
        i += 2;
      } else {
        out += line[i];
      }
    }
    if (has_nl && !soft) out += "\r\n";
  }
  return out;
}
}  // namespace

Result<std::string> decode_transfer(std::string_view encoding, std::string_view data) {
  init_gmime();
  std::string enc = lower(trim(encoding));
  GMimeContentEncoding e;
  if (enc == "base64") {
    e = GMIME_CONTENT_ENCODING_BASE64;
  } else if (enc == "quoted-printable") {
    return decode_qp(data);
  } else if (enc.empty() || enc == "7bit" || enc == "8bit" || enc == "binary") {
    return std::string(data);
  } else {
    return error(Code::invalid, "unknown transfer encoding " + enc);
  }
  GMimeEncoding state;
  g_mime_encoding_init_decode(&state, e);
  std::string out(g_mime_encoding_outlen(&state, data.size()) + 16, '\0');
  size_t n = g_mime_encoding_step(&state, data.data(), data.size(), out.data());
  n += g_mime_encoding_flush(&state, "", 0, out.data() + n);
  out.resize(n);
  return out;
}

std::vector<std::string> header_values(std::string_view header, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& f : split_fields(header))
    if (iequals(f.name, name)) out.push_back(unfold(f.value));
  return out;
}

std::string header_fields(std::string_view header, const std::vector<std::string>& names, bool exclude) {
  std::string out;
  size_t pos = 0;
  while (pos < header.size()) {
    size_t start = pos, end = pos;
    while (true) {
      size_t nl = header.find('\n', end);
      if (nl == std::string_view::npos) {
        end = header.size();
        break;
      }
      end = nl + 1;
      if (end >= header.size() || (header[end] != ' ' && header[end] != '\t')) break;
    }
    pos = end;
    std::string_view line = header.substr(start, end - start);
    if (trim(line).empty()) continue;  // the blank line
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = trim(line.substr(0, colon));
    bool listed = std::any_of(names.begin(), names.end(), [&](const std::string& n) { return iequals(n, name); });
    if (listed != exclude) {
      out.append(line);
      if (out.back() != '\n') out += "\r\n";
    }
  }
  out += "\r\n";
  return out;
}

Summary parse(std::string_view raw) {
  init_gmime();
  Summary s;
  s.size = raw.size();
  Ctx ctx{raw, 0};
  Parsed p = parse_entity(ctx, 0, raw.size(), false, 0);
  s.root = std::move(p.part);
  s.bodystructure = std::move(p.bodystructure);
  s.body = std::move(p.body);
  s.envelope = std::move(p.envelope);
  s.header = std::string(raw.substr(0, std::min<size_t>(s.root.body_begin, raw.size())));
  auto fields = split_fields(raw.substr(0, s.root.body_begin));
  if (const Field* d = first_field(fields, "Date")) {
    std::string v = unfold(d->value);
    if (GDateTime* dt = g_mime_utils_header_decode_date(v.c_str())) {
      s.date = g_date_time_to_unix(dt);
      s.date_offset = g_date_time_get_utc_offset(dt) / G_TIME_SPAN_SECOND;
      g_date_time_unref(dt);
    }
  }
  s.sort_from = first_mailbox(fields, "From", &s.display_from);
  s.sort_to = first_mailbox(fields, "To", &s.display_to);
  s.sort_cc = first_mailbox(fields, "Cc", nullptr);
  if (const Field* f = first_field(fields, "Subject")) {
    s.subject = decode_header_text(f->value);
    s.subject_base = base_subject(s.subject);
  }
  if (const Field* f = first_field(fields, "Message-ID")) s.message_id = unfold(f->value);
  if (const Field* f = first_field(fields, "In-Reply-To")) s.in_reply_to = unfold(f->value);
  if (const Field* f = first_field(fields, "References")) s.references = unfold(f->value);
  s.preview = make_preview(raw, s.root);
  return s;
}

std::string summarize(std::string_view raw) { return encode(parse(raw)); }

Result<Summary> decode_summary(std::string_view encoded) {
  Summary s;
  if (encoded.empty() || !decode(encoded, s)) return error(Code::corrupt, "bad message summary");
  return s;
}

std::string sort_address(std::string_view value, std::string* display) {
  auto addrs = parse_addresses(value);
  for (const auto& a : addrs) {
    if (a.group_end) continue;
    // A group's first "address" is its name, as in the ENVELOPE (group syntax).
    if (display) {
      std::string d = a.name.empty() ? "" : decode_header_text(a.name);
      if (a.group_start) d = decode_header_text(a.mailbox);
      *display = d.empty() ? lower(a.mailbox + (a.host.empty() ? "" : "@" + a.host)) : d;
    }
    return lower(a.mailbox);
  }
  if (display) display->clear();
  return {};
}

namespace {
// RFC 5256 2.1 grammar pieces; each returns the length matched at the start of `s`, 0 if none.
bool istarts(std::string_view s, std::string_view p) { return s.size() >= p.size() && iequals(s.substr(0, p.size()), p); }
size_t skip_wsp(std::string_view s, size_t i) {
  while (i < s.size() && s[i] == ' ') ++i;
  return i;
}
// subj-blob = "[" *BLOBCHAR "]" *WSP
size_t subj_blob(std::string_view s, size_t i) {
  if (i >= s.size() || s[i] != '[') return 0;
  size_t j = i + 1;
  while (j < s.size() && s[j] != '[' && s[j] != ']') ++j;
  if (j >= s.size() || s[j] != ']') return 0;
  return skip_wsp(s, j + 1) - i;
}
// subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
size_t subj_refwd(std::string_view s, size_t i) {
  for (std::string_view w : {"re", "fwd", "fw"}) {
    if (!istarts(s.substr(i), w)) continue;
    size_t j = skip_wsp(s, i + w.size());
    j += subj_blob(s, j);
    if (j < s.size() && s[j] == ':') return j + 1 - i;
  }
  return 0;
}
}  // namespace

std::string base_subject(std::string_view subject, bool* reply_or_forward) {
  bool refwd = false;
  // (1) runs of white space (tabs, folding) become one space
  std::string s;
  bool sp = false;
  for (char c : subject) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      sp = true;
      continue;
    }
    if (sp) s += ' ';
    sp = false;
    s += c;
  }
  if (sp) s += ' ';
  while (true) {
    // (2) trailers: "(fwd)" and white space
    while (!s.empty()) {
      if (s.back() == ' ') {
        s.pop_back();
      } else if (s.size() >= 5 && iequals(std::string_view(s).substr(s.size() - 5), "(fwd)")) {
        s.erase(s.size() - 5);
        refwd = true;
      } else {
        break;
      }
    }
    // (3) leaders (white space, *subj-blob subj-refwd) and (4) a blob before a
    // non-empty rest, (5) until neither applies
    for (bool changed = true; changed;) {
      changed = false;
      if (!s.empty() && s[0] == ' ') {
        s.erase(0, skip_wsp(s, 0));
        changed = true;
        continue;
      }
      size_t i = 0;
      while (size_t b = subj_blob(s, i)) i += b;
      if (size_t r = subj_refwd(s, i)) {
        s.erase(0, i + r);
        refwd = changed = true;
        continue;
      }
      if (size_t b = subj_blob(s, 0); b && b < s.size()) {
        s.erase(0, b);
        changed = true;
      }
    }
    // (6) "[fwd:" subject "]": unwrap and start again at (2)
    if (istarts(s, "[fwd:") && s.back() == ']') {
      s = s.substr(5, s.size() - 6);
      refwd = true;
      continue;
    }
    break;
  }
  if (reply_or_forward) *reply_or_forward = refwd;
  for (auto& c : s) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
  return s;
}

const Part* find_part(const Part& root, const std::vector<uint32_t>& path) {
  const Part* p = &root;
  for (size_t i = 0; i < path.size(); ++i) {
    uint32_t n = path[i];
    if (n == 0) return nullptr;
    // A message/rfc822 part's numbering continues inside the embedded message;
    // part 1 of a single-part message (even a message/rfc822 one) is its body.
    if (i > 0 && p->is_message() && !p->children.empty()) p = &p->children[0];
    if (p->is_multipart()) {
      if (n > p->children.size()) return nullptr;
      p = &p->children[n - 1];
    } else {
      if (n != 1) return nullptr;  // part 1 of a single-part message is its body
    }
  }
  return p;
}

}  // namespace mail::mime
