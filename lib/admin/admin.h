// The admin operations: one table that mailctl builds its command line from and
// that the supervisor's control socket serves, so both offer exactly the same
// operations with the same validation, messages and output.
//
// An operation validates everything before its first write (canonical addresses
// and IDN domains, existence, duplicates) so a refused command changes nothing
// and says precisely why; the store enforces the same rules again.
#pragma once

#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "store/store.h"

namespace mail::admin {

// What an argument holds; front ends use it for parsing hints and completion.
enum class ArgKind {
  text,      // free text (a display name)
  domain,    // a domain name, U-label or A-label
  address,   // local@domain
  source,    // an alias source: local@domain, or @domain for the catch-all
  size,      // bytes with an optional K/M/G/T suffix (1024-based), 0 or "unlimited"
  count,     // a number, 0 or "unlimited"
  password,  // a secret the front end obtains itself (prompt, file, stdin), never argv
};

struct ArgSpec {
  std::string name;  // positional: its metavariable ("ADDRESS"); option: long name ("name")
  std::string help;
  ArgKind kind = ArgKind::text;
  bool positional = false;
  bool required = false;
  bool multiple = false;  // a positional that takes every remaining value
};

// Argument values by ArgSpec::name. A password arrives under "password".
class Args {
 public:
  std::map<std::string, std::vector<std::string>> values;

  bool has(const std::string& name) const;
  // The first value, or "" when absent.
  const std::string& get(const std::string& name) const;
  const std::vector<std::string>& list(const std::string& name) const;
  void set(const std::string& name, std::string value) { values[name] = {std::move(value)}; }
};

// The result of an operation: a table for people and a JSON document for
// programs. A show is one row and a JSON object; a listing is rows and a JSON
// array. No columns: nothing to print as a table (quiet success).
struct Output {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
  std::string json;  // one serialized JSON document
};

enum class Format { table, json };

// "table" or "json"; anything else is Code::invalid.
Result<Format> parse_format(std::string_view name);

// Renders `out`: aligned columns under a header (UTF-8 aware, no trailing blanks),
// or the JSON document pretty-printed. Ends with a newline unless empty.
std::string render(const Output& out, Format format);

using Handler = std::function<Result<Output>(store::Store&, const Args&)>;

struct Operation {
  std::vector<std::string> path;  // {"domain", "add"}
  std::string help;
  std::vector<ArgSpec> args;
  Handler handler;
  bool writes = false;

  std::string name() const;  // "domain add"
};

// Help text for each command group ("domain", "account", ...), in table order.
struct Group {
  std::string name;
  std::string help;
};

std::span<const Operation> operations();
std::span<const Group> groups();

// The operation named `name` ("account add"), or nullptr.
const Operation* find_operation(std::string_view name);

// Checks `args` against the operation's ArgSpecs (required values present, no
// unknown names), then runs it.
Result<Output> run(const Operation& op, store::Store& store, const Args& args);

// Parses sizes and counts the way the table's ArgKinds describe them.
Result<uint64_t> parse_size(std::string_view text);
Result<uint64_t> parse_count(std::string_view text);
// 0 -> "unlimited"; exact multiples of 1024 -> "10M"; else the number of bytes.
std::string format_size(uint64_t bytes, bool zero_is_unlimited = true);

}  // namespace mail::admin
