// `attnlab decode --checkpoint P`: source lines (a file or stdin) to predictions, or with
// --nbest to n-best lists with their scores (JSON lines).
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>

#include "absl/strings/str_cat.h"
#include "experiments/config/schema.h"
#include "experiments/trainer/evaluation.h"
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

using Json = nlohmann::ordered_json;  // keys in the documented order

// Scores to 6 decimals (a float's log-probability holds no more), printed short.
double Rounded(double value) { return std::round(value * 1e6) / 1e6; }

// {"source": ..., "hypotheses": [{"text": ..., "log_prob": ..., "score": ...}, ...]}
std::string NBestLine(const std::string& source,
                      const std::vector<experiments::ScoredText>& hypotheses) {
  Json list = Json::array();
  for (const experiments::ScoredText& hypothesis : hypotheses) {
    list.push_back({{"text", hypothesis.text},
                    {"log_prob", Rounded(hypothesis.log_prob)},
                    {"score", Rounded(hypothesis.score)}});
  }
  return Json{{"source", source}, {"hypotheses", std::move(list)}}.dump(
      -1, ' ', false, Json::error_handler_t::replace);
}

std::vector<FlagSpec> DecodeFlags() {
  return {{"checkpoint", "checkpoint file"},
          {"input", "file of source lines (default: standard input, answered line by line)"},
          {"beam", "beam size (default 1: greedy)"},
          {"nbest", "print the N best hypotheses with their scores as JSON lines (N <= beam)"},
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
  ASSIGN_OR_RETURN(const int64_t nbest, flags.GetInt("nbest", 0));
  ASSIGN_OR_RETURN(const int64_t max_len, flags.GetInt("max_len", 0));
  // The same bounds as eval.beam_size and eval.max_decode_length in a config.
  const auto largest_beam =
      static_cast<int64_t>(*experiments::FindConfigKey("eval.beam_size")->max);
  const auto largest_output =
      static_cast<int64_t>(*experiments::FindConfigKey("eval.max_decode_length")->max);
  if (beam < 1 || beam > largest_beam) {
    return absl::InvalidArgumentError(absl::StrCat("--beam must be in [1, ", largest_beam, "]"));
  }
  if (flags.Has("nbest") && (nbest < 1 || nbest > largest_beam)) {
    return absl::InvalidArgumentError(absl::StrCat("--nbest must be in [1, ", largest_beam, "]"));
  }
  if (flags.Has("nbest") && nbest > beam) {
    return absl::InvalidArgumentError(absl::StrCat("--nbest ", nbest, " needs --beam ", nbest,
                                                   " or more (the n-best list comes from the "
                                                   "beam; --beam is ",
                                                   beam, ")"));
  }
  if (max_len < 0 || max_len > largest_output) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_len must be in [0, ", largest_output, "]"));
  }
  std::optional<std::vector<std::string>> file_lines;
  if (flags.Has("input")) {
    ASSIGN_OR_RETURN(file_lines, ReadInputLines(flags.Get("input")));
  }

  ASSIGN_OR_RETURN(LoadedModel loaded, LoadTrainedModel(flags.Get("checkpoint"), {}));
  ASSIGN_OR_RETURN(const DType matmul_inputs, experiments::MatmulInputDTypeOf(loaded.config));
  const MixedPrecision precision(matmul_inputs);  // as the model was trained
  experiments::EvaluationOptions options;
  options.beam_size = beam;
  options.max_decode_length = max_len;
  options.length_penalty = static_cast<float>(loaded.config.eval().length_penalty);

  LineAnswerer answerer;
  answerer.check = [&](const std::string& line) {
    RETURN_IF_ERROR(CheckUtf8Line(line));
    return CheckSourceFits(line, loaded);
  };
  answerer.answer = [&](const std::vector<std::string>& sources) {
    if (!flags.Has("nbest")) {
      return experiments::DecodeTexts(*loaded.model, loaded.data, sources, options);
    }
    const std::vector<std::vector<experiments::ScoredText>> lists =
        experiments::DecodeTextsNBest(*loaded.model, loaded.data, sources, options, nbest);
    std::vector<std::string> answers;
    for (size_t i = 0; i < sources.size(); ++i) answers.push_back(NBestLine(sources[i], lists[i]));
    return answers;
  };
  // A bad stdin line: an empty prediction, or in JSON {"error": "stdin:LINE: ..."}.
  answerer.error_answer = [&](const std::string& error) {
    return flags.Has("nbest")
               ? Json{{"error", error}}.dump(-1, ' ', false, Json::error_handler_t::replace)
               : std::string();
  };
  if (file_lines) return AnswerFileLines(flags.Get("input"), *file_lines, answerer);
  return AnswerStandardInput("decode", answerer);
}

const std::string kUsage = absl::StrCat(
    "usage: attnlab decode --checkpoint=FILE [--input=FILE] [--beam=N [--nbest=K]]\n\n"
    "Reads source lines (one example per line, tokenised as the task does) and prints one\n"
    "prediction per line. Tokens unseen in training become <unk>. A line that is not UTF-8,\n"
    "or longer than the model's positions allow (model.max_len tokens with eos, for the\n"
    "sinusoidal and learned encodings), is an error naming the line.\n\n"
    "From --input FILE every line is checked first: a bad line stops the command before\n"
    "anything is decoded, so no output line is ever silently cut or dropped. From standard\n"
    "input each line is answered as it arrives and the output flushed, so decode can serve\n"
    "as a pipe; a bad line there gets its error on stderr (stdin:LINE) and an empty output\n"
    "line, decoding goes on, and the command exits 1 at the end of the input.\n\n"
    "--nbest K (K <= beam) prints one JSON object per line instead:\n"
    "  {\"source\": ..., \"hypotheses\": [{\"text\": ..., \"log_prob\": ..., \"score\": ...}, "
    "...]}\n"
    "the K best hypotheses, best first; log_prob is the sum of the token log-probabilities\n"
    "(nats, eos included), score = log_prob / ((5 + length) / 6)^alpha, what beam search\n"
    "ranks by (length counts the eos; alpha = the checkpoint's eval.length_penalty). A bad\n"
    "stdin line prints {\"error\": \"stdin:LINE: ...\"}.\n\nflags:\n",
    FlagsHelp(DecodeFlags()));

ATTNLAB_COMMAND(decode, "decode", "decode source lines with a checkpoint", kUsage.c_str(),
                RunDecode);

}  // namespace
}  // namespace attnlab::cli
