#include "spam/tokenizer.h"

#include <algorithm>
#include <unordered_set>

#include "mime/summary.h"

namespace mail::spam {
namespace {

constexpr size_t kMinWord = 3;
constexpr size_t kMaxWord = 40;
constexpr size_t kMaxUrl = 2048;

char lower_ascii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = lower_ascii(c);
  return r;
}

bool istarts(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (lower_ascii(s[i]) != prefix[i]) return false;
  return true;
}

// Collects distinct tokens up to a limit.
class Tokens {
 public:
  Tokens(std::vector<std::string>& out, size_t limit, bool& truncated)
      : out_(out), limit_(limit), truncated_(truncated) {
    seen_.reserve(1024);
  }
  void add(std::string token) {
    if (out_.size() >= limit_) {
      truncated_ = true;
      return;
    }
    if (seen_.insert(token).second) out_.push_back(std::move(token));
  }
  // Words of `text`, each prefixed (e.g. "s:" for the subject).
  void words(std::string_view text, std::string_view prefix) {
    size_t i = 0, n = text.size();
    while (i < n) {
      while (i < n && !word_char(static_cast<unsigned char>(text[i]))) ++i;
      size_t b = i;
      while (i < n && word_char(static_cast<unsigned char>(text[i]))) ++i;
      word(text.substr(b, i - b), prefix);
    }
  }

 private:
  // Letters, digits, bytes of UTF-8 sequences and the few punctuation marks
  // that carry meaning inside a word ($5, don't, e-mail, 50%, wow!).
  static bool word_char(unsigned char c) {
    return c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '$' || c == '\'' || c == '-' || c == '!' || c == '%' || c == '.' || c == '_';
  }
  void word(std::string_view w, std::string_view prefix) {
    while (!w.empty() && (w.back() == '.' || w.back() == '-' || w.back() == '\'' || w.back() == '_'))
      w.remove_suffix(1);
    while (!w.empty() && (w.front() == '.' || w.front() == '-' || w.front() == '\'' || w.front() == '_'))
      w.remove_prefix(1);
    if (w.size() < kMinWord) return;
    std::string t(prefix);
    if (w.size() > kMaxWord) {
      // Long runs (base64 left in the text, hashes) say little one by one;
      // their kind and length do (as in SpamBayes).
      t += "skip:";
      t += lower_ascii(w[0]);
      t += std::to_string(w.size() / 10 * 10);
    } else {
      t.reserve(t.size() + w.size());
      for (char c : w) t += lower_ascii(c);
    }
    add(std::move(t));
  }

  std::vector<std::string>& out_;
  std::unordered_set<std::string> seen_;
  size_t limit_;
  bool& truncated_;
};

void add_host_tokens(Tokens& tokens, std::string_view host, std::string_view prefix) {
  if (host.empty()) return;
  // The host and each parent domain down to two labels: "a.b.example.com"
  // gives a.b.example.com, b.example.com and example.com.
  std::string_view h = host;
  tokens.add(std::string(prefix) + std::string(h));
  for (int i = 0; i < 4; ++i) {
    size_t dot = h.find('.');
    if (dot == std::string_view::npos) break;
    std::string_view rest = h.substr(dot + 1);
    if (rest.find('.') == std::string_view::npos) break;
    h = rest;
    tokens.add(std::string(prefix) + std::string(h));
  }
}

void find_text_links(std::string_view text, std::vector<Link>& links, size_t max_links) {
  size_t pos = 0;
  while (links.size() < max_links) {
    size_t best = std::string_view::npos;
    for (std::string_view scheme : {"http://", "https://", "www."}) {
      size_t p = pos;
      // Case-insensitive search for the scheme.
      while ((p = text.find_first_of(scheme[0] == 'h' ? "hH" : "wW", p)) != std::string_view::npos) {
        if (istarts(text.substr(p), scheme)) break;
        ++p;
      }
      best = std::min(best, p);
    }
    if (best == std::string_view::npos) return;
    size_t e = best;
    while (e < text.size() && e - best < kMaxUrl) {
      unsigned char c = static_cast<unsigned char>(text[e]);
      if (c <= ' ' || c == '"' || c == '<' || c == '>' || c == '\'' || c == ')' || c == ']') break;
      ++e;
    }
    std::string_view url = text.substr(best, e - best);
    while (!url.empty() && (url.back() == '.' || url.back() == ',')) url.remove_suffix(1);
    if (url.size() > 4) links.push_back({std::string(url), url_host(url)});
    pos = e;
  }
}

std::string_view strip_from_line(std::string_view raw) {
  // An mbox "From " line before the header is not part of the message.
  if (raw.substr(0, 5) == "From ") {
    size_t nl = raw.find('\n');
    return nl == std::string_view::npos ? std::string_view() : raw.substr(nl + 1);
  }
  return raw;
}

struct Walker {
  std::string_view raw;
  const Limits& limits;
  Analysis& a;
  Tokens& tokens;

  void header_tokens(std::string_view header) {
    for (const auto& v : mime::header_values(header, "Content-Type")) {
      std::string t = lower(v.substr(0, std::min<size_t>(v.size(), 200)));
      size_t semi = t.find(';');
      tokens.add("ct:" + std::string(t.substr(0, std::min(semi, t.size()))));
    }
    for (std::string_view name : {"Content-Disposition", "Content-Transfer-Encoding"}) {
      for (const auto& v : mime::header_values(header, name)) {
        std::string t = lower(v.substr(0, std::min<size_t>(v.size(), 200)));
        size_t semi = t.find(';');
        tokens.add(std::string(name.substr(8, 3)) + ":" + std::string(t.substr(0, std::min(semi, t.size()))));
        size_t fn = t.find("filename=");
        if (fn != std::string::npos) {
          std::string f = t.substr(fn + 9);
          while (!f.empty() && (f.back() == '"' || f.back() == ' ' || f.back() == ';')) f.pop_back();
          size_t dot = f.rfind('.');
          if (dot != std::string::npos && f.size() - dot < 8) tokens.add("ext:" + f.substr(dot + 1));
        }
      }
    }
  }

  void text(std::string_view body, bool html) {
    std::string_view t = body.substr(0, std::min(body.size(), limits.max_part_text));
    if (t.size() < body.size()) a.truncated = true;
    std::string plain;
    if (html) {
      plain = html_to_text(t, &a.links, limits.max_links);
      t = plain;
    }
    size_t room = limits.max_text > a.text.size() ? limits.max_text - a.text.size() : 0;
    if (room < t.size()) a.truncated = true;
    t = t.substr(0, std::min(room, t.size()));
    if (t.empty()) return;
    if (!html) find_text_links(t, a.links, limits.max_links);
    a.text.append(t);
    a.text.push_back('\n');
    tokens.words(t, "");
  }

  void part(const mime::Part& p, bool top) {
    if (!top) header_tokens(raw.substr(p.header_begin, p.body_begin - p.header_begin));
    if (p.is_multipart()) {
      bool has_plain = false, has_html = false;
      for (const auto& c : p.children) {
        has_plain |= c.type == "text" && c.subtype == "plain";
        has_html |= c.type == "text" && c.subtype == "html";
      }
      if (p.subtype == "alternative" && has_html && !has_plain) a.html_only = true;
      for (const auto& c : p.children) part(c, false);
      return;
    }
    if (p.is_message()) {
      for (const auto& c : p.children) {
        header_tokens(raw.substr(c.header_begin, c.body_begin - c.header_begin));
        part(c, true);
      }
      return;
    }
    if (!p.charset.empty()) tokens.add("cs:" + p.charset);
    std::string_view header = raw.substr(p.header_begin, p.body_begin - p.header_begin);
    bool attachment = false;
    for (const auto& d : mime::header_values(header, "Content-Disposition"))
      attachment |= istarts(d, "attachment");
    if (p.type == "text" && !attachment && (p.subtype == "plain" || p.subtype == "html")) {
      bool html = p.subtype == "html";
      (html ? a.html_parts : a.text_parts)++;
      std::string_view body = raw.substr(p.body_begin, p.body_end - p.body_begin);
      // Decode no more than we will look at (base64 shrinks, QP never grows).
      body = body.substr(0, std::min(body.size(), limits.max_part_text * 4 / 3 + 4));
      auto decoded = mime::decode_transfer(p.encoding, body);
      if (decoded) {
        text(*decoded, html);
      } else {
        tokens.add("cte:unknown");
        text(body, html);
      }
    } else {
      ++a.attachments;
      tokens.add("att:" + p.type + "/" + p.subtype);
    }
  }
};

}  // namespace

std::vector<std::string> Analysis::other_headers(std::string_view name) const {
  std::vector<std::string> out = mime::header_values(header, name);
  for (auto& v : out) v = mime::decode_header_text(v);
  return out;
}

std::string url_host(std::string_view url) {
  size_t s = url.find("://");
  std::string_view rest = s == std::string_view::npos ? url : url.substr(s + 3);
  size_t end = rest.find_first_of("/?#\\");
  rest = rest.substr(0, end);
  size_t at = rest.rfind('@');
  if (at != std::string_view::npos) rest = rest.substr(at + 1);
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    return close == std::string_view::npos ? std::string() : lower(rest.substr(0, close + 1));
  }
  size_t colon = rest.find(':');
  rest = rest.substr(0, colon);
  while (!rest.empty() && rest.back() == '.') rest.remove_suffix(1);
  if (rest.size() > 253) return {};
  return lower(rest);
}

std::string html_to_text(std::string_view html, std::vector<Link>* links, size_t max_links) {
  std::string out;
  out.reserve(html.size() / 2);
  size_t i = 0, n = html.size();
  auto attr_value = [&](std::string_view tag, std::string_view name) -> std::string_view {
    for (size_t p = 0; p + name.size() < tag.size(); ++p) {
      if (!istarts(tag.substr(p), name)) continue;
      size_t q = p + name.size();
      while (q < tag.size() && tag[q] == ' ') ++q;
      if (q >= tag.size() || tag[q] != '=') continue;
      ++q;
      while (q < tag.size() && tag[q] == ' ') ++q;
      if (q >= tag.size()) return {};
      char quote = tag[q];
      if (quote == '"' || quote == '\'') {
        size_t e = tag.find(quote, q + 1);
        return tag.substr(q + 1, (e == std::string_view::npos ? tag.size() : e) - q - 1);
      }
      size_t e = tag.find_first_of(" >", q);
      return tag.substr(q, (e == std::string_view::npos ? tag.size() : e) - q);
    }
    return {};
  };
  while (i < n) {
    char c = html[i];
    if (c == '<') {
      if (html.substr(i, 4) == "<!--") {
        size_t e = html.find("-->", i + 4);
        i = e == std::string_view::npos ? n : e + 3;
        continue;
      }
      size_t e = html.find('>', i + 1);
      if (e == std::string_view::npos) e = n;
      std::string_view tag = html.substr(i + 1, e - i - 1);
      size_t name_end = 0;
      while (name_end < tag.size() && (std::isalnum(static_cast<unsigned char>(tag[name_end])) || tag[name_end] == '/'))
        ++name_end;
      std::string name = lower(tag.substr(0, std::min<size_t>(name_end, 12)));
      i = std::min(n, e + 1);
      if (name == "script" || name == "style") {
        // Their content is not text a reader sees.
        std::string close = "</" + name;
        size_t p = i;
        while (p < n) {
          p = html.find("</", p);
          if (p == std::string_view::npos) break;
          if (istarts(html.substr(p), close)) break;
          p += 2;
        }
        if (p == std::string_view::npos) {
          i = n;
        } else {
          size_t ce = html.find('>', p);
          i = ce == std::string_view::npos ? n : ce + 1;
        }
        continue;
      }
      if (links && links->size() < max_links) {
        for (std::string_view attr : {"href", "src"}) {
          std::string_view v = attr_value(tag, attr);
          if (!v.empty() && v.size() < kMaxUrl && (istarts(v, "http") || istarts(v, "www.")))
            links->push_back({std::string(v), url_host(v)});
        }
      }
      out.push_back(' ');
      continue;
    }
    if (c == '&') {
      size_t semi = html.find(';', i);
      if (semi != std::string_view::npos && semi - i <= 8) {
        std::string ent = lower(html.substr(i + 1, semi - i - 1));
        const char* rep = nullptr;
        if (ent == "nbsp") rep = " ";
        else if (ent == "amp") rep = "&";
        else if (ent == "lt") rep = "<";
        else if (ent == "gt") rep = ">";
        else if (ent == "quot") rep = "\"";
        else if (ent == "apos") rep = "'";
        if (rep) {
          out += rep;
          i = semi + 1;
          continue;
        }
        if (!ent.empty() && ent[0] == '#') {
          unsigned long cp = ent.size() > 1 && ent[1] == 'x' ? std::strtoul(ent.c_str() + 2, nullptr, 16)
                                                             : std::strtoul(ent.c_str() + 1, nullptr, 10);
          if (cp > 0 && cp < 0x80) {
            out.push_back(static_cast<char>(cp));
          } else if (cp >= 0x80 && cp < 0x110000 && (cp < 0xd800 || cp > 0xdfff)) {
            // UTF-8 encode.
            if (cp < 0x800) {
              out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
            } else if (cp < 0x10000) {
              out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
              out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
            } else {
              out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
              out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
              out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
            }
            if (cp >= 0x80) out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
          }
          i = semi + 1;
          continue;
        }
      }
    }
    out.push_back(c);
    ++i;
  }
  return out;
}

Analysis analyze(std::string_view raw, const Limits& limits) {
  Analysis a;
  raw = strip_from_line(raw);
  if (raw.size() > limits.max_message) {
    raw = raw.substr(0, limits.max_message);
    a.truncated = true;
  }
  Tokens tokens(a.tokens, limits.max_tokens, a.truncated);
  mime::Summary summary = mime::parse(raw);
  std::string_view header = raw.substr(0, std::min<size_t>(summary.root.body_begin, raw.size()));

  auto one = [&](std::string_view name, std::string& out, bool* present) {
    auto v = mime::header_values(header, name);
    if (present) *present = !v.empty();
    if (!v.empty()) out = mime::decode_header_text(v.front().substr(0, std::min<size_t>(v.front().size(), 4096)));
  };
  a.header = std::string(header.substr(0, std::min<size_t>(header.size(), 256u << 10)));
  one("Subject", a.subject, &a.has_subject);
  one("From", a.from, &a.has_from);
  one("Reply-To", a.reply_to, nullptr);
  one("To", a.to, nullptr);
  one("Date", a.date, &a.has_date);
  one("Message-ID", a.message_id, &a.has_message_id);
  one("X-Mailer", a.mailer, nullptr);
  if (a.mailer.empty()) one("User-Agent", a.mailer, nullptr);
  a.date_time = summary.date;
  a.received = mime::header_values(header, "Received");
  if (a.received.size() > 64) a.received.resize(64);
  a.authentication_results = mime::header_values(header, "Authentication-Results");

  tokens.words(a.subject, "s:");
  tokens.words(a.from, "f:");
  tokens.words(a.reply_to, "r:");
  tokens.words(a.mailer, "xm:");
  tokens.words(a.to, "t:");
  if (!a.has_date) tokens.add("h:no-date");
  if (!a.has_message_id) tokens.add("h:no-message-id");
  if (!a.has_subject) tokens.add("h:no-subject");
  size_t at = a.message_id.rfind('@');
  if (at != std::string::npos) {
    std::string d = lower(a.message_id.substr(at + 1, 100));
    if (!d.empty() && d.back() == '>') d.pop_back();
    tokens.add("mid:" + d);
  }
  // Header fields whose mere presence says something (lists, bulk mailers).
  for (std::string_view name : {"List-Id", "List-Unsubscribe", "In-Reply-To", "References", "X-Priority",
                                "X-MSMail-Priority", "Organization", "MIME-Version", "Precedence",
                                "X-Mailing-List", "Errors-To", "X-Originating-IP"}) {
    auto v = mime::header_values(header, name);
    if (v.empty()) continue;
    std::string t = "h:" + lower(name);
    if (name == "Precedence" || name == "X-Priority") t += "=" + lower(v.front().substr(0, 20));
    tokens.add(std::move(t));
  }
  // The relays' address blocks (as in SpamBayes): /16 and /24 of each [ip].
  for (size_t r = 0; r < std::min<size_t>(a.received.size(), 4); ++r) {
    const std::string& rcv = a.received[r];
    size_t ob = rcv.find('[');
    if (ob == std::string::npos) continue;
    size_t cb = rcv.find(']', ob);
    if (cb == std::string::npos || cb - ob > 46) continue;
    std::string ip = rcv.substr(ob + 1, cb - ob - 1);
    size_t d1 = ip.find('.'), d2 = d1 == std::string::npos ? d1 : ip.find('.', d1 + 1);
    size_t d3 = d2 == std::string::npos ? d2 : ip.find('.', d2 + 1);
    if (d3 == std::string::npos) continue;
    tokens.add("ip:" + ip.substr(0, d2));
    tokens.add("ip:" + ip.substr(0, d3));
  }

  Walker walker{raw, limits, a, tokens};
  walker.header_tokens(header);
  walker.part(summary.root, true);
  if (a.html_only) tokens.add("mime:html-only");
  for (const auto& l : a.links) {
    add_host_tokens(tokens, l.host, "url:");
    if (istarts(l.url, "https")) tokens.add("proto:https");
    else if (istarts(l.url, "http")) tokens.add("proto:http");
  }
  return a;
}

}  // namespace mail::spam
