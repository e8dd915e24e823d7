// Parts of message summaries (summary_fields) on RocksDB: the content meta
// records are read in key order and each summary is cut in place, so only the
// fields a command needs are encoded into the answer.
#include "mime/summary_fields.h"
#include "store/rocks_internal.h"

namespace mail::store {

Result<SummaryFieldsResp> RocksStore::summary_fields(const SummaryFieldsReq& req) {
  std::vector<std::string> keys;
  keys.reserve(req.ids.size());
  for (ContentId id : req.ids) keys.push_back(key::content_meta(id));
  MAIL_ASSIGN_OR_RETURN(auto raw, impl_->read_many(keys));
  SummaryFieldsResp resp;
  resp.summaries.resize(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (!raw[i]) continue;
    // ContentMeta {id, size, refs, summary}, its summary viewed, not copied.
    Reader r(*raw[i]);
    uint64_t skip;
    std::string_view summary;
    bool ok = true;
    for (int f = 0; f < 3 && ok && !r.at_end(); ++f) ok = r.varint(skip);
    if (ok && !r.at_end()) ok = r.bytes(summary);
    if (!ok) return error(Code::corrupt, "undecodable record at key " + Txn::printable(keys[i]));
    if (summary.empty()) continue;
    resp.summaries[i] = mime::project_summary(summary, req.fields);
  }
  return resp;
}

}  // namespace mail::store
