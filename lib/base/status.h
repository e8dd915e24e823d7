// Errors as values. Every failure that crosses a library boundary is a Status
// carrying one Code; the mapping from Code to a sysexits exit code, an SMTP
// reply or an IMAP response is decided once, here and in the protocol layers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace mail {

enum class Code : uint8_t {
  ok = 0,
  invalid,        // malformed input from the caller (bad address, bad name)
  not_found,      // no such domain/account/mailbox/message
  exists,         // already there (duplicate add)
  not_empty,      // refused because something still depends on it
  quota,          // over quota
  too_big,        // over a size limit
  denied,         // authentication or permission failure
  busy,           // resource held by someone else (store locked by another process)
  unavailable,    // service not reachable (no store daemon, connection lost)
  temporary,      // try again later (timeouts, transient I/O)
  corrupt,        // data failed an integrity check
  io,             // operating-system I/O error
  config,         // configuration error
  protocol,       // peer spoke the local protocol wrongly (bad frame, version)
  internal,       // a bug
};

std::string_view code_name(Code c);

// sysexits(3) code for a Code: the CLI's exit status.
int exit_code(Code c);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  bool is_ok() const { return code_ == Code::ok; }
  explicit operator bool() const { return is_ok(); }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "not_found: no such account: a@b" style text for logs.
  std::string to_string() const;

 private:
  Code code_ = Code::ok;
  std::string message_;
};

inline Status error(Code c, std::string message) { return Status(c, std::move(message)); }

// A value or the Status explaining why there is none.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                   // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}            // NOLINT: implicit by design
  bool is_ok() const { return v_.index() == 0; }
  explicit operator bool() const { return is_ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  Status status() const { return is_ok() ? Status() : std::get<1>(v_); }
  Code code() const { return is_ok() ? Code::ok : std::get<1>(v_).code(); }

 private:
  std::variant<T, Status> v_;
};

#define MAIL_TRY(expr)                    \
  do {                                    \
    ::mail::Status _st = (expr);          \
    if (!_st.is_ok()) return _st;         \
  } while (0)

#define MAIL_CONCAT_INNER(a, b) a##b
#define MAIL_CONCAT(a, b) MAIL_CONCAT_INNER(a, b)
#define MAIL_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.is_ok()) return tmp.status();           \
  lhs = std::move(tmp).value()
// MAIL_ASSIGN_OR_RETURN(auto x, f()); returns f()'s Status on failure.
#define MAIL_ASSIGN_OR_RETURN(lhs, expr) \
  MAIL_ASSIGN_OR_RETURN_IMPL(MAIL_CONCAT(_res_, __LINE__), lhs, expr)

}  // namespace mail
