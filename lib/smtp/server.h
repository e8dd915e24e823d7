// The socket side of the SMTP server: one thread per connection (from
// service::serve) drives a Session over a service::Stream, with implicit TLS or
// STARTTLS, command and data timeouts, per-IP session limits and the
// early-talker check. Everything protocol is in session.h.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.h"
#include "service/tls.h"
#include "smtp/session.h"
#include "store/store.h"

namespace mail::smtp {

class Server {
 public:
  // `tls` may be null: no STARTTLS and no implicit-TLS listener then.
  Server(store::Store& store, const SmtpConfig& config, std::string hostname,
         std::shared_ptr<service::TlsContext> tls);

  // Filters run in the order added (see MessageFilter); add before serving.
  void add_filter(MessageFilter* filter) { filters_.push_back(filter); }

  // Serves one connection to its end and closes `fd`. `implicit_tls`: the
  // submissions port (RFC 8314), TLS from the first byte.
  void run(int fd, Mode mode, bool implicit_tls);

  // How long an MX client must stay quiet before the greeting (early talkers
  // are refused). 0 turns the check off.
  void set_pregreet_ms(int ms) { pregreet_ms_ = ms; }

 private:
  bool enter(const std::string& ip);
  void leave(const std::string& ip);

  store::Store& store_;
  SmtpConfig config_;
  std::string hostname_;
  std::shared_ptr<service::TlsContext> tls_;
  std::vector<MessageFilter*> filters_;
  AuthThrottle throttle_;
  int pregreet_ms_ = 100;
  std::mutex mu_;
  std::map<std::string, uint32_t> sessions_per_ip_;
};

}  // namespace mail::smtp
