#include "spam/bayes.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <random>
#include <thread>

namespace mail::spam {
namespace {

// Robinson's smoothing: a token seen n times moves from the prior x toward its
// observed probability with strength s (SpamBayes' defaults).
constexpr double kStrength = 0.45;
constexpr double kPrior = 0.5;
// Tokens closer than this to 0.5 are not clues.
constexpr double kMinDeviation = 0.1;
constexpr size_t kMaxClues = 150;
constexpr size_t kRecord = 20;

size_t shard_of(uint64_t h) { return static_cast<size_t>(h >> 60) % kShards; }

void put32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t get32(const unsigned char* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

std::string encode_shard(const Shard& shard) {
  std::string out;
  out.reserve(shard.size() * kRecord);
  for (const auto& [hash, c] : shard) {
    put32(out, static_cast<uint32_t>(hash));
    put32(out, static_cast<uint32_t>(hash >> 32));
    put32(out, c.spam);
    put32(out, c.ham);
    put32(out, c.day);
  }
  return out;
}

bool decode_shard(std::string_view in, Shard& shard) {
  if (in.size() % kRecord) return false;
  shard.reserve(shard.size() + in.size() / kRecord);
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  for (size_t i = 0; i < in.size(); i += kRecord, p += kRecord) {
    uint64_t h = uint64_t(get32(p)) | uint64_t(get32(p + 4)) << 32;
    shard[h] = Counts{get32(p + 8), get32(p + 12), get32(p + 16)};
  }
  return true;
}

// Probability that a chi-square variable with v (even) degrees of freedom is >= x2.
double chi2q(double x2, size_t v) {
  double m = x2 / 2.0;
  double term = std::exp(-m), sum = term;
  for (size_t i = 1; i < v / 2; ++i) {
    term *= m / static_cast<double>(i);
    sum += term;
  }
  return std::min(sum, 1.0);
}

char hex_digit(size_t i) { return "0123456789abcdef"[i & 15]; }

}  // namespace

uint64_t token_hash(std::string_view token) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : token) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

uint64_t message_hash(std::string_view raw) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : raw) {
    if (c == '\r') continue;
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

uint32_t today() { return static_cast<uint32_t>(std::time(nullptr) / 86400); }

size_t Model::token_count() const {
  size_t n = 0;
  for (const auto& s : tokens) n += s.size();
  return n;
}

const Counts* Model::find(uint64_t hash) const {
  const Shard& s = tokens[shard_of(hash)];
  auto it = s.find(hash);
  return it == s.end() ? nullptr : &it->second;
}

BayesResult classify(const Model& global, const Model* account, const std::vector<std::string>& tokens,
                     size_t clues) {
  BayesResult r;
  double nspam = static_cast<double>(global.meta.nspam + (account ? account->meta.nspam : 0));
  double nham = static_cast<double>(global.meta.nham + (account ? account->meta.nham : 0));
  if (nspam < kMinTrained || nham < kMinTrained) return r;
  r.used = true;
  struct Scored {
    double f;
    size_t index;
  };
  std::vector<Scored> scored;
  scored.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    uint64_t h = token_hash(tokens[i]);
    double s = 0, hm = 0;
    if (const Counts* c = global.find(h)) s += c->spam, hm += c->ham;
    if (account)
      if (const Counts* c = account->find(h)) s += c->spam, hm += c->ham;
    if (s + hm == 0) continue;
    double sr = s / nspam, hr = hm / nham;
    double p = sr / (sr + hr);
    double n = s + hm;
    double f = (kStrength * kPrior + n * p) / (kStrength + n);
    if (std::fabs(f - 0.5) < kMinDeviation) continue;
    scored.push_back({f, i});
  }
  auto stronger = [](const Scored& a, const Scored& b) {
    double da = std::fabs(a.f - 0.5), db = std::fabs(b.f - 0.5);
    return da != db ? da > db : a.index < b.index;
  };
  if (scored.size() > kMaxClues) {
    std::nth_element(scored.begin(), scored.begin() + kMaxClues, scored.end(), stronger);
    scored.resize(kMaxClues);
  }
  if (scored.empty()) return r;
  double ln_h = 0, ln_s = 0;
  for (const auto& c : scored) {
    ln_h += std::log(c.f);
    ln_s += std::log(1.0 - c.f);
  }
  size_t n = scored.size();
  double s = 1.0 - chi2q(-2.0 * ln_s, 2 * n);
  double h = 1.0 - chi2q(-2.0 * ln_h, 2 * n);
  r.probability = std::clamp((s - h + 1.0) / 2.0, 0.0, 1.0);
  if (clues) {
    std::sort(scored.begin(), scored.end(), stronger);
    for (size_t i = 0; i < std::min(clues, scored.size()); ++i)
      r.clues.push_back({tokens[scored[i].index], scored[i].f});
  }
  return r;
}

Result<std::shared_ptr<Model>> TokenStore::load(store::AccountId account, Stats* stats) {
  MAIL_ASSIGN_OR_RETURN(auto scan, store_.data_scan({account, std::string(kNamespace), "", 0}));
  auto m = std::make_shared<Model>();
  for (const auto& item : scan.items) {
    if (stats) stats->bytes += item.value.size();
    bool ok = true;
    if (item.key == "meta") {
      ok = decode(item.value, m->meta);
    } else if (item.key.size() == 3 && item.key[1] == '/' && (item.key[0] == 't' || item.key[0] == 's')) {
      auto& shards = item.key[0] == 't' ? m->tokens : m->seen;
      size_t i = static_cast<size_t>(std::find(std::begin("0123456789abcdef"), std::end("0123456789abcdef"),
                                               item.key[2]) -
                                     std::begin("0123456789abcdef"));
      ok = i < kShards && decode_shard(item.value, shards[i]);
    }
    if (!ok) return error(Code::corrupt, "spam data of account " + std::to_string(account) + ": bad " + item.key);
  }
  return m;
}

Result<std::shared_ptr<const Model>> TokenStore::model(store::AccountId account) {
  MAIL_ASSIGN_OR_RETURN(auto v, store_.data_get({account, std::string(kNamespace), "meta"}));
  Meta meta;
  if (v.found && !decode(v.value, meta)) return error(Code::corrupt, "spam meta undecodable");
  {
    std::lock_guard lock(mu_);
    auto it = cache_.find(account);
    if (it != cache_.end() && it->second->meta.generation == meta.generation) return it->second;
  }
  if (!v.found) {
    auto empty = std::make_shared<const Model>();
    return empty;
  }
  MAIL_ASSIGN_OR_RETURN(auto loaded, load(account, nullptr));
  std::shared_ptr<const Model> m = std::move(loaded);
  std::lock_guard lock(mu_);
  if (cache_.size() >= 256) cache_.clear();  // many accounts: start over rather than grow
  cache_[account] = m;
  return m;
}

Result<Stats> TokenStore::stats(store::AccountId account) {
  Stats st;
  MAIL_ASSIGN_OR_RETURN(auto m, load(account, &st));
  st.meta = m->meta;
  st.tokens = m->token_count();
  for (const auto& s : m->seen) st.messages_seen += s.size();
  return st;
}

Result<TrainResult> TokenStore::train(store::AccountId account, const std::vector<TrainItem>& items, bool spam,
                                      bool untrain, uint32_t day, uint32_t expiry_days) {
  std::lock_guard train_lock(train_mu_);
  MAIL_ASSIGN_OR_RETURN(auto m, load(account, nullptr));
  TrainResult r;
  std::array<bool, kShards> dirty_tokens{}, dirty_seen{};
  auto apply = [&](const std::vector<std::string>& tokens, bool as_spam, int delta) {
    for (const auto& t : tokens) {
      uint64_t h = token_hash(t);
      size_t sh = shard_of(h);
      dirty_tokens[sh] = true;
      Counts& c = m->tokens[sh][h];
      uint32_t& n = as_spam ? c.spam : c.ham;
      n = delta > 0 ? n + 1 : (n ? n - 1 : 0);
      if (delta > 0) c.day = day;
      if (c.spam == 0 && c.ham == 0) m->tokens[sh].erase(h);
    }
    uint64_t& n = as_spam ? m->meta.nspam : m->meta.nham;
    n = delta > 0 ? n + 1 : (n ? n - 1 : 0);
  };
  for (const auto& item : items) {
    size_t sh = shard_of(item.message);
    dirty_seen[sh] = true;
    auto it = m->seen[sh].find(item.message);
    bool known = it != m->seen[sh].end();
    bool was_spam = known && it->second.spam > 0;
    if (untrain) {
      if (!known) {
        ++r.skipped;
        continue;
      }
      apply(item.tokens, was_spam, -1);
      m->seen[sh].erase(it);
      ++r.unlearned;
      continue;
    }
    if (known && was_spam == spam) {
      ++r.skipped;
      continue;
    }
    if (known) {
      apply(item.tokens, was_spam, -1);
      ++r.relearned;
    } else {
      ++r.learned;
    }
    apply(item.tokens, spam, +1);
    m->seen[sh][item.message] = Counts{spam ? 1u : 0u, spam ? 0u : 1u, day};
  }
  if (expiry_days && day > m->meta.last_expire_day && day > expiry_days) {
    uint32_t oldest = day - expiry_days;
    for (size_t i = 0; i < kShards; ++i) {
      for (auto* shards : {&m->tokens, &m->seen}) {
        Shard& s = (*shards)[i];
        size_t before = s.size();
        std::erase_if(s, [&](const auto& kv) { return kv.second.day < oldest; });
        if (s.size() != before) {
          (shards == &m->tokens ? dirty_tokens : dirty_seen)[i] = true;
          if (shards == &m->tokens) r.expired += before - s.size();
        }
      }
    }
    m->meta.last_expire_day = day;
  }
  // The shards concurrently, so that the store commits them together, then the
  // meta, whose new generation tells classifiers to reload.
  std::vector<std::thread> writers;
  std::vector<Status> results(2 * kShards);
  for (size_t i = 0; i < kShards; ++i) {
    for (int kind = 0; kind < 2; ++kind) {
      if (!(kind ? dirty_seen[i] : dirty_tokens[i])) continue;
      size_t slot = 2 * i + static_cast<size_t>(kind);
      std::string key = std::string(kind ? "s/" : "t/") + hex_digit(i);
      std::string value = encode_shard(kind ? m->seen[i] : m->tokens[i]);
      writers.emplace_back([this, account, slot, &results, k = std::move(key), v = std::move(value)]() mutable {
        auto put = store_.data_put({{account, std::string(kNamespace), std::move(k)}, std::move(v)});
        results[slot] = put.status();
      });
    }
  }
  for (auto& t : writers) t.join();
  for (const auto& s : results)
    if (!s.is_ok()) return s;
  std::random_device rd;
  m->meta.generation = (uint64_t(rd()) << 32) | rd();
  MAIL_TRY(store_.data_put({{account, std::string(kNamespace), "meta"}, encode(m->meta)}).status());
  std::lock_guard lock(mu_);
  cache_[account] = m;
  return r;
}

}  // namespace mail::spam
