// `attnlab average CKPT... --out P`: the element-wise mean of the parameters of checkpoints
// of one model (experiments/trainer/checkpoint_average.h), e.g. a run's last k.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "experiments/trainer/checkpoint_average.h"
#include "framework/core/error.h"
#include "tools/cli/command.h"
#include "tools/cli/flags.h"

namespace attnlab::cli {
namespace {

std::vector<FlagSpec> AverageFlags() {
  return {{"out", "checkpoint to write (.safetensors); not one of the inputs"}};
}

absl::Status RunAverage(const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(const ParsedFlags flags, ParseFlags(args, AverageFlags()));
  if (flags.positional().empty() || !flags.Has("out")) {
    return absl::InvalidArgumentError(
        "expected CHECKPOINT... --out=FILE (see attnlab average --help)");
  }
  ASSIGN_OR_RETURN(const experiments::CheckpointAverage average,
                   experiments::WriteCheckpointAverage(flags.positional(), flags.Get("out")));
  int64_t parameters = 0;
  for (const auto& [name, tensor] : average.tensors) parameters += tensor.numel();
  std::printf("%s: %s; %lld values in %zu tensors\n", flags.Get("out").c_str(),
              average.contents.derived_from.c_str(), static_cast<long long>(parameters),
              average.tensors.size());
  return absl::OkStatus();
}

const std::string kUsage = absl::StrCat(
    "usage: attnlab average CHECKPOINT... --out=FILE\n\n"
    "Averages the parameters of checkpoints of one model element-wise (the mean, summed in\n"
    "double, rounded to f32), as \"Attention Is All You Need\" averages a run's last\n"
    "checkpoints: e.g. the checkpoint_step_<N>.safetensors files that train.keep_last keeps.\n"
    "Every checkpoint must have the same [model] and [attention.*] keys, task name,\n"
    "vocabularies and tensor names, dtypes and shapes; the first difference is an error\n"
    "naming the file and the key or tensor. FILE is a model checkpoint (no optimizer or EMA\n"
    "state) with the config and progress of the checkpoint with the highest step, for\n"
    "evaluate, decode and dump; train --resume refuses it. It is written atomically and\n"
    "never over an input.\n"
    "\nflags:\n",
    FlagsHelp(AverageFlags()));

ATTNLAB_COMMAND(average, "average", "average the parameters of checkpoints (last-k averaging)",
                kUsage.c_str(), RunAverage);

}  // namespace
}  // namespace attnlab::cli
