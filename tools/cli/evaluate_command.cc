// `attnlab evaluate --checkpoint P`: a checkpoint's metrics on a split.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "experiments/config/schema.h"
#include "experiments/trainer/checkpoint.h"
#include "experiments/trainer/evaluation.h"
#include "experiments/trainer/objective.h"
#include "experiments/trainer/train_step.h"
#include "framework/core/error.h"
#include "framework/core/stop_request.h"
#include "framework/ops/mixed_precision.h"
#include "tools/cli/command.h"
#include "tools/cli/flags.h"
#include "tools/cli/model_loading.h"

namespace attnlab::cli {
namespace {

std::vector<FlagSpec> EvaluateFlags() {
  return {{"checkpoint", "checkpoint file (checkpoint_best.safetensors of a run)"},
          {"split", "valid or test (default test)"},
          {"beam", "beam size (default 1: greedy)"},
          {"set", "override a key of the saved config (e.g. data paths)", true, true},
          ThreadsFlag()};
}

// Whether the checkpoint's task trains a model of its own (e.g. seed_pooling) rather than
// a sequence-to-sequence one. A config that does not parse is left to the loading below,
// which reports it.
bool HasOwnObjective(const experiments::CheckpointContents& contents) {
  const absl::StatusOr<experiments::Config> config =
      experiments::Config::Parse(contents.config_toml, "saved config");
  return config.ok() && experiments::HasRegisteredObjective(config->task().name);
}

// The objective's own metrics on `split`, as its runs log them.
absl::Status EvaluateObjective(const std::string& checkpoint_path, const std::string& split,
                               const std::vector<std::string>& overrides) {
  ASSIGN_OR_RETURN(LoadedObjective loaded, LoadTrainedObjective(checkpoint_path, overrides));
  const experiments::Evaluation evaluation =
      loaded.objective->Evaluate(split, [] { return StopRequested(); });
  if (evaluation.interrupted) return absl::CancelledError("stopped");
  std::printf("%s split, %s, %.1f s\n", split.c_str(), loaded.objective->Description().c_str(),
              evaluation.seconds);
  for (const auto& [name, value] : evaluation.metrics) {
    std::printf("%-22s %.4f\n", name.c_str(), value);
  }
  return absl::OkStatus();
}

absl::Status RunEvaluate(const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(const ParsedFlags flags, ParseFlags(args, EvaluateFlags()));
  if (!flags.Has("checkpoint") || !flags.positional().empty()) {
    return absl::InvalidArgumentError("expected --checkpoint=FILE (see attnlab evaluate --help)");
  }
  const std::string split = flags.Get("split", "test");
  if (split != "valid" && split != "test") {
    return absl::InvalidArgumentError(
        absl::StrCat("--split must be valid or test, got '", split, "'"));
  }
  RETURN_IF_ERROR(ApplyThreadsFlag(flags));
  ASSIGN_OR_RETURN(const int64_t beam, flags.GetInt("beam", 1));
  // The same bound as eval.beam_size in a config.
  const auto largest_beam =
      static_cast<int64_t>(*experiments::FindConfigKey("eval.beam_size")->max);
  if (beam < 1 || beam > largest_beam) {
    return absl::InvalidArgumentError(absl::StrCat("--beam must be in [1, ", largest_beam, "]"));
  }
  ASSIGN_OR_RETURN(const experiments::CheckpointContents contents,
                   experiments::ReadCheckpointMetadata(flags.Get("checkpoint")));
  if (HasOwnObjective(contents)) {
    if (flags.Has("beam")) {
      return absl::InvalidArgumentError("--beam applies to sequence-to-sequence models only");
    }
    return EvaluateObjective(flags.Get("checkpoint"), split, flags.GetAll("set"));
  }
  ASSIGN_OR_RETURN(LoadedModel loaded,
                   LoadTrainedModel(flags.Get("checkpoint"), flags.GetAll("set")));
  ASSIGN_OR_RETURN(const DType matmul_inputs, experiments::MatmulInputDTypeOf(loaded.config));
  const MixedPrecision precision(matmul_inputs);  // as trained, unless --set train.dtype=...
  experiments::EvaluationOptions options;
  options.beam_size = beam;
  options.length_penalty = static_cast<float>(loaded.config.eval().length_penalty);
  options.max_decode_length = loaded.config.eval().max_decode_length;
  const auto result = experiments::Evaluate(*loaded.model, loaded.data, split, options);
  std::printf("%s split, %zu examples, %s decoding, %.1f s\n", split.c_str(),
              loaded.data.Examples(split).size(),
              beam > 1 ? absl::StrCat("beam-", beam).c_str() : "greedy", result.seconds);
  for (const auto& [name, value] : result.metrics) std::printf("%-22s %.4f\n", name.c_str(), value);
  return absl::OkStatus();
}

const std::string kUsage = absl::StrCat(
    "usage: attnlab evaluate --checkpoint=FILE [--split=valid|test] [--beam=N]\n\n"
    "Rebuilds the model and task of a checkpoint (its saved config and vocabularies) and\n"
    "prints loss, token accuracy, exact match and the task's metrics on a split. A task\n"
    "with a model of its own (seed_pooling) prints its objective's metrics.\n\nflags:\n",
    FlagsHelp(EvaluateFlags()));

ATTNLAB_COMMAND(evaluate, "evaluate", "score a checkpoint on a split", kUsage.c_str(), RunEvaluate);

}  // namespace
}  // namespace attnlab::cli
