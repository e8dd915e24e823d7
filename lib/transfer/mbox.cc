#include "transfer/mbox.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "base/ascii.h"

namespace mail::transfer {
namespace {

constexpr size_t kChunk = 64u << 10;  // read size; the buffer grows to the largest message

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

bool is_blank(std::string_view line) { return line == "\n" || line == "\r\n" || line.empty(); }


// The field name of a header line ("" for a continuation or a non-field).
std::string_view field_name(std::string_view line) {
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return {};
  std::string_view name = line.substr(0, colon);
  while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
  for (char c : name)
    if (static_cast<unsigned char>(c) <= 32 || static_cast<unsigned char>(c) >= 127) return {};
  return name;
}


std::string_view field_value(std::string_view field) {
  size_t colon = field.find(':');
  std::string_view v = field.substr(colon + 1);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r' || v.back() == ' ' || v.back() == '\t'))
    v.remove_suffix(1);
  return v;
}

// mboxrd: /^>+From / loses one '>'. mboxo: only /^>From /.
bool unescape_rd(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && line[i] == '>') ++i;
  return i > 0 && starts_with(line.substr(i), "From ");
}
bool unescape_o(std::string_view line) { return starts_with(line, ">From "); }

void append_keywords(std::vector<std::string>& out, std::string_view value) {
  size_t i = 0;
  while (i < value.size()) {
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t' || value[i] == ',' || value[i] == '\r' ||
                                value[i] == '\n'))
      ++i;
    size_t b = i;
    while (i < value.size() && !(value[i] == ' ' || value[i] == '\t' || value[i] == ',' || value[i] == '\r' ||
                                 value[i] == '\n'))
      ++i;
    if (i > b) out.emplace_back(value.substr(b, i - b));
  }
}

}  // namespace

std::string_view variant_name(MboxVariant v) {
  switch (v) {
    case MboxVariant::automatic: return "auto";
    case MboxVariant::mboxo: return "mboxo";
    case MboxVariant::mboxrd: return "mboxrd";
    case MboxVariant::mboxcl: return "mboxcl";
    case MboxVariant::mboxcl2: return "mboxcl2";
  }
  return "auto";
}

Result<MboxVariant> parse_variant(std::string_view name) {
  for (auto v : {MboxVariant::automatic, MboxVariant::mboxo, MboxVariant::mboxrd, MboxVariant::mboxcl,
                 MboxVariant::mboxcl2})
    if (variant_name(v) == name) return v;
  return error(Code::invalid, "unknown mbox variant: " + std::string(name));
}

ReadFn fd_reader(int fd) {
  return [fd](char* buf, size_t cap) -> Result<size_t> {
    for (;;) {
      ssize_t n = ::read(fd, buf, cap);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno == EINTR) continue;
      return error(Code::io, std::string("read: ") + std::strerror(errno));
    }
  };
}

ReadFn memory_reader(std::string_view data) {
  return [data, pos = size_t{0}](char* buf, size_t cap) mutable -> Result<size_t> {
    size_t n = std::min(cap, data.size() - pos);
    std::memcpy(buf, data.data() + pos, n);
    pos += n;
    return n;
  };
}

MboxReader::MboxReader(ReadFn read, std::string origin, Options options)
    : read_(std::move(read)), origin_(std::move(origin)), options_(options) {}

std::vector<std::string> MboxReader::take_warnings() { return std::exchange(warnings_, {}); }

void MboxReader::warn(uint64_t offset, const std::string& what) {
  warnings_.push_back(origin_ + ": offset " + std::to_string(offset) + ": " + what);
}

MboxVariant MboxReader::detected() const {
  if (seen_cl2_) return MboxVariant::mboxcl2;
  if (seen_cl_) return MboxVariant::mboxcl;
  if (seen_rd_) return MboxVariant::mboxrd;
  return MboxVariant::mboxo;
}

Status MboxReader::fill(size_t n) {
  // buf_ is the capacity; [0, end_) holds data, so growing never zero-fills
  // more than once.
  while (!eof_ && end_ - pos_ < n) {
    if (pos_ > 0 && pos_ >= end_ / 2) {
      std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
      end_ -= pos_;
      base_ += pos_;
      pos_ = 0;
    }
    size_t want = std::max(kChunk, n - (end_ - pos_));
    if (buf_.size() < end_ + want) buf_.resize(std::max(end_ + want, buf_.size() * 3 / 2));
    auto got = read_(buf_.data() + end_, buf_.size() - end_);
    if (!got.is_ok()) return got.status();
    end_ += *got;
    if (*got == 0) eof_ = true;
  }
  return Status::ok();
}

Result<std::string_view> MboxReader::peek_line() {
  size_t searched = 0;
  for (;;) {
    size_t avail = end_ - pos_;
    if (searched < avail) {
      const void* p = std::memchr(buf_.data() + pos_ + searched, '\n', avail - searched);
      if (p) {
        size_t len = static_cast<const char*>(p) - (buf_.data() + pos_) + 1;
        return std::string_view(buf_.data() + pos_, len);
      }
      searched = avail;
    }
    // A line longer than any message we keep is handed out in pieces.
    if (eof_ || avail > options_.max_message_size) return std::string_view(buf_.data() + pos_, avail);
    MAIL_TRY(fill(avail + kChunk));
    if (eof_ && end_ - pos_ == avail) return std::string_view(buf_.data() + pos_, avail);
  }
}

bool MboxReader::is_from_line(std::string_view line, bool after_blank) const {
  if (!starts_with(line, "From ")) return false;
  return after_blank || from_line_date(line).has_value();
}

Result<std::optional<SourceMessage>> MboxReader::next() {
  const MboxVariant variant = options_.variant;
  const size_t max = options_.max_message_size;
  for (;;) {
    // Blank lines between messages.
    std::string_view line;
    for (;;) {
      MAIL_ASSIGN_OR_RETURN(line, peek_line());
      if (line.empty()) return std::optional<SourceMessage>();
      if (!is_blank(line)) break;
      pos_ += line.size();
    }
    if (!starts_with(line, "From ")) {
      if (!started_) return error(Code::invalid, origin_ + ": not an mbox file (it does not start with a \"From \" line)");
      // Only reachable after a Content-Length-delimited message: skip to the next From_ line.
      uint64_t off = position();
      while (!line.empty() && !is_from_line(line, true)) {
        pos_ += line.size();
        MAIL_ASSIGN_OR_RETURN(line, peek_line());
      }
      warn(off, "text between messages skipped");
      ++skipped_;
      if (line.empty()) return std::optional<SourceMessage>();
    }
    started_ = true;

    SourceMessage m;
    m.origin = origin_;
    m.offset = position();
    m.internal_date = parse_from_line_date(line);
    pos_ += line.size();

    // ---- header ----
    std::string content;
    bool oversized = false;
    auto append = [&](std::string_view s) {
      if (oversized) return;
      if (content.size() + s.size() > max) {
        oversized = true;
        content.clear();
        content.shrink_to_fit();
        return;
      }
      content.append(s);
    };
    std::vector<std::pair<size_t, size_t>> fields;  // [begin, end) of each field in content
    bool header_ended = false;
    bool ended_by_from = false;
    for (;;) {
      MAIL_ASSIGN_OR_RETURN(line, peek_line());
      if (line.empty()) break;
      if (is_from_line(line, false)) {
        ended_by_from = true;
        break;
      }
      pos_ += line.size();
      bool blank = is_blank(line);
      if (!blank && (line[0] == ' ' || line[0] == '\t') && !fields.empty() && !oversized) {
        append(line);
        if (!oversized) fields.back().second = content.size();
        continue;
      }
      if (!blank && variant != MboxVariant::mboxcl2 && unescape_rd(line) &&
          (variant != MboxVariant::mboxo || unescape_o(line)))
        line.remove_prefix(1);
      size_t begin = content.size();
      append(line);
      if (blank) {
        header_ended = true;
        break;
      }
      if (!oversized) fields.emplace_back(begin, content.size());
    }

    // Metadata fields.
    std::optional<uint64_t> content_length;
    std::vector<std::pair<size_t, size_t>> strip;  // ranges of content to drop
    size_t cl_field = SIZE_MAX;
    if (!oversized) {
      for (size_t i = 0; i < fields.size(); ++i) {
        std::string_view f(content.data() + fields[i].first, fields[i].second - fields[i].first);
        std::string_view name = field_name(f);
        if (name.empty()) continue;
        std::string_view value = field_value(f);
        if (ascii_iequals(name, "Status")) {
          if (value.find('R') != std::string_view::npos) m.flags |= store::flag::seen;
        } else if (ascii_iequals(name, "X-Status")) {
          if (value.find('A') != std::string_view::npos) m.flags |= store::flag::answered;
          if (value.find('F') != std::string_view::npos) m.flags |= store::flag::flagged;
          if (value.find('T') != std::string_view::npos) m.flags |= store::flag::draft;
          if (value.find('D') != std::string_view::npos) m.flags |= store::flag::deleted;
        } else if (ascii_iequals(name, "X-Keywords")) {
          append_keywords(m.keywords, value);
        } else if (ascii_iequals(name, "X-UID") || ascii_iequals(name, "X-IMAP") || ascii_iequals(name, "X-IMAPbase")) {
        } else if (ascii_iequals(name, "Content-Length")) {
          bool digits = !value.empty() && value.size() < 19;
          uint64_t n = 0;
          for (char c : value) {
            if (c < '0' || c > '9') digits = false;
            else n = n * 10 + static_cast<uint64_t>(c - '0');
          }
          if (digits && !content_length) {
            content_length = n;
            cl_field = strip.size();
            strip.push_back(fields[i]);
          }
          continue;
        } else {
          continue;
        }
        strip.push_back(fields[i]);
      }
    }

    // ---- body ----
    bool cl_used = false;
    if (header_ended && content_length && variant != MboxVariant::mboxo && variant != MboxVariant::mboxrd &&
        *content_length <= max) {
      size_t n = static_cast<size_t>(*content_length);
      MAIL_TRY(fill(n + 16));
      size_t avail = end_ - pos_;
      bool fits = false;
      if (avail >= n) {
        std::string_view after(buf_.data() + pos_ + n, std::min<size_t>(avail - n, 16));
        if (after.empty()) fits = eof_;
        else if (starts_with(after, "From ")) fits = true;
        else if (starts_with(after, "\nFrom ") || starts_with(after, "\r\nFrom ")) fits = true;
        else if (after == "\n" || after == "\r\n") fits = eof_ && avail - n == after.size();
        if (fits && n > 0 && buf_[pos_ + n - 1] != '\n' && !starts_with(after, "\n") && !starts_with(after, "\r\n"))
          fits = false;  // the next From_ line must start a line
      }
      if (fits && variant == MboxVariant::automatic) {
        // Only when reading lines would split the body at a From_ line (mboxcl2);
        // otherwise lines and Content-Length agree, and lines are the safer
        // reading (a message's own Content-Length may match by chance).
        std::string_view body(buf_.data() + pos_, n);
        bool split = false, prev_blank = true;
        for (size_t p = 0; p < body.size() && !split;) {
          size_t nl = body.find('\n', p);
          size_t end = nl == std::string_view::npos ? body.size() : nl + 1;
          std::string_view l = body.substr(p, end - p);
          split = is_from_line(l, prev_blank);
          prev_blank = is_blank(l);
          p = end;
        }
        seen_cl_ = true;
        if (!split) fits = false;
      }
      if (fits) {
        std::string_view body(buf_.data() + pos_, n);
        bool bare_from = starts_with(body, "From ") || body.find("\nFrom ") != std::string_view::npos;
        bool unescape = variant == MboxVariant::mboxcl;
        if (bare_from) seen_cl2_ = true;
        seen_cl_ = true;
        if (!unescape) {
          append(body);
        } else {
          size_t p = 0;
          while (p < body.size()) {
            size_t nl = body.find('\n', p);
            size_t end = nl == std::string_view::npos ? body.size() : nl + 1;
            std::string_view l = body.substr(p, end - p);
            if (unescape_o(l)) l.remove_prefix(1);
            append(l);
            p = end;
          }
        }
        pos_ += n;
        cl_used = true;
      }
    }
    if (!cl_used && cl_field != SIZE_MAX) strip.erase(strip.begin() + static_cast<std::ptrdiff_t>(cl_field));
    if (!cl_used && header_ended) {
      bool prev_blank = true;
      bool strip_last = false;
      size_t last_line_size = 0;
      for (;;) {
        MAIL_ASSIGN_OR_RETURN(line, peek_line());
        if (line.empty()) {
          strip_last = prev_blank;
          break;
        }
        if (is_from_line(line, prev_blank)) {
          strip_last = prev_blank;
          ended_by_from = true;
          break;
        }
        pos_ += line.size();
        if (starts_with(line, ">>From ") || (starts_with(line, ">>") && unescape_rd(line))) seen_rd_ = true;
        if (variant != MboxVariant::mboxcl2 && unescape_rd(line) &&
            (variant != MboxVariant::mboxo && variant != MboxVariant::mboxcl ? true : unescape_o(line)))
          line.remove_prefix(1);
        append(line);
        prev_blank = is_blank(line);
        last_line_size = line.size();
      }
      // The blank line before the next From_ line (or the end) separates messages.
      if (strip_last && !oversized && last_line_size > 0 && content.size() >= last_line_size) {
        content.resize(content.size() - last_line_size);
      }
    } else if (!header_ended && !oversized) {
      m.warnings.push_back(ended_by_from ? "message ends inside its header" : "mbox ends inside a message header");
    }

    if (oversized) {
      warn(m.offset, "message larger than " + std::to_string(max) + " bytes skipped");
      ++skipped_;
      continue;
    }
    if (!content.empty() && content.back() != '\n' && !ended_by_from)
      m.warnings.push_back("mbox ends without a final newline (truncated?)");

    // Drop the metadata fields (ranges are ascending and disjoint).
    if (!strip.empty()) {
      std::sort(strip.begin(), strip.end());
      std::string kept;
      kept.reserve(content.size());
      size_t p = 0;
      for (auto [b, e] : strip) {
        kept.append(content, p, b - p);
        p = e;
      }
      kept.append(content, p, std::string::npos);
      content = std::move(kept);
    }
    m.content = std::move(content);
    return std::optional<SourceMessage>(std::move(m));
  }
}

// ---- writer ----------------------------------------------------------------------------

std::string mbox_entry(std::string_view stored, store::UnixTime internal_date, uint32_t flags,
                       const std::vector<std::string>& keywords, bool lf) {
  std::string converted;
  std::string_view content = stored;
  if (lf) {
    converted = to_lf(stored);
    content = converted;
  }
  std::string_view nl = lf ? "\n" : "\r\n";
  std::string out;
  out.reserve(content.size() + content.size() / 64 + 128);
  out += "From MAILER-DAEMON ";
  out += format_asctime(internal_date);
  out += nl;

  std::string_view header = header_block(content);
  bool has_blank = header.ends_with("\n\n") || header.ends_with("\n\r\n") || header == "\n" || header == "\r\n";
  std::string_view fields = header;
  std::string_view blank;
  if (has_blank) {
    size_t cut = header.ends_with("\r\n") ? 2 : 1;
    fields = header.substr(0, header.size() - cut);
    blank = header.substr(header.size() - cut);
  }
  std::string_view body = content.substr(header.size());

  auto put_lines = [&](std::string_view text) {
    size_t p = 0;
    while (p < text.size()) {
      size_t e = text.find('\n', p);
      e = e == std::string_view::npos ? text.size() : e + 1;
      std::string_view l = text.substr(p, e - p);
      if (unescape_rd(l) || starts_with(l, "From ")) out.push_back('>');
      out.append(l);
      p = e;
    }
  };
  put_lines(fields);
  if (!fields.empty() && fields.back() != '\n') out += nl;
  out += (flags & store::flag::seen) ? "Status: RO" : "Status: O";
  out += nl;
  std::string xs;
  if (flags & store::flag::answered) xs += 'A';
  if (flags & store::flag::flagged) xs += 'F';
  if (flags & store::flag::draft) xs += 'T';
  if (flags & store::flag::deleted) xs += 'D';
  if (!xs.empty()) {
    out += "X-Status: " + xs;
    out += nl;
  }
  if (!keywords.empty()) {
    out += "X-Keywords:";
    for (const auto& k : keywords) out += " " + k;
    out += nl;
  }
  out.append(blank);
  put_lines(body);
  if (!out.ends_with('\n')) out += nl;
  // The blank line separating messages; a message without a body (no blank
  // line after its header) would take it as its own, so it gets none.
  if (has_blank) out += nl;
  return out;
}

Status MboxWriter::write(std::string_view content, store::UnixTime internal_date, uint32_t flags,
                         const std::vector<std::string>& keywords) {
  return write_(mbox_entry(content, internal_date, flags, keywords, lf_));
}

}  // namespace mail::transfer
