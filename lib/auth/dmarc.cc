#include "auth/dmarc.h"

#include "auth/tag_list.h"

namespace mail::auth {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

bool parse_policy(std::string_view v, DmarcPolicy& p) {
  std::string l = lower(v);
  if (l == "none") p = DmarcPolicy::none;
  else if (l == "quarantine") p = DmarcPolicy::quarantine;
  else if (l == "reject") p = DmarcPolicy::reject;
  else return false;
  return true;
}

bool is_dmarc_record(std::string_view txt) {
  auto tags = parse_tag_list(txt);
  return tags && !tags->tags.empty() && tags->tags.front().name == "v" && tags->tags.front().value == "DMARC1";
}

}  // namespace

std::string_view dmarc_policy_name(DmarcPolicy p) {
  switch (p) {
    case DmarcPolicy::none: return "none";
    case DmarcPolicy::quarantine: return "quarantine";
    case DmarcPolicy::reject: return "reject";
  }
  return "?";
}

std::string_view dmarc_status_name(DmarcStatus s) {
  switch (s) {
    case DmarcStatus::none: return "none";
    case DmarcStatus::pass: return "pass";
    case DmarcStatus::fail: return "fail";
    case DmarcStatus::temperror: return "temperror";
    case DmarcStatus::permerror: return "permerror";
  }
  return "?";
}

Result<DmarcRecord> parse_dmarc_record(std::string_view text) {
  auto tags = parse_tag_list(text);
  if (!tags) return error(Code::invalid, "malformed DMARC record: " + tags.status().message());
  if (tags->tags.empty() || tags->tags.front().name != "v" || tags->tags.front().value != "DMARC1") {
    return error(Code::invalid, "not a DMARC1 record");
  }
  DmarcRecord rec;
  const Tag* p = tags->find("p");
  if (p) {
    if (!parse_policy(p->value, rec.p)) return error(Code::invalid, "bad p=");
  } else if (!tags->find("rua")) {
    return error(Code::invalid, "no p=");
  }
  DmarcPolicy x;
  if (const Tag* t = tags->find("sp")) {
    if (parse_policy(t->value, x)) rec.sp = x;  // unknown values are ignored (6.6.3)
  }
  if (const Tag* t = tags->find("np")) {
    if (parse_policy(t->value, x)) rec.np = x;
  }
  if (const Tag* t = tags->find("adkim")) rec.strict_dkim = lower(t->value) == "s";
  if (const Tag* t = tags->find("aspf")) rec.strict_spf = lower(t->value) == "s";
  if (const Tag* t = tags->find("pct")) {
    int v = 0;
    bool ok = !t->value.empty() && t->value.size() <= 3;
    for (char c : t->value) {
      ok = ok && c >= '0' && c <= '9';
      v = v * 10 + (c - '0');
    }
    if (ok && v <= 100) rec.pct = v;
  }
  auto uris = [](std::string_view v) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos <= v.size()) {
      size_t c = v.find(',', pos);
      std::string u = trim(v.substr(pos, c == std::string_view::npos ? std::string_view::npos : c - pos));
      if (!u.empty()) out.push_back(u);
      if (c == std::string_view::npos) break;
      pos = c + 1;
    }
    return out;
  };
  if (const Tag* t = tags->find("rua")) rec.rua = uris(t->value);
  if (const Tag* t = tags->find("ruf")) rec.ruf = uris(t->value);
  if (const Tag* t = tags->find("fo")) rec.fo = std::string(t->value);
  if (const Tag* t = tags->find("ri")) {
    uint64_t v = 0;
    bool ok = !t->value.empty() && t->value.size() <= 9;
    for (char c : t->value) {
      ok = ok && c >= '0' && c <= '9';
      v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    if (ok) rec.ri = static_cast<uint32_t>(v);
  }
  return rec;
}

namespace {

enum class Lookup { found, none, temperror };

Lookup find_record(Resolver& dns, const std::string& domain, DmarcRecord& rec, std::string& problem) {
  auto txt = dns.lookup("_dmarc." + domain, DnsType::txt);
  if (!txt) {
    if (txt.code() == Code::not_found) return Lookup::none;
    problem = txt.status().message();
    return Lookup::temperror;
  }
  const std::string* found = nullptr;
  for (const auto& t : *txt) {
    if (!is_dmarc_record(t)) continue;
    if (found) return Lookup::none;  // several records: as if none (6.6.3)
    found = &t;
  }
  if (!found) return Lookup::none;
  auto r = parse_dmarc_record(*found);
  if (!r) return Lookup::none;  // an unusable record is ignored
  rec = std::move(*r);
  return Lookup::found;
}

}  // namespace

DmarcResult dmarc_check(std::string_view from_domain, const DmarcAuth& auth, Resolver& resolver,
                        const DmarcOptions& options) {
  const PublicSuffixList& psl = options.psl ? *options.psl : PublicSuffixList::system();
  DmarcResult r;
  r.from_domain = lower(from_domain);
  std::string org = psl.organizational_domain(r.from_domain);

  DmarcRecord rec;
  std::string problem;
  Lookup l = find_record(resolver, r.from_domain, rec, problem);
  r.policy_domain = r.from_domain;
  if (l == Lookup::none && org != r.from_domain) {
    l = find_record(resolver, org, rec, problem);
    r.policy_domain = org;
  }
  if (l == Lookup::temperror) {
    r.status = DmarcStatus::temperror;
    r.reason = problem;
    return r;
  }
  if (l == Lookup::none) {
    r.status = DmarcStatus::none;
    r.policy_domain.clear();
    return r;
  }
  r.record = rec;

  auto aligned = [&](const std::string& domain, bool strict) {
    std::string d = lower(domain);
    if (d.empty()) return false;
    if (strict) return d == r.from_domain;
    return psl.organizational_domain(d) == org;
  };
  // The policy: p at the policy domain itself; sp (else p) for a subdomain
  // whose record was found at the organizational domain; np (else sp, else p)
  // when that subdomain does not exist (RFC 9091).
  r.policy = rec.p;
  if (r.policy_domain != r.from_domain) {
    r.policy = rec.sp.value_or(rec.p);
    if (rec.np) {
      bool exists = false;
      for (DnsType t : {DnsType::a, DnsType::aaaa, DnsType::mx}) {
        auto a = resolver.lookup(r.from_domain, t);
        if (a || a.code() != Code::not_found) exists = true;
      }
      if (!exists) r.policy = *rec.np;
    }
  }
  for (const auto& d : auth.dkim_pass_domains) r.dkim_aligned = r.dkim_aligned || aligned(d, rec.strict_dkim);
  r.spf_aligned = auth.spf_pass && aligned(auth.spf_domain, rec.strict_spf);
  if (r.dkim_aligned || r.spf_aligned) {
    r.status = DmarcStatus::pass;
    return r;
  }
  r.status = DmarcStatus::fail;

  r.disposition = options.sample < rec.pct ? r.policy : DmarcPolicy::none;
  // pct below 100 steps a rejection down to quarantine, not to nothing (RFC 7489 6.6.4).
  if (r.disposition == DmarcPolicy::none && r.policy == DmarcPolicy::reject) r.disposition = DmarcPolicy::quarantine;
  return r;
}

Result<std::string> dmarc_from_domain(const MailMessage& message) {
  const HeaderField* from = nullptr;
  for (const auto& h : message.headers()) {
    if (!header_name_equal(h.name, "from")) continue;
    if (from) return error(Code::invalid, "several From fields");
    from = &h;
  }
  if (!from) return error(Code::invalid, "no From field");
  std::string_view v = from->raw.substr(from->raw.find(':') + 1);
  // Addresses outside quoted strings and comments; "Name <a@b>" or "a@b".
  std::vector<std::string> addrs;
  bool quoted = false, angle = false;
  int comment = 0;
  std::string current;
  auto flush = [&]() {
    std::string a = trim(current);
    current.clear();
    if (!a.empty()) addrs.push_back(a);
  };
  for (size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (quoted) {
      if (c == '\\') ++i;
      else if (c == '"') quoted = false;
      continue;
    }
    if (comment) {
      if (c == '(') ++comment;
      else if (c == ')') --comment;
      continue;
    }
    if (c == '"') quoted = true;
    else if (c == '(') comment = 1;
    else if (c == '<') {
      angle = true;
      current.clear();
    } else if (c == '>') {
      angle = false;
      flush();
    } else if (c == ',' && !angle) {
      flush();
    } else if (c == ';' && !angle) {
      flush();  // end of a group
    } else if (c == ':' && !angle) {
      current.clear();  // a group name
    } else {
      current.push_back(c);
    }
  }
  flush();
  std::vector<std::string> domains;
  for (const auto& a : addrs) {
    size_t at = a.rfind('@');
    if (at == std::string::npos) continue;  // a display name left over
    std::string d = lower(trim(a.substr(at + 1)));
    if (!d.empty()) domains.push_back(d);
  }
  if (domains.empty()) return error(Code::invalid, "From names no address");
  for (const auto& d : domains) {
    if (d != domains.front()) return error(Code::invalid, "From names addresses in several domains");
  }
  return domains.front();
}

}  // namespace mail::auth
