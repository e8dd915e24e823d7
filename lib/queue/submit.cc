#include "queue/submit.h"

#include <algorithm>

#include "mime/summary.h"

namespace mail::queue {

bool has_8bit(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) > 127; });
}

Result<SubmitResult> submit(store::Store& store, const Submission& s) {
  SubmitResult result;
  std::vector<store::AccountId> accounts;
  store::QueueEntry q;
  std::string delivered_to;
  for (const auto& r : s.recipients) {
    auto resolved = store.resolve(store::ResolveReq{r.address});
    if (!resolved) return resolved.status();
    if (resolved->kind == store::ResolveKind::unknown) {
      result.recipients.push_back(Code::not_found);
      continue;
    }
    result.recipients.push_back(Code::ok);
    if (resolved->kind == store::ResolveKind::remote_domain) {
      resolved->forwards = {r.address};
    } else if (!resolved->accounts.empty()) {
      delivered_to = delivered_to.empty() ? r.address : "-";
    }
    for (auto a : resolved->accounts)
      if (std::find(accounts.begin(), accounts.end(), a) == accounts.end()) accounts.push_back(a);
    for (const auto& f : resolved->forwards) {
      auto same = [&](const store::QueueRecipient& x) { return x.address == f; };
      if (std::any_of(q.recipients.begin(), q.recipients.end(), same)) continue;
      store::QueueRecipient qr = r;
      qr.address = f;
      qr.state = store::RecipientState::pending;
      q.recipients.push_back(std::move(qr));
    }
  }
  if (accounts.empty() && q.recipients.empty()) return result;

  store::DeliverReq req;
  req.internal_date = s.now;
  for (auto a : accounts) {
    store::DeliveryTarget t;
    t.account = a;
    req.targets.push_back(std::move(t));
  }
  if (!q.recipients.empty()) {
    q.sender = s.sender;
    q.created = s.now;
    q.next_attempt = s.now;
    q.envid = s.envid;
    q.ret = s.ret;
    q.body_type = has_8bit(s.content) ? 1 : 0;
    q.smtputf8 = has_8bit(s.sender);
    for (const auto& r : q.recipients) q.smtputf8 = q.smtputf8 || has_8bit(r.address);
    q.submitter = s.submitter;
    req.queue = std::move(q);
  }
  // Local copies carry Return-Path (and Delivered-To for one recipient); the
  // queue shares the copy and drops them on the way out.
  if (!req.targets.empty()) {
    req.content = "Return-Path: <" + s.sender + ">\r\n";
    if (!delivered_to.empty() && delivered_to != "-" && s.recipients.size() == 1)
      req.content += "Delivered-To: " + delivered_to + "\r\n";
  }
  req.content += s.content;
  req.summary = mime::summarize(req.content);
  MAIL_ASSIGN_OR_RETURN(auto resp, store.deliver(req));
  for (const auto& r : resp.results)
    if (r.code == Code::ok) ++result.local;
  if (!req.targets.empty() && result.local == 0 && !resp.queued)
    return error(resp.results.empty() ? Code::internal : resp.results[0].code,
                 resp.results.empty() ? "not stored" : resp.results[0].message);
  result.queued = resp.queued;
  return result;
}

}  // namespace mail::queue
