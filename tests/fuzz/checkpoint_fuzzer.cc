// The checkpoint loader (experiments/trainer/checkpoint.h) on a tiny model: the metadata
// (format version, vocabularies, training progress), the saved config as `evaluate` and
// `decode` parse it, and the strict load of parameters, without an optimizer (evaluate,
// decode) and with one (--resume). The model is built once; building a model from the
// checkpoint's own config is not fuzzed.
#include <memory>
#include <string>

#include "experiments/config/config.h"
#include "experiments/trainer/checkpoint.h"
#include "experiments/trainer/experiment_data.h"
#include "experiments/trainer/model_factory.h"
#include "experiments/trainer/train_step.h"
#include "framework/core/error.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace attnlab::experiments;
using attnlab::fuzz::SetUpOrDie;

constexpr char kTarget[] = "checkpoint_fuzzer";

// The model of the seed checkpoints in corpus/checkpoint/ (written by `attnlab init` and
// `attnlab train` with this config).
constexpr const char* kTinyConfig = R"(
[task]
name = "copy"
vocab_size = 3
min_length = 1
max_length = 4
train_size = 16
valid_size = 2
test_size = 2

[model]
d_model = 4
heads = 1
d_ff = 4
encoder_layers = 1
decoder_layers = 1
max_len = 16
dropout = 0.0

[train]
max_steps = 2
batch_tokens = 16
warmup_steps = 1
log_every = 1
eval_every = 2
checkpoint_every = 1
)";

struct TinyModel {
  std::shared_ptr<attnlab::nn::Seq2SeqModel> model;
  std::unique_ptr<attnlab::Optimizer> optimizer;
};

TinyModel& Tiny() {
  static TinyModel tiny = [] {
    const Config config = SetUpOrDie(Config::Parse(kTinyConfig, "tiny.toml"), kTarget);
    const ExperimentData data = SetUpOrDie(LoadExperimentData(config), kTarget);
    TinyModel built;
    built.model = SetUpOrDie(
        BuildModel(config, data.source_vocabulary.size(), data.target_vocabulary.size()), kTarget);
    built.optimizer = SetUpOrDie(MakeOptimizer(config, built.model->NamedParameters()), kTarget);
    return built;
  }();
  return tiny;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  Tiny();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path =
      attnlab::fuzz::WriteScratchFile("checkpoint.safetensors", attnlab::fuzz::AsText(data, size));
  TinyModel& tiny = Tiny();
  const absl::StatusOr<CheckpointContents> contents =
      LoadCheckpoint(path, *tiny.model, /*optimizer=*/nullptr);
  if (!contents.ok()) return 0;
  (void)Config::Parse(contents->config_toml, path + " (saved config)");
  (void)LoadCheckpoint(path, *tiny.model, tiny.optimizer.get());
  return 0;
}
