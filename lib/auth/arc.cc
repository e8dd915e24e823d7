#include "auth/arc.h"

#include <ctime>
#include <map>

#include "auth/auth_results.h"
#include "auth/dkim_internal.h"
#include "auth/tag_list.h"
#include "base/base64.h"

namespace mail::auth {

namespace {

constexpr int kMaxInstances = 50;

struct ArcSet {
  const HeaderField* seal = nullptr;
  const HeaderField* signature = nullptr;
  const HeaderField* results = nullptr;
};

bool parse_instance(std::string_view digits, int& out) {
  if (digits.empty() || digits.size() > 3 || digits[0] == '0') return false;
  out = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  return true;
}

// The instance of an ARC-Authentication-Results: "i=N;" before the authserv-id.
bool aar_instance(std::string_view v, int& out) {
  size_t p = v.find_first_not_of(" \t\r\n");
  if (p == std::string_view::npos || v.substr(p, 2) != "i=") return false;
  p += 2;
  size_t semi = v.find(';', p);
  if (semi == std::string_view::npos) return false;
  std::string_view d = v.substr(p, semi - p);
  while (!d.empty() && (d.back() == ' ' || d.back() == '\t')) d.remove_suffix(1);
  return parse_instance(d, out);
}

ArcResult failed(ArcResult r, std::string why) {
  r.status = ArcStatus::fail;
  r.reason = std::move(why);
  return r;
}

// The message's ARC fields by instance. Strict (validation): a field without
// a valid i=, more than 50 sets or a field twice in one set is an error.
// Otherwise (sealing) such fields are passed over.
Result<std::map<int, ArcSet>> gather_sets(const MailMessage& msg, bool strict) {
  std::map<int, ArcSet> sets;
  for (const auto& h : msg.headers()) {
    bool seal = header_name_equal(h.name, "ARC-Seal");
    bool sig = header_name_equal(h.name, "ARC-Message-Signature");
    bool aar = header_name_equal(h.name, "ARC-Authentication-Results");
    if (!seal && !sig && !aar) continue;
    int i = 0;
    std::string why;
    if (aar) {
      if (!aar_instance(header_value(h), i)) why = "ARC-Authentication-Results without a valid i=";
    } else {
      auto tags = parse_tag_list(header_value(h));
      const Tag* t = tags ? tags->find("i") : nullptr;
      if (!tags) why = std::string(h.name) + ": " + tags.status().message();
      else if (!t || !parse_instance(t->value, i)) why = std::string(h.name) + " without a valid i=";
    }
    if (why.empty() && strict && i > kMaxInstances) why = "more than 50 ARC sets";
    if (!why.empty()) {
      if (strict) return error(Code::invalid, why);
      continue;
    }
    ArcSet& set = sets[i];
    const HeaderField*& slot = seal ? set.seal : sig ? set.signature : set.results;
    if (slot && strict) return error(Code::invalid, "two " + std::string(h.name) + " fields with i=" + std::to_string(i));
    slot = &h;
  }
  return sets;
}

}  // namespace

std::string_view arc_status_name(ArcStatus s) {
  switch (s) {
    case ArcStatus::none: return "none";
    case ArcStatus::pass: return "pass";
    case ArcStatus::fail: return "fail";
  }
  return "?";
}

ArcResult arc_validate(const MailMessage& msg, Resolver& resolver, const DkimVerifyOptions& options) {
  ArcResult r;
  auto gathered = gather_sets(msg, /*strict=*/true);
  if (!gathered) return failed(r, gathered.status().message());
  std::map<int, ArcSet>& sets = *gathered;
  if (sets.empty()) return r;
  int n = sets.rbegin()->first;
  r.instances = n;
  for (int i = 1; i <= n; ++i) {
    auto it = sets.find(i);
    if (it == sets.end() || !it->second.seal || !it->second.signature || !it->second.results) {
      return failed(r, "ARC set " + std::to_string(i) + " is incomplete");
    }
  }

  // The seals' cv= values: none for the first, pass for the others; a chain
  // already marked failed stays failed.
  std::map<int, TagList> seal_tags;
  for (int i = n; i >= 1; --i) {
    auto tags = parse_tag_list(header_value(*sets[i].seal));
    const Tag* cv = tags->find("cv");
    if (!cv) return failed(r, "ARC-Seal " + std::to_string(i) + " without cv=");
    std::string v(cv->value);
    for (char& c : v) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    if (v == "fail") return failed(r, "ARC-Seal " + std::to_string(i) + " says cv=fail");
    if (v != (i == 1 ? "none" : "pass")) return failed(r, "ARC-Seal " + std::to_string(i) + " has cv=" + v);
    if (tags->find("h")) return failed(r, "ARC-Seal " + std::to_string(i) + " has h=");
    seal_tags.emplace(i, std::move(*tags));
  }

  // The newest ARC-Message-Signature.
  std::string scratch;
  DkimResult ams = internal::verify_signature_field(msg, *sets[n].signature, resolver, options, scratch, true);
  if (ams.status != DkimStatus::pass) {
    return failed(r, "ARC-Message-Signature " + std::to_string(n) + ": " + std::string(dkim_status_name(ams.status)) +
                         (ams.reason.empty() ? "" : " (" + ams.reason + ")"));
  }

  // Every seal, newest first: it signs the sets up to its own, in order.
  for (int i = n; i >= 1; --i) {
    const TagList& tags = seal_tags.at(i);
    DkimResult seal;
    for (const char* required : {"a", "b", "d", "s"}) {
      if (!tags.find(required)) return failed(r, "ARC-Seal " + std::to_string(i) + " without " + required + "=");
    }
    seal.domain = std::string(tags.find("d")->value);
    seal.selector = std::string(tags.find("s")->value);
    seal.identity = "@" + seal.domain;
    std::string_view a = tags.find("a")->value;
    DkimAlgorithm alg;
    if (a == "rsa-sha256") alg = DkimAlgorithm::rsa_sha256;
    else if (a == "ed25519-sha256") alg = DkimAlgorithm::ed25519_sha256;
    else return failed(r, "ARC-Seal " + std::to_string(i) + ": unknown algorithm " + std::string(a));
    auto b = base64_decode_public(strip_whitespace(tags.find("b")->value));
    if (!b || b->empty()) return failed(r, "ARC-Seal " + std::to_string(i) + ": b= is not base64");

    std::string data;
    for (int j = 1; j <= i; ++j) {
      canon_header(*sets[j].results, Canon::relaxed, data);
      canon_header(*sets[j].signature, Canon::relaxed, data);
      if (j < i) canon_header(*sets[j].seal, Canon::relaxed, data);
    }
    const HeaderField& own = *sets[i].seal;
    std::string_view value = header_value(own);
    const Tag* bt = tags.find("b");
    std::string blanked(own.raw.substr(0, own.raw.find(':') + 1));
    blanked.append(value.substr(0, bt->value_start));
    blanked.append(value.substr(bt->end));
    blanked.append("\r\n");
    canon_header(HeaderField{own.name, blanked}, Canon::relaxed, data);
    data.resize(data.size() - 2);
    if (!internal::verify_with_key(resolver, alg, seal, data, *b)) {
      return failed(r, "ARC-Seal " + std::to_string(i) + ": " + std::string(dkim_status_name(seal.status)) + " (" +
                           seal.reason + ")");
    }
  }
  r.status = ArcStatus::pass;
  return r;
}

namespace {

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return s;
}

// Unfolds and squeezes whitespace, for one result on its own line.
std::string one_line(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

}  // namespace

Result<std::string> arc_seal(const MailMessage& msg, const DkimKey& key, const ArcSealOptions& options) {
  if (!key.pkey()) return error(Code::invalid, "no key");
  // Our results, newest (topmost) first, and the chain status among them.
  std::vector<std::string> results;
  std::string cv;
  for (const auto& h : msg.headers()) {
    if (!header_name_equal(h.name, "Authentication-Results")) continue;
    auto parts = ar_parts(header_value(h));
    if (parts.empty() || lower(parts[0]) != lower(options.authserv_id)) continue;
    for (size_t i = 1; i < parts.size(); ++i) {
      if (parts[i].empty()) continue;
      std::string r = one_line(parts[i]);
      if (cv.empty() && lower(r.substr(0, 4)) == "arc=") {
        size_t end = r.find_first_of(" (", 4);
        cv = lower(r.substr(4, end == std::string::npos ? std::string::npos : end - 4));
      }
      results.push_back(std::move(r));
    }
  }

  // The sets already there.
  std::map<int, ArcSet> sets = std::move(gather_sets(msg, /*strict=*/false)).value();
  int instance = sets.empty() ? 1 : sets.rbegin()->first + 1;
  // A chain a sealer already marked failed gets no further sets (RFC 8617 5.1.1).
  if (!sets.empty() && sets.rbegin()->second.seal) {
    auto tags = parse_tag_list(header_value(*sets.rbegin()->second.seal));
    const Tag* last_cv = tags ? tags->find("cv") : nullptr;
    if (last_cv && lower(std::string(last_cv->value)) == "fail") return std::string();
  }
  if (cv.empty()) return error(Code::invalid, "no arc= result of " + options.authserv_id + " to seal");
  if (cv != "none" && cv != "pass" && cv != "fail") return error(Code::invalid, "arc=" + cv + " cannot be sealed");
  if (instance > kMaxInstances) return error(Code::invalid, "the message has 50 ARC sets already");
  if (cv == "none" && instance != 1) return error(Code::invalid, "arc=none but the message has ARC sets");
  for (int j = 1; j < instance; ++j) {
    const ArcSet& set = sets[j];
    if (!set.seal || !set.signature || !set.results) return error(Code::invalid, "an ARC set is incomplete");
  }
  // A failed chain is sealed once more with cv=fail; that seal covers only
  // its own set (RFC 8617 5.1.1).
  int first = cv == "fail" ? instance : 1;

  std::string i = std::to_string(instance);
  int64_t t = options.timestamp;
  if (t < 0) t = static_cast<int64_t>(std::time(nullptr));
  DkimAlgorithm alg = key.algorithm();
  std::string a(dkim_algorithm_name(alg));

  std::string aar = "ARC-Authentication-Results: i=" + i + "; " + options.authserv_id;
  for (size_t k = 0; k < results.size(); ++k) {
    aar.append(k == 0 ? "; " : ";\r\n ");
    aar.append(results[k]);
  }
  aar += "\r\n";

  std::vector<std::string> names = options.headers;
  if (names.empty()) {
    for (const char* n : {"from", "to", "cc", "subject", "date", "message-id", "reply-to", "in-reply-to",
                          "references", "mime-version", "content-type", "content-transfer-encoding", "dkim-signature"}) {
      for (const auto& h : msg.headers()) {
        if (header_name_equal(h.name, n)) names.emplace_back(n);
      }
    }
  }
  std::string h;
  for (const auto& n : names) {
    if (!h.empty()) h.push_back(':');
    h += lower(trim(n));
  }
  std::string body_hash = internal::body_hash_for(alg, msg.body(), Canon::relaxed);
  if (body_hash.empty()) return error(Code::internal, "cannot hash the body");
  std::string bh = base64_encode(body_hash);

  // b= stays on one line: a seal signs the ARC-Message-Signature relaxed,
  // where a fold inside b= would count as a space, and the ARC test suite's
  // (dkimpy's) seals are made over unfolded values.
  std::string ams_head = "ARC-Message-Signature: a=" + a + ";\r\n b=";
  std::string ams_tail = ";\r\n bh=" + bh + "; c=relaxed/relaxed;\r\n d=" + options.domain + "; h=" + h +
                         ";\r\n i=" + i + "; s=" + options.selector + "; t=" + std::to_string(t) + "\r\n";
  std::string data;
  internal::append_signed_headers(msg, names, Canon::relaxed, data);
  canon_header(HeaderField{"ARC-Message-Signature", ams_head + ams_tail}, Canon::relaxed, data);
  data.resize(data.size() - 2);
  MAIL_ASSIGN_OR_RETURN(std::string ams_sig, internal::sign_header_data(key, alg, data));
  std::string ams = ams_head + base64_encode(ams_sig) + ams_tail;

  std::string as_head = "ARC-Seal: a=" + a + ";\r\n b=";
  std::string as_tail = "; cv=" + cv + "; d=" + options.domain + "; i=" + i + "; s=" + options.selector +
                        "; t=" + std::to_string(t) + "\r\n";
  data.clear();
  for (int j = first; j < instance; ++j) {
    canon_header(*sets[j].results, Canon::relaxed, data);
    canon_header(*sets[j].signature, Canon::relaxed, data);
    canon_header(*sets[j].seal, Canon::relaxed, data);
  }
  canon_header(HeaderField{"ARC-Authentication-Results", aar}, Canon::relaxed, data);
  canon_header(HeaderField{"ARC-Message-Signature", ams}, Canon::relaxed, data);
  canon_header(HeaderField{"ARC-Seal", as_head + as_tail}, Canon::relaxed, data);
  data.resize(data.size() - 2);
  MAIL_ASSIGN_OR_RETURN(std::string as_sig, internal::sign_header_data(key, alg, data));
  return as_head + base64_encode(as_sig) + as_tail + ams + aar;
}

}  // namespace mail::auth
