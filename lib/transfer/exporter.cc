#include "transfer/exporter.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "transfer/maildir.h"
#include "transfer/mbox.h"

namespace mail::transfer {
namespace fs = std::filesystem;
namespace {

// A file written in large blocks; created beside its final name and renamed
// into place by commit() (or written straight to stdout).
class OutFile {
 public:
  static Result<OutFile> create(const std::string& path) {
    OutFile f;
    if (path == "-") {
      f.fd_ = 1;
      return f;
    }
    f.path_ = path;
    f.tmp_ = path + ".tmp." + std::to_string(::getpid());
    f.fd_ = ::open(f.tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (f.fd_ < 0) return error(Code::io, "cannot create " + f.tmp_ + ": " + std::strerror(errno));
    return f;
  }
  OutFile() = default;
  OutFile(OutFile&& o) noexcept { *this = std::move(o); }
  OutFile& operator=(OutFile&& o) noexcept {
    std::swap(fd_, o.fd_);
    std::swap(path_, o.path_);
    std::swap(tmp_, o.tmp_);
    std::swap(buf_, o.buf_);
    return *this;
  }
  ~OutFile() {
    if (fd_ > 1) {
      ::close(fd_);
      ::unlink(tmp_.c_str());
    }
  }

  Status write(std::string_view data) {
    buf_.append(data);
    if (buf_.size() >= (1u << 20)) return flush();
    return Status::ok();
  }
  Status commit() {
    MAIL_TRY(flush());
    if (fd_ == 1) return Status::ok();
    if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
      fd_ = -1;
      return error(Code::io, "cannot write " + tmp_ + ": " + std::strerror(errno));
    }
    fd_ = -1;
    if (::rename(tmp_.c_str(), path_.c_str()) != 0)
      return error(Code::io, "cannot rename to " + path_ + ": " + std::strerror(errno));
    return Status::ok();
  }

 private:
  Status flush() {
    size_t done = 0;
    while (done < buf_.size()) {
      ssize_t n = ::write(fd_, buf_.data() + done, buf_.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return error(Code::io, "cannot write " + (path_.empty() ? "stdout" : tmp_) + ": " + std::strerror(errno));
      done += static_cast<size_t>(n);
    }
    buf_.clear();
    return Status::ok();
  }

  int fd_ = -1;
  std::string path_, tmp_, buf_;
};

}  // namespace

Result<ExportStats> export_mail(store::Store& store, const store::AccountInfo& account, const ExportOptions& options) {
  MAIL_ASSIGN_OR_RETURN(auto listed, store.mailbox_list({account.id}));
  std::vector<store::MailboxInfo> boxes;
  if (options.mailboxes.empty()) {
    boxes = listed.mailboxes;
  } else {
    for (const auto& want : options.mailboxes) {
      std::string name = canonical_mailbox_name(want);
      auto it = std::find_if(listed.mailboxes.begin(), listed.mailboxes.end(),
                             [&](const auto& m) { return m.name == name; });
      if (it == listed.mailboxes.end()) return error(Code::not_found, "no such mailbox: " + want);
      boxes.push_back(*it);
    }
  }
  std::sort(boxes.begin(), boxes.end(), [](const auto& a, const auto& b) {
    if ((a.name == "INBOX") != (b.name == "INBOX")) return a.name == "INBOX";
    return a.name < b.name;
  });
  uint64_t total = 0;
  for (const auto& b : boxes) total += b.bytes;

  bool single_file = false;
  if (options.kind == ExportKind::mbox) {
    std::error_code ec;
    single_file = options.path == "-" ||
                  (boxes.size() == 1 && !fs::is_directory(options.path, ec) && !options.path.ends_with('/'));
    if (options.path == "-" && boxes.size() != 1)
      return error(Code::invalid, "mbox to stdout takes exactly one mailbox (--mailbox)");
  }

  ExportStats stats;
  uint64_t done = 0;
  for (const auto& box : boxes) {
    MailboxCounts counts;
    counts.mailbox = box.name;
    MAIL_ASSIGN_OR_RETURN(auto list, store.message_list({box.id}));

    std::optional<OutFile> out;
    std::optional<MaildirWriter> maildir;
    if (options.kind == ExportKind::mbox) {
      std::string file = options.path;
      if (!single_file) {
        file = options.path + "/" + box.name + ".mbox";
        std::error_code ec;
        fs::create_directories(fs::path(file).parent_path(), ec);
        if (ec) return error(Code::io, "cannot create " + fs::path(file).parent_path().string() + ": " + ec.message());
      }
      MAIL_ASSIGN_OR_RETURN(auto f, OutFile::create(file));
      out.emplace(std::move(f));
    } else {
      MAIL_ASSIGN_OR_RETURN(auto w, MaildirWriter::open(options.path, box.name));
      maildir.emplace(std::move(w));
    }

    for (const auto& e : list.messages) {
      auto content = store.content_get({e.content});
      if (!content) {
        if (content.code() == Code::not_found) continue;  // expunged meanwhile
        return error(content.code(), box.name + " uid " + std::to_string(e.uid) + ": " + content.status().message());
      }
      if (out) {
        MAIL_TRY(out->write(mbox_entry(content->bytes, e.internal_date, e.flags, e.keywords, !options.crlf)));
      } else {
        MAIL_TRY(maildir->write(content->bytes, e.internal_date, e.flags, e.keywords, !options.crlf));
      }
      ++counts.imported;
      counts.bytes += content->bytes.size();
      done += content->bytes.size();
      if (options.progress) options.progress(done, total);
    }
    if (out) MAIL_TRY(out->commit());
    if (maildir) {
      MAIL_TRY(maildir->finish());
      stats.dropped_keywords += maildir->dropped_keywords();
    }
    stats.messages += counts.imported;
    stats.bytes += counts.bytes;
    stats.mailboxes.push_back(std::move(counts));
  }
  return stats;
}

}  // namespace mail::transfer
