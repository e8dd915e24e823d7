// connect_store: how daemons reach the store (through mail-stored only).
#include <sys/stat.h>

#include "base/log.h"
#include "store/remote_store.h"
#include "store/store.h"

namespace mail::store {

Result<std::unique_ptr<Store>> connect_remote(const StorePaths& paths) {
  std::string name(log::program());
  auto r = RemoteStore::connect(paths.socket_path(), name.empty() ? std::string("client") : name);
  if (!r.is_ok()) return r.status();
  return std::unique_ptr<Store>(std::move(r).value());
}

Result<std::unique_ptr<Store>> connect_store(const StorePaths& paths) {
  auto r = connect_remote(paths);
  if (r.is_ok() || r.code() != Code::unavailable) return r;
  struct stat st;
  if (::stat(paths.socket_path().c_str(), &st) != 0)
    return error(Code::unavailable, "mail-stored is not running (no socket at " + paths.socket_path() + ")");
  return error(Code::unavailable, "mail-stored is not running (nothing answers on " + paths.socket_path() +
                                      "): " + r.status().message());
}

}  // namespace mail::store
