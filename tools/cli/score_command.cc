// `attnlab score --checkpoint P`: the model's log-probability of given targets, one
// source<TAB>target line at a time (fairseq's --score-reference).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "experiments/trainer/text_scoring.h"
#include "experiments/trainer/train_step.h"
#include "framework/core/error.h"
#include "framework/ops/mixed_precision.h"
#include "tools/cli/command.h"
#include "tools/cli/flags.h"
#include "tools/cli/input_checks.h"
#include "tools/cli/line_answering.h"
#include "tools/cli/model_loading.h"

namespace attnlab::cli {
namespace {

// source<TAB>target, split at the first tab (a target may hold tabs, as in `files` data).
absl::StatusOr<experiments::TextPair> SplitPair(const std::string& line) {
  const size_t tab = line.find('\t');
  if (tab == std::string::npos) {
    return absl::InvalidArgumentError(
        "no tab between source and target (expected source<TAB>target)");
  }
  return experiments::TextPair{line.substr(0, tab), line.substr(tab + 1)};
}

std::vector<FlagSpec> ScoreFlags() {
  return {{"checkpoint", "checkpoint file"},
          {"input", "file of source<TAB>target lines (default: standard input, line by line)"},
          ThreadsFlag()};
}

absl::Status RunScore(const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(const ParsedFlags flags, ParseFlags(args, ScoreFlags()));
  if (!flags.Has("checkpoint") || !flags.positional().empty()) {
    return absl::InvalidArgumentError("expected --checkpoint=FILE (see attnlab score --help)");
  }
  RETURN_IF_ERROR(ApplyThreadsFlag(flags));
  std::optional<std::vector<std::string>> file_lines;
  if (flags.Has("input")) {
    ASSIGN_OR_RETURN(file_lines, ReadInputLines(flags.Get("input")));
  }

  ASSIGN_OR_RETURN(LoadedModel loaded, LoadTrainedModel(flags.Get("checkpoint"), {}));
  ASSIGN_OR_RETURN(const DType matmul_inputs, experiments::MatmulInputDTypeOf(loaded.config));
  const MixedPrecision precision(matmul_inputs);  // as the model was trained
  const experiments::EvaluationOptions options;   // evaluation's batch sizes

  LineAnswerer answerer;
  answerer.check = [&](const std::string& line) -> absl::Status {
    RETURN_IF_ERROR(CheckUtf8Line(line));
    ASSIGN_OR_RETURN(const experiments::TextPair pair, SplitPair(line));
    RETURN_IF_ERROR(CheckSourceFits(pair.source, loaded));
    return CheckTargetFits(pair.target, loaded);
  };
  answerer.answer = [&](const std::vector<std::string>& lines) {
    std::vector<experiments::TextPair> pairs;
    for (const std::string& line : lines) pairs.push_back(*SplitPair(line));
    std::vector<std::string> answers;
    for (const nn::TargetScore& score :
         experiments::ScoreTexts(*loaded.model, loaded.data, pairs, options)) {
      answers.push_back(
          absl::StrFormat("%.6f\t%.6f\t%d", score.log_prob, score.mean_log_prob(), score.tokens));
    }
    return answers;
  };
  answerer.error_answer = [](const std::string&) { return std::string(); };
  if (file_lines) return AnswerFileLines(flags.Get("input"), *file_lines, answerer);
  return AnswerStandardInput("score", answerer);
}

const std::string kUsage = absl::StrCat(
    "usage: attnlab score --checkpoint=FILE [--input=FILE]\n\n"
    "Reads source<TAB>target lines (split at the first tab, tokenised as the task does;\n"
    "tokens unseen in training become <unk>) and prints, for each, the model's\n"
    "log-probability of the target given the source, by teacher forcing in evaluation mode:\n"
    "  log_prob<TAB>mean_log_prob<TAB>tokens\n"
    "log_prob is the sum over the target's tokens and its eos (nats), mean_log_prob that sum\n"
    "divided by tokens (the count, eos included). The log_prob of a hypothesis that decode\n"
    "--nbest printed (and that ended with eos) is the log_prob it printed.\n\n"
    "A line that is not UTF-8, has no tab, or whose source or target is longer than the\n"
    "model's positions allow is an error naming the line. From --input FILE every line is\n"
    "checked first and a bad one stops the command before anything is scored; from\n"
    "standard input each line is answered as it arrives (output flushed), and a bad line\n"
    "gets its error on stderr (stdin:LINE) and an empty output line, scoring goes on, and\n"
    "the command exits 1 at the end of the input.\n\nflags:\n",
    FlagsHelp(ScoreFlags()));

ATTNLAB_COMMAND(score, "score", "log-probabilities of given source/target pairs", kUsage.c_str(),
                RunScore);

}  // namespace
}  // namespace attnlab::cli
