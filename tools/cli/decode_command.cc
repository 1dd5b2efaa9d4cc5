// `attnlab decode --checkpoint P`: source lines (a file or stdin) to predictions.
#include <cstdio>
#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "experiments/trainer/evaluation.h"
#include "experiments/trainer/train_step.h"
#include "framework/core/error.h"
#include "framework/ops/mixed_precision.h"
#include "tools/cli/command.h"
#include "tools/cli/flags.h"
#include "tools/cli/model_loading.h"

namespace attnlab::cli {
namespace {

std::vector<FlagSpec> DecodeFlags() {
  return {{"checkpoint", "checkpoint file"},
          {"input", "file of source lines (default: standard input)"},
          {"beam", "beam size (default 1: greedy)"},
          {"max_len", "longest output in tokens (default: 2 x source + 10)"},
          ThreadsFlag()};
}

absl::Status RunDecode(const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(const ParsedFlags flags, ParseFlags(args, DecodeFlags()));
  if (!flags.Has("checkpoint") || !flags.positional().empty()) {
    return absl::InvalidArgumentError("expected --checkpoint=FILE (see attnlab decode --help)");
  }
  RETURN_IF_ERROR(ApplyThreadsFlag(flags));
  ASSIGN_OR_RETURN(const int64_t beam, flags.GetInt("beam", 1));
  ASSIGN_OR_RETURN(const int64_t max_len, flags.GetInt("max_len", 0));
  if (beam < 1 || max_len < 0)
    return absl::InvalidArgumentError("--beam must be >= 1 and --max_len >= 0");
  std::vector<std::string> sources;
  std::string line;
  if (flags.Has("input")) {
    std::ifstream input(flags.Get("input"));
    if (!input) return absl::NotFoundError(absl::StrCat(flags.Get("input"), ": cannot open"));
    while (std::getline(input, line)) sources.push_back(line);
  } else {
    while (std::getline(std::cin, line)) sources.push_back(line);
  }
  for (std::string& source : sources) {
    if (!source.empty() && source.back() == '\r') source.pop_back();
  }
  ASSIGN_OR_RETURN(LoadedModel loaded, LoadTrainedModel(flags.Get("checkpoint"), {}));
  ASSIGN_OR_RETURN(const DType matmul_inputs, experiments::MatmulInputDTypeOf(loaded.config));
  const MixedPrecision precision(matmul_inputs);  // as the model was trained
  experiments::EvaluationOptions options;
  options.beam_size = beam;
  options.max_decode_length = max_len;
  options.length_penalty = static_cast<float>(loaded.config.GetFloat("eval.length_penalty"));
  for (const std::string& prediction :
       experiments::DecodeTexts(*loaded.model, loaded.data, sources, options)) {
    std::printf("%s\n", prediction.c_str());
  }
  return absl::OkStatus();
}

const std::string kUsage = absl::StrCat(
    "usage: attnlab decode --checkpoint=FILE [--input=FILE] [--beam=N]\n\n"
    "Reads source lines (one example per line, tokenised as the task does) and prints one\n"
    "prediction per line. Tokens unseen in training become <unk>.\n\nflags:\n",
    FlagsHelp(DecodeFlags()));

ATTNLAB_COMMAND(decode, "decode", "decode source lines with a checkpoint", kUsage.c_str(),
                RunDecode);

}  // namespace
}  // namespace attnlab::cli
