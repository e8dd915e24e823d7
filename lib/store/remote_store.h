// The local protocol's client: a Store that forwards every call to mail-stored
// over its Unix socket (docs/PROTOCOL.md).
//
// One connection carries the calls of every thread: each call is a request
// frame with its own id, and the caller waits for the answer with that id, so
// any number of threads pipeline over it. Errors come back with the server's
// Code and message. A lost connection fails the calls in flight with
// Code::unavailable, and the next call connects again (re-subscribing).
#pragma once

#include <memory>
#include <string>

#include "store/store.h"

namespace mail::store {

class RemoteStore final : public Store {
 public:
  // Connects and says hello. Nothing listening is Code::unavailable; a server
  // that refuses us (version, too many clients) gives its Code and message.
  static Result<std::unique_ptr<RemoteStore>> connect(const std::string& socket_path,
                                                      std::string client_name);
  ~RemoteStore() override;

#define MAIL_DECLARE_OP(code, name, Req, Resp) Result<Resp> name(const Req& req) override;
  MAIL_STORE_OPS(MAIL_DECLARE_OP)
#undef MAIL_DECLARE_OP

  // Handlers run on one client thread, in the order the server sent the events.
  Result<std::unique_ptr<Subscription>> subscribe(AccountId account, ChangeHandler handler) override;
  // "remote(<the server's backend>)"
  std::string backend_name() const override;

  struct Shared;

 private:
  explicit RemoteStore(std::shared_ptr<Shared> shared);
  std::shared_ptr<Shared> s_;
};

}  // namespace mail::store
