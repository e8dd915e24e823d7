// Message content (DATA with dot-unstuffing, BDAT chunks), the trace header
// fields, the filter pipeline and the one Store::deliver per message.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <random>
#include <set>

#include "base/date.h"
#include "base/log.h"
#include "mime/summary.h"
#include "smtp/session.h"

namespace mail::smtp {

namespace {

// Unique enough for logs and Received ids: time plus a per-process random start and counter.
std::string new_queue_id(int64_t now) {
  static std::atomic<uint64_t> counter{std::random_device{}()};
  uint64_t n = counter.fetch_add(1, std::memory_order_relaxed);
  return fmt::format("{:08X}{:06X}", static_cast<uint32_t>(now), static_cast<uint32_t>(n & 0xffffff));
}

// Header field text from a client (HELO name): printable, no CR/LF, bounded.
std::string clean(std::string_view s) {
  std::string out;
  for (unsigned char c : s.substr(0, 255)) out.push_back((c < 0x20 || c == 0x7f || c == '(' || c == ')') ? '?' : c);
  return out;
}

}  // namespace

// ---- content ------------------------------------------------------------------------------

// One line of DATA content (without its line end, already dot-unstuffed), or
// a piece of an over-long line.
void Session::append_content(std::string_view text, bool line_end) {
  content_size_ += text.size() + (line_end ? 2 : 0);
  if (std::memchr(text.data(), '\r', text.size())) bad_bare_cr_ = true;
  if (std::memchr(text.data(), '\0', text.size())) bad_nul_ = true;
  if (content_size_ > env_.config->max_message_size) return;  // counted, not kept
  content_.append(text);
  if (line_end) content_.append("\r\n");
}

bool Session::data_bytes(std::string& out) {
  while (true) {
    size_t nl = in_.find('\n', in_pos_);
    if (nl == std::string::npos) {
      // No line end yet: keep short tails; pass long ones on (minus a trailing
      // CR that may begin the CRLF) so a line without end cannot grow memory.
      size_t pending = in_.size() - in_pos_;
      if (pending > 65536) {
        size_t take = in_.back() == '\r' ? pending - 1 : pending;
        std::string_view piece(in_.data() + in_pos_, take);
        if (at_line_start_ && !piece.empty() && piece[0] == '.') piece.remove_prefix(1);
        append_content(piece, false);
        at_line_start_ = false;
        in_pos_ += take;
      }
      return false;
    }
    std::string_view line(in_.data() + in_pos_, nl - in_pos_);
    in_pos_ = nl + 1;
    bool crlf = !line.empty() && line.back() == '\r';
    if (crlf) line.remove_suffix(1);
    else bad_bare_lf_ = true;  // "\n.\n" never ends the data: no SMTP smuggling
    if (at_line_start_ && crlf && line == ".") {
      phase_ = Phase::command;
      finish_message(out);
      return true;
    }
    if (at_line_start_ && !line.empty() && line[0] == '.') line.remove_prefix(1);
    append_content(line, true);
    at_line_start_ = true;
  }
}

bool Session::bdat_bytes(std::string& out) {
  size_t avail = in_.size() - in_pos_;
  size_t take = static_cast<size_t>(std::min<uint64_t>(avail, bdat_remaining_));
  if (take) {
    std::string_view chunk(in_.data() + in_pos_, take);
    if (!bdat_failed_) {
      if (mail_.body != BodyType::binary_mime) {
        // Text bodies must still be CRLF lines without NUL.
        for (size_t i = 0; i < chunk.size(); ++i) {
          char ch = chunk[i];
          if (pending_cr_ && ch != '\n') bad_bare_cr_ = true;
          if (ch == '\n' && !pending_cr_) bad_bare_lf_ = true;
          if (ch == '\0') bad_nul_ = true;
          pending_cr_ = ch == '\r';
        }
      }
      content_size_ += take;
      content_.append(chunk);
    }
    in_pos_ += take;
    bdat_remaining_ -= take;
  }
  if (bdat_remaining_ > 0) return false;
  phase_ = Phase::command;
  if (bdat_failed_) {
    out += bdat_error_.render();
    last_code_ = bdat_error_.code;
    if (bdat_last_) reset_transaction();
    count_junk(out);
    return true;
  }
  if (!bdat_last_) {
    reply(out, 250, "2.0.0", std::to_string(take) + " octets received");
    return true;
  }
  if (pending_cr_) bad_bare_cr_ = true;
  finish_message(out);
  return true;
}

// ---- trace header fields ------------------------------------------------------------------

std::string Session::received_header() const {
  // RFC 3848 / RFC 6531 protocol names.
  std::string proto;
  if (mail_.smtputf8) proto = env_.mode == Mode::lmtp ? "UTF8LMTP" : "UTF8SMTP";
  else if (env_.mode == Mode::lmtp) proto = "LMTP";
  else proto = esmtp_ ? "ESMTP" : "SMTP";
  if (tls_ || !auth_user_.empty()) {
    if (proto == "SMTP") proto = "ESMTP";
    if (tls_) proto += "S";
    if (!auth_user_.empty()) proto += "A";
  }
  std::string h = "Received: from ";
  h += clean(helo_);
  if (env_.peer_ip.empty()) h += " (localhost)";
  else h += " (" + env_.peer_name + " [" + env_.peer_ip + "])";
  h += "\r\n\tby " + env_.hostname + " (mailtk) with " + proto + " id " + queue_id_;
  if (tls_) {
    h += "\r\n\t(using ";
    h += clean(tls_info_);
    h += ")";
  }
  if (rcpts_.size() == 1) h += "\r\n\tfor <" + rcpts_[0].address + ">";
  h += "; ";
  h += rfc5322_date(now());
  h += "\r\n";
  return h;
}

std::string Session::trace_headers() const {
  std::string h = "Return-Path: <" + sender_ + ">\r\n";
  // With several recipients the one stored copy cannot name each of them.
  if (rcpts_.size() == 1 && !rcpts_[0].accounts.empty()) h += "Delivered-To: " + rcpts_[0].address + "\r\n";
  return h;
}

// ---- the end of a message: filters and delivery -------------------------------------------

void Session::finish_message(std::string& out) {
  const bool lmtp = env_.mode == Mode::lmtp;
  // One reply per recipient in LMTP, one for the message otherwise.
  auto answer_all = [&](int code, std::string_view enhanced, std::string_view text) {
    size_t n = lmtp ? rcpts_.size() : 1;
    for (size_t i = 0; i < n; ++i) reply(out, code, enhanced, lmtp ? "<" + rcpts_[i].address + "> " + std::string(text) : text);
  };
  auto fail = [&](int code, std::string_view enhanced, std::string_view text) {
    answer_all(code, enhanced, text);
    reset_transaction();
  };
  if (content_size_ > env_.config->max_message_size) return fail(552, "5.3.4", "Message size exceeds fixed limit");
  if (bad_nul_) return fail(554, "5.6.0", "Message contains NUL characters");
  if (bad_bare_lf_) return fail(554, "5.6.0", "Message contains bare LF: lines must end with CRLF");
  if (bad_bare_cr_) return fail(554, "5.6.0", "Message contains bare CR: lines must end with CRLF");

  queue_id_ = new_queue_id(now());
  std::string message = received_header();
  message += content_;
  content_.clear();
  content_.shrink_to_fit();

  // Filters.
  FilterContext ctx;
  ctx.mode = env_.mode;
  ctx.peer_ip = env_.peer_ip;
  ctx.helo = helo_;
  ctx.tls = tls_;
  ctx.auth_user = auth_user_;
  ctx.auth_account = auth_account_;
  ctx.sender = sender_;
  ctx.params = &mail_;
  ctx.recipients = &rcpts_;
  std::map<store::AccountId, Placement> placement;
  for (MessageFilter* f : env_.filters) {
    FilterResult r = f->run(ctx, message);
    for (auto it = r.remove.rbegin(); it != r.remove.rend(); ++it)
      if (it->first <= it->second && it->second <= message.size()) message.erase(it->first, it->second - it->first);
    if (!r.prepend.empty()) message.insert(0, r.prepend);
    for (auto& [account, p] : r.placement) placement[account] = std::move(p);
    if (r.action == FilterResult::Action::reject) {
      log::info("smtp: {} rejected by filter {}: {} {}", queue_id_, f->name(), r.reply.code, r.reply.text);
      if (r.reply.code < 400) r.reply = Reply{451, "4.3.0", "Message refused by filter"};
      return fail(r.reply.code, r.reply.enhanced, r.reply.text);
    }
    if (r.action == FilterResult::Action::discard) {
      log::info("smtp: {} discarded by filter {}", queue_id_, f->name());
      messages_accepted_++;
      return fail(250, "2.0.0", "Ok: " + queue_id_);
    }
  }

  // A message larger than a recipient's whole quota will never fit: 552 5.2.2
  // (RFC 1870's permanent over-quota), for that recipient in LMTP, for the
  // message in SMTP when that is true of every recipient.
  const uint64_t final_size = message.size() + trace_headers().size();
  std::vector<bool> too_big(rcpts_.size(), false);
  size_t n_too_big = 0;
  for (size_t i = 0; i < rcpts_.size(); ++i) {
    if (rcpts_[i].quota_bytes && final_size > rcpts_[i].quota_bytes && rcpts_[i].remote.empty()) {
      too_big[i] = true;
      ++n_too_big;
    }
  }
  if (n_too_big == rcpts_.size()) return fail(552, "5.2.2", "Message is larger than the mailbox quota");

  // Targets: each local account once; remote recipients go to the queue.
  std::vector<store::AccountId> accounts;
  for (size_t i = 0; i < rcpts_.size(); ++i) {
    if (too_big[i] && lmtp) continue;
    for (auto a : rcpts_[i].accounts)
      if (std::find(accounts.begin(), accounts.end(), a) == accounts.end()) accounts.push_back(a);
  }
  store::DeliverReq req;
  req.internal_date = now();
  std::vector<store::AccountId> target_account;  // per target
  for (auto a : accounts) {
    auto it = placement.find(a);
    if (it != placement.end() && it->second.discard) continue;
    store::DeliveryTarget t;
    t.account = a;
    if (it != placement.end()) {
      t.mailbox_name = it->second.mailbox;
      t.flags = it->second.flags;
      t.keywords = it->second.keywords;
    }
    req.targets.push_back(std::move(t));
    target_account.push_back(a);
  }
  std::set<std::string> queued_addresses;
  store::QueueEntry q;
  for (const auto& r : rcpts_) {
    for (const auto& addr : r.remote) {
      if (!queued_addresses.insert(addr).second) continue;
      store::QueueRecipient qr;
      qr.address = addr;
      qr.notify = r.params.notify;
      if (!r.params.orcpt.empty()) {
        qr.orcpt = r.params.orcpt;
      } else if (addr != r.address) {  // an alias forward: the address it was sent to
        qr.orcpt = "rfc822;";
        qr.orcpt += xtext_encode(r.address);
      }
      q.recipients.push_back(std::move(qr));
    }
  }
  if (!q.recipients.empty()) {
    q.sender = sender_;
    q.created = mail_time_;
    q.next_attempt = mail_.hold_until ? *mail_.hold_until : mail_time_ + mail_.hold_for.value_or(0);
    q.envid = mail_.envid;
    q.ret = mail_.ret;
    q.deliver_by = mail_.by ? mail_time_ + mail_.by->seconds : 0;
    q.require_tls = mail_.requiretls;
    q.smtputf8 = mail_.smtputf8;
    q.body_type = static_cast<uint8_t>(mail_.body.value_or(BodyType::seven_bit));
    q.submitter = auth_account_;
    req.queue = std::move(q);
  }
  if (req.targets.empty() && !req.queue) {  // every copy discarded by filters
    messages_accepted_++;
    if (!lmtp) return fail(250, "2.0.0", "Ok: " + queue_id_);
    for (size_t i = 0; i < rcpts_.size(); ++i) {
      if (too_big[i]) reply(out, 552, "5.2.2", "<" + rcpts_[i].address + "> Message is larger than the mailbox quota");
      else reply(out, 250, "2.1.5", "<" + rcpts_[i].address + "> Ok: " + queue_id_);
    }
    reset_transaction();
    return;
  }
  // Local copies carry Return-Path/Delivered-To; the queue shares the one
  // copy, and outbound delivery drops those fields above the first Received.
  req.content = req.targets.empty() ? std::move(message) : trace_headers() + message;
  req.summary = mime::summarize(req.content);

  auto resp = env_.store->deliver(req);
  if (!resp) {
    log::error("smtp: {} delivery failed: {}", queue_id_, resp.status().to_string());
    return fail(451, "4.3.0", "Temporary failure storing the message, try again later");
  }

  // Targets that failed: a missing filter mailbox falls back to INBOX; in SMTP a
  // quota failure next to a success is stored anyway (one message over quota,
  // as the RCPT check passed), because one reply cannot accept some recipients.
  std::map<store::AccountId, Code> failed;
  std::vector<size_t> retry;
  size_t ok = 0;
  for (size_t i = 0; i < resp->results.size() && i < target_account.size(); ++i) {
    const auto& r = resp->results[i];
    if (r.code == Code::ok) {
      ++ok;
      continue;
    }
    if (r.code == Code::not_found && !req.targets[i].mailbox_name.empty()) retry.push_back(i);
    else failed[target_account[i]] = r.code;
  }
  bool some_done = ok > 0 || resp->queued;
  if (!lmtp && some_done) {
    for (auto& [account, code] : failed) {
      if (code != Code::quota) continue;
      for (size_t i = 0; i < target_account.size(); ++i)
        if (target_account[i] == account) retry.push_back(i);
    }
  }
  if (!retry.empty()) {
    store::DeliverReq again;
    again.content = req.content;
    again.summary = req.summary;
    again.internal_date = req.internal_date;
    std::vector<size_t> index;
    for (size_t i : retry) {
      store::DeliveryTarget t = req.targets[i];
      if (resp->results[i].code == Code::not_found) t.mailbox_name.clear();
      else t.enforce_quota = false;
      again.targets.push_back(std::move(t));
      index.push_back(i);
    }
    auto r2 = env_.store->deliver(again);
    for (size_t k = 0; k < index.size(); ++k) {
      store::AccountId a = target_account[index[k]];
      bool good = r2 && k < r2->results.size() && r2->results[k].code == Code::ok;
      if (good) {
        failed.erase(a);
        if (resp->results[index[k]].code == Code::quota)
          log::warn("smtp: {} stored over quota for account {} (quota filled after RCPT)", queue_id_, a);
      } else {
        failed[a] = r2 ? (k < r2->results.size() ? r2->results[k].code : Code::internal) : r2.code();
      }
    }
  }

  auto outcome = [&](const std::vector<store::AccountId>& mine) -> std::pair<int, Code> {
    for (auto a : mine) {
      auto it = failed.find(a);
      if (it != failed.end()) return {it->second == Code::quota ? 452 : 451, it->second};
    }
    return {250, Code::ok};
  };
  if (lmtp) {
    for (size_t i = 0; i < rcpts_.size(); ++i) {
      const Recipient& r = rcpts_[i];
      auto [code, why] = outcome(r.accounts);
      if (too_big[i]) reply(out, 552, "5.2.2", "<" + r.address + "> Message is larger than the mailbox quota");
      else if (code == 250) reply(out, 250, "2.1.5", "<" + r.address + "> Ok: " + queue_id_);
      else if (code == 452) reply(out, 452, "4.2.2", "<" + r.address + "> Mailbox full");
      else reply(out, 451, "4.3.0", "<" + r.address + "> Temporary failure, try again later");
    }
  } else if (!failed.empty() && !some_done) {
    bool quota = std::all_of(failed.begin(), failed.end(), [](const auto& f) { return f.second == Code::quota; });
    if (quota) reply(out, 452, "4.2.2", "Mailbox full");
    else reply(out, 451, "4.3.0", "Temporary failure, try again later");
  } else {
    if (!failed.empty())
      log::error("smtp: {} not stored for {} of its mailboxes (accepted for the others)", queue_id_, failed.size());
    reply(out, 250, "2.0.0", "Ok: queued as " + queue_id_);
  }
  messages_accepted_++;
  log::info("smtp: {} from=<{}> rcpts={} size={} mailboxes={} queued={}{}", queue_id_, sender_, rcpts_.size(),
            req.content.size(), ok, resp->queued,
            auth_user_.empty() ? std::string() : " user=" + auth_user_);
  reset_transaction();
}

}  // namespace mail::smtp
