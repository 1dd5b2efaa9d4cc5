// The config loader: a TOML file that may inherit (`base = "..."`) from fixed files
// beside it, then `--set` overrides. The input is "<config text>\n---\n<override>\n...".
//
// Besides never crashing, a loaded config must print (ToToml, the resolved config every
// run saves and every checkpoint carries) as text that parses back to the same config.
#include <string>

#include "experiments/config/config.h"
#include "framework/core/error.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using attnlab::experiments::Config;

// The files a fuzzed config can name as its base: a complete config, one that inherits
// it, and one that inherits the fuzzed file itself (a cycle).
constexpr const char* kBaseConfig = R"(
[task]
name = "copy"
vocab_size = 10
min_length = 10
max_length = 10

[model]
type = "transformer"
d_model = 128
heads = 4
d_ff = 512
dropout = 0.1

[train]
lr = 1.0
warmup_steps = 400
max_steps = 1200
label_smoothing = 0.1
)";
constexpr const char* kMiddleConfig = R"(base = "base.toml"
[model]
norm = "pre"
attention = "additive"
)";
constexpr const char* kCycleConfig = "base = \"fuzz.toml\"\n";

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  attnlab::fuzz::WriteScratchFile("base.toml", kBaseConfig);
  attnlab::fuzz::WriteScratchFile("middle.toml", kMiddleConfig);
  attnlab::fuzz::WriteScratchFile("cycle.toml", kCycleConfig);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const attnlab::fuzz::TextAndLines input =
      attnlab::fuzz::SplitAtSeparator(attnlab::fuzz::AsText(data, size));
  const std::string path = attnlab::fuzz::WriteScratchFile("fuzz.toml", input.text);
  const absl::StatusOr<Config> config = Config::Load(path, input.lines);
  if (!config.ok()) return 0;

  const std::string resolved = config->ToToml();
  const absl::StatusOr<Config> reloaded = Config::Parse(resolved, "resolved.toml");
  ATTNLAB_CHECK(reloaded.ok(),
                "the resolved config does not parse back: ", reloaded.status().message(), "\n",
                resolved);
  ATTNLAB_CHECK(reloaded->ToToml() == resolved, "the resolved config changes when reloaded:\n",
                resolved, "\nbecame\n", reloaded->ToToml());
  return 0;
}
