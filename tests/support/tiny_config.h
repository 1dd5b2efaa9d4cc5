// The tiny copy-task config of the experiments tests: 30 steps of a 1 + 1-layer, 16-wide
// Transformer on 200 copy examples, well under a second. It is the one tiny config; a
// test that needs other values names them as overrides ("table.key=value").
//
//   const Config config = TinyConfig({"train.accumulation=3"});      // in process
//   WriteFile(directory_ / "tiny.toml", TinyConfigToml(kShortRun));  // for the binary
//   WriteFile(directory_ / "study.toml", kTinyStudy);                 // and a study of it
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/config/config.h"
#include "gtest/gtest.h"

namespace attnlab::experiments::testing {

inline constexpr char kTinyConfig[] = R"toml(
[experiment]
seed = 7
threads = 1

[task]
name = "copy"
vocab_size = 5
min_length = 3
max_length = 5
train_size = 200
valid_size = 20
test_size = 20

[model]
d_model = 16
heads = 2
d_ff = 32
encoder_layers = 1
decoder_layers = 1

[train]
lr = 0.003
schedule = "constant"
max_steps = 30
eval_every = 10
log_every = 5
checkpoint_every = 10
batch_tokens = 64

[eval]
samples = 4
attention_plots = 2
)toml";

// For tests that start many runs (ablations, the fault suite): 20 steps on 100 examples,
// no attention plots.
inline const std::vector<std::string> kShortRun = {"task.train_size=100", "task.valid_size=10",
                                                   "task.test_size=10",   "train.max_steps=20",
                                                   "eval.samples=2",      "eval.attention_plots=0"};

// A study over a tiny.toml beside it (TinyConfigToml(kShortRun) for the ablation tests):
// two cells (model.attention scaled_dot, dot) x two seeds, 4 runs in runs/tiny.
inline constexpr char kTinyStudy[] = R"toml(# A tiny study for the tests.
[study]
name = "tiny"
base = "tiny.toml"
seeds = [1, 2]
metrics = ["exact_match", "loss"]

[[axis]]
key = "model.attention"
values = ["scaled_dot", "dot"]
)toml";

// kTinyConfig with `overrides` applied.
inline Config TinyConfig(const std::vector<std::string>& overrides = {}) {
  absl::StatusOr<Config> config = Config::Parse(kTinyConfig, "tiny.toml", overrides);
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *config : Config();
}

// The same as the text of a config file (every key written out, Config::ToToml), for
// tests that run the attnlab binary or the ablation runner on a tiny.toml.
inline std::string TinyConfigToml(const std::vector<std::string>& overrides = {}) {
  return TinyConfig(overrides).ToToml();
}

}  // namespace attnlab::experiments::testing
