// `attnlab keys`: prints the config reference (experiments/CONFIG.md is its output).
#include <cstdio>

#include "experiments/config/schema.h"
#include "tools/cli/command.h"

namespace attnlab::cli {
namespace {

absl::Status RunKeys(const std::vector<std::string>& args) {
  if (!args.empty()) return absl::InvalidArgumentError("attnlab keys takes no arguments");
  std::printf("%s", experiments::ConfigReferenceMarkdown().c_str());
  return absl::OkStatus();
}

ATTNLAB_COMMAND(keys, "keys", "print every config key with its type, default and meaning",
                "usage: attnlab keys\n\nPrints the config reference as markdown "
                "(experiments/CONFIG.md is generated with `attnlab keys > experiments/CONFIG.md`).",
                RunKeys);

}  // namespace
}  // namespace attnlab::cli
