#include "auth/arc.h"

#include <map>

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

std::string_view field_value(const HeaderField& f) {
  std::string_view v = f.raw.substr(f.raw.find(':') + 1);
  if (v.size() >= 2 && v.substr(v.size() - 2) == "\r\n") v.remove_suffix(2);
  return v;
}

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
  std::map<int, ArcSet> sets;
  for (const auto& h : msg.headers()) {
    bool seal = header_name_equal(h.name, "ARC-Seal");
    bool sig = header_name_equal(h.name, "ARC-Message-Signature");
    bool aar = header_name_equal(h.name, "ARC-Authentication-Results");
    if (!seal && !sig && !aar) continue;
    int i = 0;
    if (aar) {
      if (!aar_instance(field_value(h), i)) return failed(r, "ARC-Authentication-Results without a valid i=");
    } else {
      auto tags = parse_tag_list(field_value(h));
      if (!tags) return failed(r, std::string(h.name) + ": " + tags.status().message());
      const Tag* t = tags->find("i");
      if (!t || !parse_instance(t->value, i)) return failed(r, std::string(h.name) + " without a valid i=");
    }
    if (i > kMaxInstances) return failed(r, "more than 50 ARC sets");
    ArcSet& set = sets[i];
    const HeaderField*& slot = seal ? set.seal : sig ? set.signature : set.results;
    if (slot) return failed(r, "two " + std::string(h.name) + " fields with i=" + std::to_string(i));
    slot = &h;
  }
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
    auto tags = parse_tag_list(field_value(*sets[i].seal));
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
    auto b = base64_decode(strip_whitespace(tags.find("b")->value));
    if (!b || b->empty()) return failed(r, "ARC-Seal " + std::to_string(i) + ": b= is not base64");

    std::string data;
    for (int j = 1; j <= i; ++j) {
      canon_header(*sets[j].results, Canon::relaxed, data);
      canon_header(*sets[j].signature, Canon::relaxed, data);
      if (j < i) canon_header(*sets[j].seal, Canon::relaxed, data);
    }
    const HeaderField& own = *sets[i].seal;
    std::string_view value = field_value(own);
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

}  // namespace mail::auth
