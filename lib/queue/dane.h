// DANE for SMTP (RFC 7672, with RFC 7671/6698): TLSA records at
// _PORT._tcp.MXHOST, looked up through a DNSSEC-validating resolver, pin the
// MX host's certificate (DANE-EE) or its issuer (DANE-TA). Only a secure TLSA
// RRset counts, and only for MX names taken from a secure MX answer; a bogus
// answer or a failed lookup defers, never downgrades to plain TLS.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "service/tls.h"

namespace mail::queue {

// RR types asked through the validating resolver.
inline constexpr uint16_t kDnsA = 1, kDnsMx = 15, kDnsDnskey = 48, kDnsTlsa = 52;

struct Tlsa {
  uint8_t usage = 0;     // 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE
  uint8_t selector = 0;  // 0 full certificate, 1 SubjectPublicKeyInfo
  uint8_t mtype = 0;     // 0 exact, 1 SHA-256, 2 SHA-512
  std::string data;      // the certificate association data (binary)
};

// TLSA rdata (RFC 6698 2.1); nullopt when it is too short.
std::optional<Tlsa> parse_tlsa(std::string_view rdata);

// Whether SMTP may use the record (RFC 7672 3.1): DANE-TA or DANE-EE, selector
// 0 or 1, matching type 0, 1 or 2, with data of the digest's length. PKIX-TA
// and PKIX-EE are unusable (a sender cannot know which CAs the receiver meant).
bool usable_tlsa(const Tlsa& record);

enum class DnsSecurity { secure, insecure, bogus };

struct SecureAnswer {
  DnsSecurity security = DnsSecurity::insecure;
  bool nxdomain = false;
  std::vector<std::string> rdata;  // raw, one per record
  std::string why;                 // bogus: the validator's reason
  std::string canonical;           // the name after CNAME expansion, when it is not the one asked (lower case, no dot)
};

// DNS answers with their DNSSEC status. Code::temporary: the lookup failed
// (timeout, server failure other than a validation failure).
class DnssecResolver {
 public:
  virtual ~DnssecResolver() = default;
  virtual Result<SecureAnswer> query(const std::string& name, uint16_t type) = 0;
};

// libunbound validating from the trust anchors in `trust_anchor_file` (zone
// file DS/DNSKEY lines, as Debian's /usr/share/dns/root.key), asking `server`
// ("IP" or "IP@PORT", as queue.resolver) or /etc/resolv.conf's when empty.
// Code::config when the file cannot be read.
Result<std::unique_ptr<DnssecResolver>> make_dnssec_resolver(const std::string& server,
                                                             const std::string& trust_anchor_file);

// Whether `resolver` validates: the DNSKEY of the first trust anchor's owner
// must come back secure. Code::unavailable when it comes back insecure or bogus
// (a forwarder that strips DNSSEC would make every answer bogus and defer all
// mail); a lookup failure passes (the DNS may just be down for now).
Status check_validation(DnssecResolver& resolver, const std::string& trust_anchor_file);

// Answers from a map, for tests: name (lower case, no trailing dot) and type.
class StubDnssecResolver : public DnssecResolver {
 public:
  void add(const std::string& name, uint16_t type, SecureAnswer answer) { answers_[{name, type}] = std::move(answer); }
  Result<SecureAnswer> query(const std::string& name, uint16_t type) override;

 private:
  std::map<std::pair<std::string, uint16_t>, SecureAnswer> answers_;
};

// What DANE asks of the session with one MX host.
struct DanePolicy {
  enum Kind {
    none,      // no secure TLSA RRset: opportunistic TLS (or MTA-STS) as without DANE
    verify,    // usable records: STARTTLS and a certificate matching them
    tls_only,  // a secure RRset with no usable record: STARTTLS, unauthenticated (RFC 7672 2.2)
    unusable,  // bogus or failed lookups: this host must not be tried now
  } kind = none;
  std::vector<Tlsa> records;  // verify: the usable ones
  std::string base_domain;    // verify: where the records were found, the SNI and first name a DANE-TA peer may have
  std::string other_name;     // verify: the MX name when the records were found at its CNAME target (also accepted)
  std::string why;            // unusable: the reason, for logs and the DSN
  std::string result_type;    // unusable: the RFC 8460 result type
};

// Whether DANE applies to `domain`'s MX hosts: its MX (or, without MX, its
// address) answer is secure. Code::temporary with the RFC 8460 "dnssec-invalid"
// reason when that answer is bogus or cannot be had.
Result<bool> dane_domain_secure(DnssecResolver& resolver, const std::string& domain);

// The TLSA policy of `host` on `port` (_PORT._tcp.HOST, RFC 7672 2.2), for a
// host named by a secure MX answer. The host's address records must be secure
// too, or DANE does not apply. When `host` is an alias, the records at the
// CNAME-expanded name come first, then those at `host` (RFC 7672 2.2.2).
DanePolicy dane_policy(DnssecResolver& resolver, const std::string& host, uint16_t port);

// A client context whose handshakes check the peer against the TLSA records
// of the DaneScope active on the calling thread (OpenSSL's DANE: for DANE-EE
// neither names nor dates are checked; DANE-TA checks the name).
Result<std::shared_ptr<service::TlsContext>> dane_client_context();

// The records and names of a `verify` policy the handshakes on this thread
// check, while it lives. The SMTP client shakes hands on the thread that
// opens it, so the runner wraps open() in one.
class DaneScope {
 public:
  explicit DaneScope(const DanePolicy& policy);
  ~DaneScope();
  DaneScope(const DaneScope&) = delete;
  DaneScope& operator=(const DaneScope&) = delete;
};

}  // namespace mail::queue
