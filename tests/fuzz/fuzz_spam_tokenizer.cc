// Fuzzes the spam tokenizer and the rules on arbitrary messages: MIME trees,
// encodings, HTML and links from the input. Nothing may crash, and the limits
// (tokens, text, links) must hold whatever the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "spam/rules.h"
#include "spam/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view raw(reinterpret_cast<const char*>(data), size);
  mail::spam::Limits limits;
  limits.max_message = 256u << 10;  // smaller limits reach the truncation paths sooner
  limits.max_part_text = 16u << 10;
  limits.max_text = 64u << 10;
  limits.max_tokens = 500;
  limits.max_links = 20;
  mail::spam::Analysis a = mail::spam::analyze(raw, limits);
  if (a.tokens.size() > limits.max_tokens || a.links.size() > limits.max_links + 2 ||
      a.text.size() > limits.max_text + 64)
    std::abort();
  static const mail::spam::RuleSet rules;
  mail::spam::BayesResult bayes;
  (void)rules.evaluate(a, bayes, {});
  (void)mail::spam::html_to_text(raw, nullptr, 0);
  return 0;
}
