#include "auth/canon.h"

namespace mail::auth {

namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t'; }
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

bool to_crlf(std::string_view in, std::string& out) {
  bool bare = false;
  for (size_t i = in.find('\n'); i != std::string_view::npos; i = in.find('\n', i + 1)) {
    if (i == 0 || in[i - 1] != '\r') {
      bare = true;
      break;
    }
  }
  if (!bare) return false;
  out.clear();
  out.reserve(in.size() + in.size() / 32);
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r')) out.push_back('\r');
    out.push_back(in[i]);
  }
  return true;
}

MailMessage::MailMessage(std::string_view message) {
  text_ = to_crlf(message, storage_) ? std::string_view(storage_) : message;
  std::string_view t = text_;
  size_t pos = 0;
  while (pos < t.size()) {
    size_t eol = t.find("\r\n", pos);
    size_t line_end = eol == std::string_view::npos ? t.size() : eol + 2;
    if (eol == pos) {  // the empty line: the body follows
      body_ = t.substr(line_end);
      return;
    }
    if (is_wsp(t[pos]) && !headers_.empty()) {
      // A continuation line: extend the previous field.
      auto& prev = headers_.back();
      prev.raw = t.substr(prev.raw.data() - t.data(), line_end - static_cast<size_t>(prev.raw.data() - t.data()));
    } else {
      std::string_view line = t.substr(pos, line_end - pos);
      size_t colon = line.find(':');
      std::string_view name = colon == std::string_view::npos ? std::string_view() : line.substr(0, colon);
      while (!name.empty() && is_wsp(name.back())) name.remove_suffix(1);
      headers_.push_back({name, line});
    }
    pos = line_end;
  }
  body_ = t.substr(t.size());
}

bool header_name_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

void canon_header(const HeaderField& field, Canon canon, std::string& out) {
  if (canon == Canon::simple) {
    out.append(field.raw);
    if (field.raw.size() < 2 || field.raw.substr(field.raw.size() - 2) != "\r\n") out.append("\r\n");
    return;
  }
  for (char c : field.name) out.push_back(lower(c));
  out.push_back(':');
  std::string_view raw = field.raw;
  size_t colon = raw.find(':');
  std::string_view value = colon == std::string_view::npos ? std::string_view() : raw.substr(colon + 1);
  // Unfold, turn whitespace runs into one space, drop it at both ends.
  bool pending_space = false, started = false;
  for (char c : value) {
    if (c == '\r' || c == '\n') continue;
    if (is_wsp(c)) {
      pending_space = started;
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    started = true;
    out.push_back(c);
  }
  out.append("\r\n");
}

void canon_body(std::string_view body, Canon canon, std::string& out) {
  size_t start = out.size();
  if (canon == Canon::simple) {
    size_t end = body.size();
    while (end >= 2 && body.substr(end - 2, 2) == "\r\n") end -= 2;
    out.append(body.substr(0, end));
    out.append("\r\n");
    return;
  }
  out.reserve(out.size() + body.size());
  size_t pos = 0, n = body.size();
  size_t last_nonempty_end = start;  // out.size() after the last non-empty line
  while (pos < n) {
    size_t eol = body.find("\r\n", pos);
    size_t line_end = eol == std::string_view::npos ? n : eol;
    bool pending_space = false;
    size_t line_start = out.size();
    for (size_t i = pos; i < line_end; ++i) {
      char c = body[i];
      if (is_wsp(c)) {
        pending_space = true;
        continue;
      }
      if (pending_space) out.push_back(' ');
      pending_space = false;
      out.push_back(c);
    }
    out.append("\r\n");
    if (out.size() - line_start > 2) last_nonempty_end = out.size();
    pos = eol == std::string_view::npos ? n : eol + 2;
  }
  out.resize(last_nonempty_end);
}

}  // namespace mail::auth
