#include "queue/dane.h"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <unbound.h>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "auth/resolver.h"
#include "base/ascii.h"

namespace mail::queue {

std::optional<Tlsa> parse_tlsa(std::string_view rdata) {
  if (rdata.size() < 4) return std::nullopt;  // three octets and some data
  Tlsa t;
  t.usage = static_cast<uint8_t>(rdata[0]);
  t.selector = static_cast<uint8_t>(rdata[1]);
  t.mtype = static_cast<uint8_t>(rdata[2]);
  t.data = std::string(rdata.substr(3));
  return t;
}

bool usable_tlsa(const Tlsa& r) {
  if (r.usage != 2 && r.usage != 3) return false;
  if (r.selector > 1) return false;
  switch (r.mtype) {
    case 0: return !r.data.empty();
    case 1: return r.data.size() == 32;
    case 2: return r.data.size() == 64;
    default: return false;
  }
}

// ---- resolvers ------------------------------------------------------------------

Result<SecureAnswer> StubDnssecResolver::query(const std::string& name, uint16_t type) {
  auto it = answers_.find({auth::dns_name_key(name), type});
  if (it == answers_.end()) return error(Code::temporary, "DNS timeout for " + name);
  return it->second;
}

namespace {

// One validating ub_ctx shared by the delivery threads: ub_resolve is
// thread-safe and the cache (DNSKEYs, DS) is worth sharing.
class UnboundDnssecResolver : public DnssecResolver {
 public:
  explicit UnboundDnssecResolver(ub_ctx* ctx) : ctx_(ctx) {}
  ~UnboundDnssecResolver() override { ub_ctx_delete(ctx_); }

  Result<SecureAnswer> query(const std::string& name, uint16_t type) override {
    ub_result* raw = nullptr;
    int err = ub_resolve(ctx_, name.c_str(), type, 1, &raw);
    if (err != 0) return error(Code::temporary, "DNS lookup of " + name + ": " + ub_strerror(err));
    std::unique_ptr<ub_result, void (*)(ub_result*)> r(raw, ub_resolve_free);
    SecureAnswer a;
    if (r->bogus) {
      a.security = DnsSecurity::bogus;
      a.why = r->why_bogus ? r->why_bogus : "DNSSEC validation failed";
      return a;
    }
    a.security = r->secure ? DnsSecurity::secure : DnsSecurity::insecure;
    if (r->canonname) {
      std::string canonical = ascii_lower(r->canonname);
      if (!canonical.empty() && canonical.back() == '.') canonical.pop_back();
      if (canonical != ascii_lower(name)) a.canonical = std::move(canonical);
    }
    if (r->rcode == 3) {
      a.nxdomain = true;
      return a;
    }
    if (r->rcode != 0)
      return error(Code::temporary, "DNS server failure (rcode " + std::to_string(r->rcode) + ") for " + name);
    for (int i = 0; r->havedata && r->data[i]; ++i) a.rdata.emplace_back(r->data[i], static_cast<size_t>(r->len[i]));
    return a;
  }

 private:
  ub_ctx* ctx_;
};

}  // namespace

Result<std::unique_ptr<DnssecResolver>> make_dnssec_resolver(const std::string& server,
                                                             const std::string& trust_anchor_file) {
  // libunbound fails only at the first query on a missing file: check now.
  if (::access(trust_anchor_file.c_str(), R_OK) != 0)
    return error(Code::config, "cannot read the DNSSEC trust anchor file " + trust_anchor_file);
  ub_ctx* ctx = ub_ctx_create();
  if (!ctx) return error(Code::internal, "cannot create a DNS resolver");
  int err = 0;
  if (server.empty()) {
    err = ub_ctx_resolvconf(ctx, nullptr);
  } else {
    ub_ctx_set_option(ctx, "do-not-query-localhost:", "no");  // tests run their DNS server on 127.0.0.1
    err = ub_ctx_set_fwd(ctx, server.c_str());
  }
  if (err == 0) err = ub_ctx_add_ta_file(ctx, trust_anchor_file.c_str());
  if (err != 0) {
    ub_ctx_delete(ctx);
    return error(Code::config, std::string("DNSSEC resolver: ") + ub_strerror(err));
  }
  return std::unique_ptr<DnssecResolver>(new UnboundDnssecResolver(ctx));
}

Status check_validation(DnssecResolver& resolver, const std::string& trust_anchor_file) {
  std::ifstream in(trust_anchor_file);
  if (!in) return error(Code::unavailable, "cannot read " + trust_anchor_file + ": " + std::strerror(errno));
  std::string line, owner;
  while (owner.empty() && std::getline(in, line)) {
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == ';' || line[start] == '$') continue;
    owner = line.substr(start, line.find_first_of(" \t", start) - start);
  }
  if (owner.empty()) return error(Code::unavailable, "no trust anchor in " + trust_anchor_file);
  auto a = resolver.query(owner, kDnsDnskey);
  if (!a) return Status::ok();
  if (a->security != DnsSecurity::secure)
    return error(Code::unavailable, "the resolver does not validate the DNSKEY of " + owner +
                                        (a->why.empty() ? "" : " (" + a->why + ")"));
  return Status::ok();
}

// ---- policy -----------------------------------------------------------------------

Result<bool> dane_domain_secure(DnssecResolver& resolver, const std::string& domain) {
  auto mx = resolver.query(domain, kDnsMx);
  if (!mx) return error(Code::temporary, "dnssec-invalid: " + mx.status().message());
  if (mx->security == DnsSecurity::bogus)
    return error(Code::temporary, "dnssec-invalid: MX of " + domain + " is bogus (" + mx->why + ")");
  return mx->security == DnsSecurity::secure;
}

namespace {

DanePolicy unusable_policy(std::string why) {
  DanePolicy p;
  p.kind = DanePolicy::unusable;
  p.result_type = "dnssec-invalid";
  p.why = std::move(why);
  return p;
}

// The secure TLSA RRset at _PORT._tcp.BASE; `none` when there is none.
DanePolicy tlsa_policy(DnssecResolver& resolver, const std::string& base, uint16_t port) {
  DanePolicy p;
  const std::string name = "_" + std::to_string(port) + "._tcp." + base;
  auto tlsa = resolver.query(name, kDnsTlsa);
  if (!tlsa) return unusable_policy("TLSA of " + name + ": " + tlsa.status().message());
  if (tlsa->security == DnsSecurity::bogus)
    return unusable_policy("TLSA of " + name + " is bogus (" + tlsa->why + ")");
  if (tlsa->security != DnsSecurity::secure || tlsa->rdata.empty()) return p;
  for (const auto& rd : tlsa->rdata) {
    auto t = parse_tlsa(rd);
    if (t && usable_tlsa(*t)) p.records.push_back(std::move(*t));
  }
  p.kind = p.records.empty() ? DanePolicy::tls_only : DanePolicy::verify;
  p.base_domain = base;
  return p;
}

}  // namespace

DanePolicy dane_policy(DnssecResolver& resolver, const std::string& host, uint16_t port) {
  // Insecure address records leave DANE out (RFC 7672 2.2.2); a bogus one
  // makes the host unusable. A secure answer means the whole CNAME chain is.
  auto addr = resolver.query(host, kDnsA);
  if (!addr) return unusable_policy("address of " + host + ": " + addr.status().message());
  if (addr->security == DnsSecurity::bogus)
    return unusable_policy("address of " + host + " is bogus (" + addr->why + ")");
  if (addr->security != DnsSecurity::secure) return {};
  if (!addr->canonical.empty()) {
    DanePolicy p = tlsa_policy(resolver, addr->canonical, port);
    if (p.kind != DanePolicy::none) {
      p.other_name = host;
      return p;
    }
  }
  return tlsa_policy(resolver, host, port);
}

// ---- TLS --------------------------------------------------------------------------

namespace {

thread_local const DanePolicy* current_dane = nullptr;

// Runs as the handshake starts, after start_tls_client made the SSL object:
// the one moment the TLSA records can be attached without the service layer
// knowing about DANE.
void dane_info_callback(const SSL* cssl, int where, int /*ret*/) {
  if (!(where & SSL_CB_HANDSHAKE_START) || !current_dane) return;
  SSL* ssl = const_cast<SSL*>(cssl);
  if (SSL_dane_enable(ssl, current_dane->base_domain.c_str()) <= 0) return;  // then nothing verifies: no CA store
  if (!current_dane->other_name.empty()) SSL_add1_host(ssl, current_dane->other_name.c_str());
  for (const Tlsa& t : current_dane->records) {
    SSL_dane_tlsa_add(ssl, t.usage, t.selector, t.mtype, reinterpret_cast<const unsigned char*>(t.data.data()),
                      t.data.size());
  }
}

}  // namespace

DaneScope::DaneScope(const DanePolicy& policy) { current_dane = &policy; }

DaneScope::~DaneScope() { current_dane = nullptr; }

Result<std::shared_ptr<service::TlsContext>> dane_client_context() {
  MAIL_ASSIGN_OR_RETURN(auto ctx, service::TlsContext::create_client(true));
  SSL_CTX* native = ctx->native();
  // No CA is trusted: a peer is authenticated by its TLSA records or not at all.
  SSL_CTX_set_cert_store(native, X509_STORE_new());
  if (SSL_CTX_dane_enable(native) <= 0) return error(Code::internal, "OpenSSL cannot do DANE");
  SSL_CTX_dane_set_flags(native, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
  SSL_CTX_set_info_callback(native, dane_info_callback);
  return ctx;
}

}  // namespace mail::queue
