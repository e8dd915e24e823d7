#include "queue/mta_sts.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <chrono>

#include "auth/tag_list.h"
#include "base/lines.h"
#include "base/log.h"
#include "queue/route.h"
#include "queue/smtp_client.h"

namespace mail::queue {

namespace {

constexpr size_t kMaxPolicy = 64 * 1024;  // RFC 8461 3.3: senders may limit the size
constexpr uint32_t kMaxAge = 31557600;    // RFC 8461 3.2: one year

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return out;
}

bool is_alnum(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// A host name: labels of letters, digits and inner hyphens; "*." in front for a pattern.
bool valid_mx_pattern(std::string_view v) {
  if (v.substr(0, 2) == "*.") v.remove_prefix(2);
  if (v.empty() || v.size() > 253) return false;
  size_t label = 0;
  for (size_t i = 0; i <= v.size(); ++i) {
    if (i == v.size() || v[i] == '.') {
      if (label == 0 || label > 63 || v[i - 1] == '-') return false;
      label = 0;
      continue;
    }
    if (!is_alnum(v[i]) && !(v[i] == '-' && label > 0)) return false;
    ++label;
  }
  return true;
}

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

}  // namespace

bool StsPolicy::allows(std::string_view host) const {
  std::string h = auth::dns_name_key(host);
  for (const std::string& p : mx) {
    if (p.substr(0, 2) == "*.") {
      // the wildcard stands for exactly one leftmost label (RFC 8461 4.1)
      size_t dot = h.find('.');
      if (dot != std::string::npos && dot > 0 && h.substr(dot + 1) == p.substr(2)) return true;
    } else if (h == p) {
      return true;
    }
  }
  return false;
}

Result<StsPolicy> parse_sts_policy(std::string_view text) {
  StsPolicy p;
  bool version = false, mode = false, max_age = false;
  size_t line_no = 0;
  while (!text.empty()) {
    std::string_view line = next_line(text);
    ++line_no;
    while (!line.empty() && is_wsp(line.back())) line.remove_suffix(1);
    auto bad = [&](const std::string& why) {
      return error(Code::invalid, "MTA-STS policy line " + std::to_string(line_no) + ": " + why);
    };
    if (line.empty()) {
      // only the end may be blank
      for (char c : text)
        if (c != '\r' && c != '\n' && !is_wsp(c)) return bad("blank line");
      break;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon > 32) return bad("not \"key: value\"");
    std::string key = lower(line.substr(0, colon));
    for (char c : key)
      if (!is_alnum(c) && c != '_' && c != '-' && c != '.') return bad("bad key");
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && is_wsp(value.front())) value.remove_prefix(1);
    if (value.empty()) return bad("empty value");
    for (char c : value)
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t') return bad("control character");
    if (key == "version") {
      if (version) return bad("version given twice");
      if (value != "STSv1") return bad("unknown version");
      version = true;
    } else if (key == "mode") {
      if (mode) return bad("mode given twice");
      if (value == "enforce") p.mode = static_cast<uint8_t>(StsMode::enforce);
      else if (value == "testing") p.mode = static_cast<uint8_t>(StsMode::testing);
      else if (value == "none") p.mode = static_cast<uint8_t>(StsMode::none);
      else return bad("unknown mode");
      mode = true;
    } else if (key == "max_age") {
      if (max_age) return bad("max_age given twice");
      if (value.size() > 10) return bad("bad max_age");
      uint64_t n = 0;
      for (char c : value) {
        if (c < '0' || c > '9') return bad("bad max_age");
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      p.max_age = static_cast<uint32_t>(std::min<uint64_t>(n, kMaxAge));
      max_age = true;
    } else if (key == "mx") {
      if (!valid_mx_pattern(value)) return bad("bad mx pattern");
      if (p.mx.size() >= 256) return bad("too many mx patterns");
      p.mx.push_back(lower(value));
    }  // other keys are extensions: ignored
  }
  if (!version) return error(Code::invalid, "MTA-STS policy without version");
  if (!mode) return error(Code::invalid, "MTA-STS policy without mode");
  if (!max_age) return error(Code::invalid, "MTA-STS policy without max_age");
  if (p.mx.empty() && p.sts_mode() != StsMode::none) return error(Code::invalid, "MTA-STS policy without mx");
  return p;
}

Result<std::string> parse_sts_record(std::string_view txt) {
  if (txt.substr(0, 7) != "v=STSv1") return error(Code::invalid, "not an MTA-STS record");
  MAIL_ASSIGN_OR_RETURN(auth::TagList tags, auth::parse_tag_list(txt));
  if (tags.tags.empty() || tags.tags[0].name != "v" || tags.tags[0].value != "STSv1")
    return error(Code::invalid, "not an MTA-STS record");
  const auth::Tag* id = tags.find("id");
  if (!id || id->value.empty() || id->value.size() > 32) return error(Code::invalid, "MTA-STS record without a valid id");
  for (char c : id->value)
    if (!is_alnum(c)) return error(Code::invalid, "MTA-STS record without a valid id");
  return std::string(id->value);
}

Result<std::string> parse_sts_http_response(std::string_view raw) {
  size_t end = raw.find("\r\n\r\n");
  size_t skip = 4;
  if (end == std::string_view::npos) {
    end = raw.find("\n\n");
    skip = 2;
  }
  if (end == std::string_view::npos) return error(Code::invalid, "incomplete HTTP response");
  std::string_view head = raw.substr(0, end), body = raw.substr(end + skip);
  size_t nl = head.find('\n');
  std::string_view status = head.substr(0, nl);
  if (!status.empty() && status.back() == '\r') status.remove_suffix(1);
  if (status.substr(0, 5) != "HTTP/" || status.find(' ') == std::string_view::npos)
    return error(Code::invalid, "not an HTTP response");
  std::string_view code = status.substr(status.find(' ') + 1, 3);
  if (code != "200")  // redirects are not followed (RFC 8461 3.3)
    return error(Code::invalid, "HTTP status " + std::string(code));
  bool text_plain = false;
  std::optional<size_t> length;
  head = nl == std::string_view::npos ? std::string_view() : head.substr(nl + 1);
  while (!head.empty()) {
    nl = head.find('\n');
    std::string_view line = head.substr(0, nl);
    head = nl == std::string_view::npos ? std::string_view() : head.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name = lower(line.substr(0, colon));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && is_wsp(value.front())) value.remove_prefix(1);
    if (name == "content-type") {
      text_plain = lower(value.substr(0, 10)) == "text/plain" &&
                   (value.size() == 10 || value[10] == ';' || is_wsp(value[10]));
    } else if (name == "content-length") {
      if (value.empty() || value.size() > 9) return error(Code::invalid, "bad Content-Length");
      size_t n = 0;
      for (char c : value) {
        if (c < '0' || c > '9') return error(Code::invalid, "bad Content-Length");
        n = n * 10 + static_cast<size_t>(c - '0');
      }
      length = n;
    } else if (name == "transfer-encoding") {
      return error(Code::invalid, "unexpected Transfer-Encoding");
    }
  }
  if (!text_plain) return error(Code::invalid, "policy is not text/plain");
  if (length) {
    if (body.size() < *length) return error(Code::invalid, "policy cut short");
    body = body.substr(0, *length);
  }
  if (body.size() > kMaxPolicy) return error(Code::invalid, "policy too large");
  return std::string(body);
}

Result<std::shared_ptr<service::TlsContext>> verifying_client_context(const std::string& ca_file) {
  MAIL_ASSIGN_OR_RETURN(auto ctx, service::TlsContext::create_client(true));
  if (!ca_file.empty() && SSL_CTX_load_verify_locations(ctx->native(), ca_file.c_str(), nullptr) != 1) {
    ERR_clear_error();
    return error(Code::config, "cannot load the CA file " + ca_file);
  }
  return ctx;
}

Result<std::string> fetch_sts_policy(auth::Resolver& resolver, const service::TlsContext& tls,
                                     const std::string& domain, uint16_t port, int timeout_ms) {
  const std::string host = "mta-sts." + domain;
  auto addrs = host_addresses(resolver, host);
  if (!addrs) return error(Code::temporary, host + ": " + addrs.status().message());
  if (addrs->empty()) return error(Code::temporary, host + " has no address");
  std::string last = host + ": not reached";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (const std::string& ip : *addrs) {
    auto fd = connect_to(ip, port, timeout_ms);
    if (!fd) {
      last = host + "[" + ip + "]: " + fd.status().message();
      continue;
    }
    service::Stream stream(*fd);
    if (auto st = stream.start_tls_client(tls, host, timeout_ms); !st) {
      last = host + "[" + ip + "]: TLS: " + st.message();
      continue;
    }
    if (auto st = stream.write_all("GET /.well-known/mta-sts.txt HTTP/1.0\r\nHost: " + host +
                                   "\r\nUser-Agent: mailtk\r\nConnection: close\r\n\r\n");
        !st) {
      last = host + "[" + ip + "]: " + st.message();
      continue;
    }
    // HTTP/1.0: the body ends when the server closes (no chunked encoding).
    std::string raw;
    bool complete = false;
    while (raw.size() <= kMaxPolicy + 16384) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      char buf[8192];
      auto got = stream.read_some(buf, sizeof buf, static_cast<int>(left.count()));
      if (!got) break;
      if (*got == 0) {
        complete = true;
        break;
      }
      raw.append(buf, *got);
    }
    if (!complete) {
      last = host + "[" + ip + "]: no complete answer";
      continue;
    }
    return parse_sts_http_response(raw);
  }
  return error(Code::temporary, last);
}

std::optional<StsPolicy> StsPolicies::cached(const std::string& domain) {
  auto v = store_.data_get(store::DataKey{0, "mta-sts", domain});
  if (!v || !v->found) return std::nullopt;
  StsPolicy p;
  if (!decode(v->value, p)) return std::nullopt;
  return p;
}

void StsPolicies::save(const std::string& domain, const StsPolicy& policy) {
  auto st = store_.data_put(store::DataPutReq{store::DataKey{0, "mta-sts", domain}, encode(policy)});
  if (!st) log::warn("mta-sts: cannot cache the policy of {}: {}", domain, st.status().to_string());
}

std::optional<StsPolicy> StsPolicies::get(const std::string& domain, int64_t now) {
  std::optional<StsPolicy> cache = cached(domain);
  if (cache && cache->expired(now)) cache.reset();
  auto txt = resolver_.lookup("_mta-sts." + domain, auth::DnsType::txt);
  std::optional<std::string> id;
  size_t records = 0;
  if (txt) {
    for (const std::string& r : *txt) {
      if (r.substr(0, 7) != "v=STSv1") continue;
      ++records;
      if (auto parsed = parse_sts_record(r)) id = *parsed;
    }
  }
  if (records != 1 || !id) return cache;  // no (single valid) record: a cached policy still holds (RFC 8461 5.1)
  if (cache && cache->id == *id) return cache;
  auto text = fetch_sts_policy(resolver_, *tls_, domain, port_, timeout_ms_);
  if (!text) {
    log::warn("mta-sts: {}: cannot fetch the policy: {}{}", domain, text.status().message(),
              cache ? " (using the cached one)" : "");
    return cache;
  }
  auto policy = parse_sts_policy(*text);
  if (!policy) {
    log::warn("mta-sts: {}: {}{}", domain, policy.status().message(), cache ? " (using the cached one)" : "");
    return cache;
  }
  policy->id = *id;
  policy->fetched = now;
  save(domain, *policy);
  return *policy;
}

}  // namespace mail::queue
