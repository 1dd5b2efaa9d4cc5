// Command-line flags of one subcommand: `--name=value`, `--name value`, boolean
// `--name`, repeatable flags (`--set a=1 --set b=2`) and positional arguments.
//
// Why not Abseil's flags: they are process-global, so a subcommand could not reject
// another subcommand's flags or print only its own in --help, and a repeated flag keeps
// only its last value, which --set must accumulate. Values are parsed with Abseil.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace attnlab::cli {

struct FlagSpec {
  std::string name;  // without dashes
  std::string help;
  bool takes_value = true;
  bool repeated = false;
};

class ParsedFlags {
 public:
  bool Has(const std::string& name) const { return values_.count(name) != 0; }
  std::string Get(const std::string& name, const std::string& fallback = "") const;
  const std::vector<std::string>& GetAll(const std::string& name) const;
  absl::StatusOr<int64_t> GetInt(const std::string& name, int64_t fallback) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  friend absl::StatusOr<ParsedFlags> ParseFlags(const std::vector<std::string>&,
                                                const std::vector<FlagSpec>&);
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
};

// Unknown flags are errors naming the closest known flag.
absl::StatusOr<ParsedFlags> ParseFlags(const std::vector<std::string>& args,
                                       const std::vector<FlagSpec>& specs);
// "  --name=VALUE   help" lines for a usage text.
std::string FlagsHelp(const std::vector<FlagSpec>& specs);

// Flags shared by the commands that train or run a model.
FlagSpec ThreadsFlag();
// Applies --threads (if given) to OpenMP and oneDNN.
absl::Status ApplyThreadsFlag(const ParsedFlags& flags);

}  // namespace attnlab::cli
