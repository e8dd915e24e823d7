// Turns a message into what the classifier and the rules look at: the tokens
// (decoded header words tagged by field, body words with HTML reduced to text,
// link hosts, attachment types) and the facts the rules test (header values,
// links, the decoded text). Never fails: broken MIME gives what could be read.
// Everything is bounded (bytes scanned, text kept, tokens, links) so garbage
// cannot run away with memory or time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mail::spam {

struct Limits {
  size_t max_message = 4u << 20;    // bytes of a message looked at; the rest is ignored
  size_t max_part_text = 256u << 10;  // decoded bytes of one text part
  size_t max_text = 1u << 20;       // decoded text of all parts together
  size_t max_tokens = 4000;         // distinct tokens
  size_t max_links = 200;
};

struct Link {
  std::string url;   // as written (bounded)
  std::string host;  // lower case, "" when none could be read
};

struct Analysis {
  std::vector<std::string> tokens;  // distinct, in order of first appearance

  // Header fields, unfolded and RFC 2047 decoded; `present` tells absent from empty.
  std::string subject, from, reply_to, to, date, message_id, mailer;
  bool has_subject = false, has_from = false, has_date = false, has_message_id = false;
  int64_t date_time = 0;  // Date: as unix time; 0 when absent or unreadable
  std::vector<std::string> received;              // as written, top first
  std::vector<std::string> authentication_results;

  std::string text;          // decoded body text (HTML as text), bounded by Limits::max_text
  std::vector<Link> links;   // from text and HTML href/src
  uint32_t text_parts = 0, html_parts = 0, attachments = 0;
  bool html_only = false;    // HTML without a text/plain alternative
  bool truncated = false;    // a limit was reached
  std::string header;        // the top header block (bounded), for rules on other fields

  // Decoded values of any field of the top header.
  std::vector<std::string> other_headers(std::string_view name) const;
};

Analysis analyze(std::string_view raw, const Limits& limits = {});

// Reduces HTML to its text, appending link targets (href, src) to `links`.
std::string html_to_text(std::string_view html, std::vector<Link>* links, size_t max_links);

// The lower-case host of a URL ("http://User@Ex.COM:80/x" -> "ex.com"); "" if none.
std::string url_host(std::string_view url);

}  // namespace mail::spam
