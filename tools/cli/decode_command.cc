// `attnlab decode --checkpoint P`: source lines (a file or stdin) to predictions.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "experiments/config/schema.h"
#include "experiments/data/tokenizer.h"
#include "experiments/trainer/evaluation.h"
#include "experiments/trainer/train_step.h"
#include "framework/core/error.h"
#include "framework/io/utf8.h"
#include "framework/ops/mixed_precision.h"
#include "tools/cli/command.h"
#include "tools/cli/flags.h"
#include "tools/cli/model_loading.h"

namespace attnlab::cli {
namespace {

// Every line must be UTF-8 and fit the model's positions. The whole input is checked
// before anything is decoded, so a bad line costs no partial output.
absl::Status CheckSourceLines(const std::vector<std::string>& sources,
                              const std::string& input_name, const LoadedModel& loaded) {
  const std::optional<int64_t> longest = experiments::LongestModelSequence(loaded.config);
  for (size_t i = 0; i < sources.size(); ++i) {
    const std::string where = absl::StrCat(input_name, ":", i + 1);
    if (const std::optional<size_t> invalid = FirstInvalidUtf8(sources[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": invalid UTF-8 (byte ", *invalid + 1, " of the line)"));
    }
    const int64_t length = static_cast<int64_t>(loaded.data.EncodeSource(sources[i]).size());
    if (longest && length > *longest) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": the source is ", length,
                                                     " tokens long with its eos mark; this "
                                                     "model reads at most ",
                                                     loaded.config.Describe("model.max_len"),
                                                     ": split or shorten the line"));
    }
  }
  return absl::OkStatus();
}

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
  // The same bounds as eval.beam_size and eval.max_decode_length in a config.
  const auto largest_beam =
      static_cast<int64_t>(*experiments::FindConfigKey("eval.beam_size")->max);
  const auto largest_output =
      static_cast<int64_t>(*experiments::FindConfigKey("eval.max_decode_length")->max);
  if (beam < 1 || beam > largest_beam) {
    return absl::InvalidArgumentError(absl::StrCat("--beam must be in [1, ", largest_beam, "]"));
  }
  if (max_len < 0 || max_len > largest_output) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_len must be in [0, ", largest_output, "]"));
  }
  std::vector<std::string> sources;
  std::string line;
  if (flags.Has("input")) {
    // A directory opens as a stream with no lines: that would decode nothing, silently.
    if (std::filesystem::is_directory(flags.Get("input"))) {
      return absl::InvalidArgumentError(absl::StrCat(flags.Get("input"), ": is a directory"));
    }
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
  RETURN_IF_ERROR(
      CheckSourceLines(sources, flags.Has("input") ? flags.Get("input") : "stdin", loaded));
  ASSIGN_OR_RETURN(const DType matmul_inputs, experiments::MatmulInputDTypeOf(loaded.config));
  const MixedPrecision precision(matmul_inputs);  // as the model was trained
  experiments::EvaluationOptions options;
  options.beam_size = beam;
  options.max_decode_length = max_len;
  options.length_penalty = static_cast<float>(loaded.config.eval().length_penalty);
  for (const std::string& prediction :
       experiments::DecodeTexts(*loaded.model, loaded.data, sources, options)) {
    std::printf("%s\n", prediction.c_str());
  }
  return absl::OkStatus();
}

const std::string kUsage = absl::StrCat(
    "usage: attnlab decode --checkpoint=FILE [--input=FILE] [--beam=N]\n\n"
    "Reads source lines (one example per line, tokenised as the task does) and prints one\n"
    "prediction per line. Tokens unseen in training become <unk>. A line that is not UTF-8,\n"
    "or longer than the model's positions allow (model.max_len tokens with eos, for the\n"
    "sinusoidal and learned encodings), is an error naming the line; nothing is decoded\n"
    "then, so no output line is ever silently cut or dropped.\n\nflags:\n",
    FlagsHelp(DecodeFlags()));

ATTNLAB_COMMAND(decode, "decode", "decode source lines with a checkpoint", kUsage.c_str(),
                RunDecode);

}  // namespace
}  // namespace attnlab::cli
