#include "transfer/maildir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace mail::transfer {
namespace fs = std::filesystem;
namespace {

Status io_error(const std::string& what, const std::string& path) {
  return error(Code::io, what + " " + path + ": " + std::strerror(errno));
}

std::vector<std::string> read_keyword_table(const std::string& dir) {
  std::vector<std::string> table;
  std::ifstream in(dir + "/dovecot-keywords");
  std::string line;
  while (std::getline(in, line)) {
    size_t sp = line.find(' ');
    if (sp == std::string::npos) continue;
    std::string idx = line.substr(0, sp);
    if (idx.empty() || idx.size() > 2 || !std::all_of(idx.begin(), idx.end(), ::isdigit)) continue;
    size_t i = std::stoul(idx);
    if (i >= 26) continue;
    if (table.size() <= i) table.resize(i + 1);
    std::string name = line.substr(sp + 1);
    while (!name.empty() && (name.back() == '\r' || name.back() == ' ')) name.pop_back();
    table[i] = name;
  }
  return table;
}

// The file name without its ":2,..." part.
std::string base_name(std::string_view name) {
  size_t colon = name.find(':');
  return std::string(colon == std::string_view::npos ? name : name.substr(0, colon));
}

// uid per base name from dovecot-uidlist (versions 1 and 3).
std::map<std::string, uint64_t> read_uidlist(const std::string& dir) {
  std::map<std::string, uint64_t> uids;
  std::ifstream in(dir + "/dovecot-uidlist");
  std::string line;
  if (!std::getline(in, line)) return uids;  // header
  while (std::getline(in, line)) {
    size_t sp = line.find(' ');
    if (sp == std::string::npos || sp == 0) continue;
    std::string uid = line.substr(0, sp);
    if (!std::all_of(uid.begin(), uid.end(), ::isdigit) || uid.size() > 10) continue;
    std::string name;
    size_t colon = line.find(" :", sp);
    if (colon != std::string::npos) name = line.substr(colon + 2);  // v3: "uid ext... :name"
    else name = line.substr(sp + 1);                                 // v1: "uid name"
    uids[base_name(name)] = std::stoull(uid);
  }
  return uids;
}

std::string sanitized_hostname() {
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "localhost");
  std::string h;
  for (char* p = host; *p; ++p) {
    if (*p == '/') h += "\\057";
    else if (*p == ':') h += "\\072";
    else h += *p;
  }
  return h;
}

Status mkdirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return error(Code::io, "cannot create " + dir + ": " + ec.message());
  for (const char* sub : {"cur", "new", "tmp"}) {
    fs::create_directories(dir + "/" + sub, ec);
    if (ec) return error(Code::io, "cannot create " + dir + "/" + sub + ": " + ec.message());
  }
  return Status::ok();
}

}  // namespace

bool is_maildir(const std::string& dir) {
  std::error_code ec;
  return fs::is_directory(dir + "/cur", ec) || fs::is_directory(dir + "/new", ec);
}

Result<std::vector<MaildirFolder>> maildir_folders(const std::string& root) {
  std::vector<MaildirFolder> out;
  if (!is_maildir(root)) return error(Code::invalid, root + ": not a maildir (no cur/ or new/)");
  out.push_back({root, ""});
  std::error_code ec;
  std::vector<MaildirFolder> subs;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    std::string name = e.path().filename().string();
    if (name.size() < 2 || name[0] != '.' || name == "..") continue;
    if (!e.is_directory(ec) || !is_maildir(e.path().string())) continue;
    // ".A.B" -> "A/B"; each component modified UTF-7.
    std::string mailbox;
    size_t p = 1;
    bool bad = false;
    while (p <= name.size()) {
      size_t dot = name.find('.', p);
      if (dot == std::string::npos) dot = name.size();
      std::string comp = name.substr(p, dot - p);
      if (comp.empty()) bad = true;
      if (!mailbox.empty()) mailbox += '/';
      mailbox += mutf7_decode(comp);
      p = dot + 1;
    }
    if (bad) continue;
    subs.push_back({e.path().string(), mailbox});
  }
  if (ec) return error(Code::io, "cannot list " + root + ": " + ec.message());
  std::sort(subs.begin(), subs.end(), [](const auto& a, const auto& b) { return a.mailbox < b.mailbox; });
  out.insert(out.end(), subs.begin(), subs.end());
  return out;
}

void parse_maildir_info(std::string_view file_name, const std::vector<std::string>& table, uint32_t& flags,
                        std::vector<std::string>& keywords) {
  flags = 0;
  size_t info = file_name.rfind(":2,");
  if (info == std::string_view::npos) return;
  for (char c : file_name.substr(info + 3)) {
    switch (c) {
      case 'D': flags |= store::flag::draft; break;
      case 'F': flags |= store::flag::flagged; break;
      case 'P': keywords.push_back("$Forwarded"); break;
      case 'R': flags |= store::flag::answered; break;
      case 'S': flags |= store::flag::seen; break;
      case 'T': flags |= store::flag::deleted; break;
      default:
        if (c >= 'a' && c <= 'z') {
          size_t i = static_cast<size_t>(c - 'a');
          if (i < table.size() && !table[i].empty()) keywords.push_back(table[i]);
        }
    }
  }
}

Result<MaildirReader> MaildirReader::open(const std::string& folder, size_t max_message_size) {
  MaildirReader r;
  r.path_ = folder;
  r.max_ = max_message_size;
  r.keyword_table_ = read_keyword_table(folder);
  std::error_code ec;
  for (const char* sub : {"cur", "new"}) {
    std::string dir = folder + "/" + sub;
    if (!fs::is_directory(dir, ec)) continue;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      std::string name = e.path().filename().string();
      if (name.empty() || name[0] == '.') continue;
      if (!e.is_regular_file(ec)) continue;
      r.files_.push_back(std::string(sub) + "/" + name);
    }
    if (ec) return error(Code::io, "cannot list " + dir + ": " + ec.message());
  }
  auto uids = read_uidlist(folder);
  auto key = [&](const std::string& f) {
    std::string base = base_name(f.substr(4));
    auto it = uids.find(base);
    return std::make_pair(it == uids.end() ? UINT64_MAX : it->second, base);
  };
  std::sort(r.files_.begin(), r.files_.end(), [&](const auto& a, const auto& b) { return key(a) < key(b); });
  return r;
}

Result<std::optional<SourceMessage>> MaildirReader::next() {
  while (next_ < files_.size()) {
    std::string rel = files_[next_++];
    std::string path = path_ + "/" + rel;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) continue;  // moved or expunged meanwhile
      warnings_.push_back(path + ": cannot open: " + std::strerror(errno));
      ++skipped_;
      continue;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
      ::close(fd);
      return io_error("cannot stat", path);
    }
    if (static_cast<uint64_t>(st.st_size) > max_) {
      ::close(fd);
      warnings_.push_back(path + ": message larger than " + std::to_string(max_) + " bytes skipped");
      ++skipped_;
      bytes_read_ += static_cast<uint64_t>(st.st_size);
      continue;
    }
    SourceMessage m;
    m.origin = path;
    m.content.resize(static_cast<size_t>(st.st_size));
    size_t got = 0;
    while (got < m.content.size()) {
      ssize_t n = ::read(fd, m.content.data() + got, m.content.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        Status s = io_error("cannot read", path);
        ::close(fd);
        return s;
      }
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    ::close(fd);
    m.content.resize(got);
    bytes_read_ += got;
    m.internal_date = st.st_mtime;
    parse_maildir_info(rel.substr(4), keyword_table_, m.flags, m.keywords);
    return std::optional<SourceMessage>(std::move(m));
  }
  return std::optional<SourceMessage>();
}

// ---- writer ---------------------------------------------------------------------------------

std::string maildir_folder_path(const std::string& root, const std::string& mailbox) {
  if (mailbox.empty() || mailbox == "INBOX") return root;
  std::string dir = root + "/";
  size_t p = 0;
  while (p <= mailbox.size()) {
    size_t slash = mailbox.find('/', p);
    if (slash == std::string::npos) slash = mailbox.size();
    std::string comp = mutf7_encode(mailbox.substr(p, slash - p));
    dir += '.';
    for (char c : comp) {
      if (c == '.') dir += "&AC4-";
      else dir += c;
    }
    p = slash + 1;
  }
  return dir;
}

Result<MaildirWriter> MaildirWriter::open(const std::string& root, const std::string& mailbox) {
  MaildirWriter w;
  if (!mailbox.empty() && mailbox != "INBOX") MAIL_TRY(mkdirs(root));
  w.dir_ = maildir_folder_path(root, mailbox);
  MAIL_TRY(mkdirs(w.dir_));
  if (w.dir_ != root) {
    // Maildir++ marks folders with an empty maildirfolder file.
    int fd = ::open((w.dir_ + "/maildirfolder").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) ::close(fd);
  }
  w.keyword_table_ = read_keyword_table(w.dir_);
  return w;
}

Status MaildirWriter::write(std::string_view stored, store::UnixTime internal_date, uint32_t flags,
                            const std::vector<std::string>& keywords, bool lf) {
  static const std::string host = sanitized_hostname();
  std::string converted;
  std::string_view content = stored;
  if (lf) {
    converted = to_lf(stored);
    content = converted;
  }
  // Flag letters in ASCII order: system flags, then keyword letters.
  std::string letters;
  if (flags & store::flag::draft) letters += 'D';
  if (flags & store::flag::flagged) letters += 'F';
  std::string kw_letters;
  for (const auto& k : keywords) {
    if (k == "$Forwarded") {
      letters += 'P';
      continue;
    }
    auto it = std::find(keyword_table_.begin(), keyword_table_.end(), k);
    size_t i = static_cast<size_t>(it - keyword_table_.begin());
    if (it == keyword_table_.end()) {
      if (keyword_table_.size() >= 26) {
        ++dropped_keywords_;
        continue;
      }
      keyword_table_.push_back(k);
    }
    kw_letters += static_cast<char>('a' + i);
  }
  if (flags & store::flag::answered) letters += 'R';
  if (flags & store::flag::seen) letters += 'S';
  if (flags & store::flag::deleted) letters += 'T';
  std::sort(letters.begin(), letters.end());
  std::sort(kw_letters.begin(), kw_letters.end());
  letters += kw_letters;

  std::string base = std::to_string(internal_date) + ".M" + std::to_string(++counter_) + "P" +
                     std::to_string(::getpid()) + "." + host + ",S=" + std::to_string(content.size()) +
                     ",W=" + std::to_string(stored.size());
  std::string tmp = dir_ + "/tmp/" + base;
  std::string final_path = dir_ + "/cur/" + base + ":2," + letters;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return io_error("cannot create", tmp);
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = io_error("cannot write", tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return s;
    }
    done += static_cast<size_t>(n);
  }
  struct timespec times[2];
  times[0].tv_sec = times[1].tv_sec = static_cast<time_t>(internal_date);
  times[0].tv_nsec = times[1].tv_nsec = 0;
  ::futimens(fd, times);
  if (::close(fd) != 0) return io_error("cannot write", tmp);
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) return io_error("cannot rename to", final_path);
  return Status::ok();
}

Status MaildirWriter::finish() {
  if (keyword_table_.empty()) return Status::ok();
  std::string text;
  for (size_t i = 0; i < keyword_table_.size(); ++i) text += std::to_string(i) + " " + keyword_table_[i] + "\n";
  std::string path = dir_ + "/dovecot-keywords";
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return error(Code::io, "cannot write " + path);
  return Status::ok();
}

}  // namespace mail::transfer
