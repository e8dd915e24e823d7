// The IMAP command parser: pure (no I/O), so it can be fuzzed. It works on one
// complete command as the connection assembled it: the command line with each
// literal's bytes inline after its "{n}\r\n" marker, ending in CRLF.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mail::imap {

// One range of a sequence set; 0 stands for '*' (the largest number in use).
struct SeqRange {
  uint32_t lo = 0;
  uint32_t hi = 0;
};
struct SeqSet {
  bool saved = false;  // '$' (SEARCHRES)
  std::vector<SeqRange> ranges;
  // Whether n is in the set, with '*' meaning `max`.
  bool contains(uint32_t n, uint32_t max) const;
};

// Where a literal marker ends a line: the size, whether it is non-synchronizing
// (LITERAL+ "{n+}") and whether it is a literal8 ("~{n}").
struct LiteralMarker {
  uint64_t size = 0;
  bool non_sync = false;
  bool binary = false;
};
// Inspects a line (without its CRLF); nullopt when it does not end in a literal marker.
std::optional<LiteralMarker> literal_at_end(std::string_view line);

class Parser {
 public:
  explicit Parser(std::string_view in) : in_(in) {}

  bool at_end() const { return pos_ >= in_.size() || rest_is_crlf(); }
  char peek() const { return pos_ < in_.size() ? in_[pos_] : '\0'; }
  // A literal starts here: "{" or literal8's "~{" ("~foo" is an atom).
  bool at_literal() const {
    return peek() == '{' || (peek() == '~' && pos_ + 1 < in_.size() && in_[pos_ + 1] == '{');
  }
  bool consume(char c);
  bool consume_ci(std::string_view word);  // a case-insensitive keyword (no delimiter check)
  bool space() { return consume(' '); }
  // Sets the error (first one wins) and returns false.
  bool fail(std::string why);
  const std::string& error() const { return error_; }
  bool ok() const { return error_.empty(); }
  size_t pos() const { return pos_; }

  std::optional<std::string> tag();
  std::optional<std::string> atom();  // ATOM-CHAR run, as given
  // An ATOM-CHAR run that stops at '[' too (FETCH item names before a section).
  std::optional<std::string> item_name();
  // An atom that may also contain ']' (flag keywords, section text) is not needed:
  // flags use flag().
  std::optional<std::string> astring();
  std::optional<std::string> string();  // quoted or literal
  std::optional<std::string> nstring();  // NIL -> ""(with nil flag)
  std::optional<std::string> flag();  // \Seen, keyword
  std::optional<std::vector<std::string>> flag_list();  // "(" flags ")" or a single flag
  std::optional<uint64_t> number();
  std::optional<uint32_t> nz_number();
  std::optional<SeqSet> sequence_set();
  // A literal read as raw bytes (APPEND), also reporting whether it was literal8.
  std::optional<std::string> literal(bool* binary = nullptr);
  // Skips a complete parenthesised list or one token (for unknown extension data).
  bool skip_value();
  // The rest of the command up to CRLF (AUTHENTICATE responses).
  std::string_view rest() const;

 private:
  bool rest_is_crlf() const;
  std::string_view in_;
  size_t pos_ = 0;
  std::string error_;
  int depth_ = 0;
};

bool is_atom_char(char c);

// The RETURN (...) options of ESEARCH (RFC 4731) and ESORT (RFC 5267).
struct ReturnOptions {
  bool given = false;  // RETURN was there: answer with ESEARCH
  bool min = false, max = false, all = false, count = false, save = false;
};
// Reads "RETURN (...) " when it comes next; returns why not for BAD.
// RETURN () means ALL.
std::optional<std::string> parse_return_options(Parser& p, ReturnOptions& r);

// SELECT/EXAMINE's QRESYNC parameter (RFC 7162 3.2.5), after "QRESYNC SP":
// "(" uidvalidity SP modseq [SP known-uids] [SP "(" known-seqs SP known-uids ")"] ")".
struct QresyncParams {
  uint32_t uidvalidity = 0;
  uint64_t modseq = 0;
  std::optional<SeqSet> known_uids;
  // seq-match-data only helps a server that forgot expunges; ours keeps them
  // all, so it is checked for syntax and not used.
  std::optional<SeqSet> match_seqs, match_uids;
};
std::optional<QresyncParams> parse_qresync_params(Parser& p);

}  // namespace mail::imap
