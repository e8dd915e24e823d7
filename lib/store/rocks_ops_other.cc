// Per-account data, the outbound queue, and store-wide statistics on RocksDB.
#include <algorithm>

#include "store/rocks_internal.h"

namespace mail::store {

namespace {
Status check_data_key(const std::string& ns, const std::string& k) {
  if (ns.empty() || ns.find('\0') != std::string::npos)
    return error(Code::invalid, "data namespace must be non-empty without NUL");
  if (k.size() > 4096) return error(Code::invalid, "data key too long");
  return Status::ok();
}

bool recipient_finished(const QueueRecipient& r) {
  return r.state == RecipientState::delivered || r.state == RecipientState::failed;
}
}  // namespace

// ---- per-account data -----------------------------------------------------------------

Result<Empty> RocksStore::data_put(const DataPutReq& req) {
  MAIL_TRY(check_data_key(req.key.ns, req.key.key));
  return impl_->write_op<Empty>([&](Txn& txn) -> Result<Empty> {
    if (req.key.account && !txn.exists(key::account(req.key.account)))
      return error(Code::not_found, "no such account id " + std::to_string(req.key.account));
    txn.put(key::data(req.key.account, req.key.ns, req.key.key), req.value);
    return Empty{};
  });
}

Result<DataValue> RocksStore::data_get(const DataKey& req) {
  MAIL_TRY(check_data_key(req.ns, req.key));
  MAIL_ASSIGN_OR_RETURN(auto v, impl_->read(key::data(req.account, req.ns, req.key)));
  if (!v) return DataValue{};
  return DataValue{true, std::move(*v)};
}

Result<Empty> RocksStore::data_delete(const DataKey& req) {
  MAIL_TRY(check_data_key(req.ns, req.key));
  return impl_->write_op<Empty>([&](Txn& txn) -> Result<Empty> {
    std::string k = key::data(req.account, req.ns, req.key);
    if (!txn.exists(k)) return error(Code::not_found, "no such data key " + req.ns + "/" + req.key);
    txn.del(k);
    return Empty{};
  });
}

Result<DataScanResp> RocksStore::data_scan(const DataScanReq& req) {
  MAIL_TRY(check_data_key(req.ns, req.prefix));
  std::string ns_prefix = key::data_prefix(req.account, req.ns);
  DataScanResp resp;
  MAIL_TRY(impl_->read_scan(ns_prefix + req.prefix, [&](std::string_view k, std::string_view v) {
    resp.items.push_back(DataItem{std::string(k.substr(ns_prefix.size())), std::string(v)});
    return !req.limit || resp.items.size() < req.limit;
  }));
  return resp;
}

Result<DataSetAddResp> RocksStore::data_set_add(const DataSetAddReq& req) {
  for (const auto& k : req.keys) MAIL_TRY(check_data_key(k.ns, k.key));
  return impl_->write_op<DataSetAddResp>([&](Txn& txn) -> Result<DataSetAddResp> {
    DataSetAddResp resp;
    auto adding = [&](uint64_t m) { return std::find(req.members.begin(), req.members.end(), m) != req.members.end(); };
    for (const auto& dk : req.keys) {
      if (dk.account && !txn.exists(key::account(dk.account)))
        return error(Code::not_found, "no such account id " + std::to_string(dk.account));
      std::string k = key::data(dk.account, dk.ns, dk.key);
      MAIL_ASSIGN_OR_RETURN(auto raw, txn.get(k));
      DataTimedSet seen, kept;
      if (raw && !decode(*raw, seen)) seen = {};
      for (size_t i = 0; i < seen.members.size() && i < seen.times.size(); ++i) {
        bool fresh = !req.window_s || seen.times[i] > req.now - static_cast<int64_t>(req.window_s);
        if (fresh && !adding(seen.members[i])) {
          kept.members.push_back(seen.members[i]);
          kept.times.push_back(seen.times[i]);
        }
      }
      for (uint64_t m : req.members) {
        if (std::find(kept.members.begin(), kept.members.end(), m) != kept.members.end()) continue;
        kept.members.push_back(m);
        kept.times.push_back(req.now);
      }
      if (req.max_members && kept.members.size() > req.max_members) {
        auto drop = static_cast<std::ptrdiff_t>(kept.members.size() - req.max_members);
        kept.members.erase(kept.members.begin(), kept.members.begin() + drop);
        kept.times.erase(kept.times.begin(), kept.times.begin() + drop);
      }
      txn.put_record(k, kept);
      resp.sizes.push_back(static_cast<uint32_t>(kept.members.size()));
    }
    return resp;
  });
}

// ---- outbound queue ----------------------------------------------------------------------

Result<QueueListResp> RocksStore::queue_list(const QueueListReq& req) {
  QueueListResp resp;
  Status bad;
  MAIL_TRY(impl_->read_scan(std::string(1, key::kQueue), [&](std::string_view, std::string_view v) {
    QueueEntry e;
    if (!decode(v, e)) {
      bad = error(Code::corrupt, "undecodable queue entry");
      return false;
    }
    if (!req.due_before || (e.next_attempt <= req.due_before && e.state != QueueState::held))
      resp.entries.push_back(std::move(e));
    return !req.limit || resp.entries.size() < req.limit;
  }));
  MAIL_TRY(bad);
  return resp;
}

Result<QueueEntry> RocksStore::queue_get(const QueueRef& req) {
  return impl_->read_need<QueueEntry>(key::queue(req.id), "no such queue entry " + std::to_string(req.id));
}

Result<Empty> RocksStore::queue_update(const QueueUpdateReq& req) {
  return impl_->write_op<Empty>([&](Txn& txn) -> Result<Empty> {
    const QueueEntry& next = req.entry;
    MAIL_ASSIGN_OR_RETURN(QueueEntry current, txn.need<QueueEntry>(key::queue(next.id), "no such queue entry " +
                                                                                            std::to_string(next.id)));
    if (next.content != current.content) return error(Code::invalid, "a queue update cannot change the content");
    bool finished = !next.recipients.empty();
    for (const auto& r : next.recipients) finished = finished && recipient_finished(r);
    if (finished) {
      txn.del(key::queue(next.id));
      return release_content(txn, next.content);
    }
    txn.put_record(key::queue(next.id), next);
    return Empty{};
  });
}

Result<Empty> RocksStore::queue_delete(const QueueRef& req) {
  return impl_->write_op<Empty>([&](Txn& txn) -> Result<Empty> {
    MAIL_ASSIGN_OR_RETURN(QueueEntry current, txn.need<QueueEntry>(key::queue(req.id), "no such queue entry " +
                                                                                          std::to_string(req.id)));
    txn.del(key::queue(req.id));
    return release_content(txn, current.content);
  });
}

// ---- statistics ---------------------------------------------------------------------------

Result<StatsResp> RocksStore::stats(const Empty&) {
  StatsResp s;
  s.format_version = kFormatVersion;
  s.backend = backend_name();
  auto count = [&](char prefix) {
    uint64_t n = 0;
    (void)impl_->read_scan(std::string(1, prefix), [&](std::string_view, std::string_view) {
      ++n;
      return true;
    });
    return n;
  };
  auto counter = [&](std::string_view name) -> uint64_t {
    auto v = impl_->read(key::counter(name));
    return v.is_ok() && v->has_value() && (*v)->size() == 8 ? get_be64(**v) : 0;
  };
  s.domains = count(key::kDomain);
  s.accounts = count(key::kAccount);
  s.queued = count(key::kQueue);
  s.messages = counter("messages");
  s.contents = counter("contents");
  s.content_bytes = counter("content_bytes");
  return s;
}

}  // namespace mail::store
