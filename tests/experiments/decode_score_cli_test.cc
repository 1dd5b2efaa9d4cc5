// `attnlab decode --nbest`, `attnlab score` and both commands as pipes, end to end on the
// checkpoints of three tiny trained runs: a Transformer, a GRU seq2seq and a Transformer
// trained in bf16 (where the CPU has native bf16). An n-best list is sorted, holds
// different hypotheses and starts with decode's 1-best; score gives each hypothesis the
// log_prob decode printed for it; and a pipe gets each line's answer before it sends the
// next, a bad line an error answer, and the exit code counts it at the end.
#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "framework/backend/dnnl/dnnl_backend.h"
#include "gtest/gtest.h"
#include "tests/experiments/cli_runner.h"
#include "tests/support/file_contents.h"
#include "tests/support/piped_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_config.h"

namespace attnlab::experiments {
namespace {

using attnlab::testing::PipedProcess;
using attnlab::testing::ReadFile;
using attnlab::testing::WriteFile;
using testing::CliOutput;
using Json = nlohmann::json;

// Long enough for a loaded machine; a command that waits for the end of its input before
// answering never answers a pipe that stays open, and fails here instead of hanging.
constexpr std::chrono::seconds kAnswerTimeout(60);

// Source lines of the copy task (symbols 1..5).
const std::vector<std::string> kSources = {"1 2 3", "4 4 5 1", "2 3 5 5 1", "5", "3 1 4 1 5"};
// decode's output limit in these tests: a hypothesis of kMaxLen tokens was cut there.
constexpr int64_t kMaxLen = 12;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

std::string JoinLines(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

// A score line: log_prob, mean_log_prob, tokens.
struct ScoreLine {
  double log_prob = 0.0, mean_log_prob = 0.0;
  int64_t tokens = 0;
};

std::vector<ScoreLine> ParseScores(const std::string& output) {
  std::vector<ScoreLine> scores;
  for (const std::string& line : Lines(output)) {
    const std::vector<std::string> fields = absl::StrSplit(line, '\t');
    ScoreLine score;
    EXPECT_TRUE(fields.size() == 3 && absl::SimpleAtod(fields[0], &score.log_prob) &&
                absl::SimpleAtod(fields[1], &score.mean_log_prob) &&
                absl::SimpleAtoi(fields[2], &score.tokens))
        << "not log_prob<TAB>mean_log_prob<TAB>tokens: '" << line << "'";
    scores.push_back(score);
  }
  return scores;
}

class DecodeScoreCliTest : public ::testing::TestWithParam<std::string> {
 protected:
  // One run per model (the test parameter names it), trained once for the suite.
  static void SetUpTestSuite() {
    directory_ = new attnlab::testing::ScratchDirectory("decode_score");
    WriteFile(*directory_ / "tiny.toml", testing::TinyConfigToml());
    WriteFile(*directory_ / "sources.in", JoinLines(kSources));
    const std::string train = "train tiny.toml --quiet --threads 1 --run_dir ";
    trained_ = new std::map<std::string, CliOutput>();
    (*trained_)["transformer"] = Run(train + "transformer");
    (*trained_)["rnn"] = Run(train + "rnn --set model.type=rnn --set model.hidden_size=16");
    if (dnnl_backend::HasNativeBF16()) {
      (*trained_)["bf16"] = Run(train + "bf16 --set train.dtype=bf16");
    }
  }
  static void TearDownTestSuite() {
    delete directory_;
    delete trained_;
  }

  void SetUp() override {
    if (!trained_->count(GetParam())) GTEST_SKIP() << "no native bf16 on this CPU";
    ASSERT_EQ(trained_->at(GetParam()).exit_code, 0) << trained_->at(GetParam()).err;
  }

  static CliOutput Run(const std::string& arguments) {
    return testing::RunAttnlab(directory_->path(), arguments);
  }
  // `attnlab COMMAND` on this run's best checkpoint, with `flags`.
  static CliOutput RunOnCheckpoint(const std::string& command, const std::string& flags) {
    return Run(command + " --checkpoint " + GetParam() + "/checkpoint_best.safetensors " +
               "--threads 1 " + flags);
  }
  // The same, started with pipes for its standard input and output.
  static std::unique_ptr<PipedProcess> StartOnCheckpoint(const std::string& command,
                                                         const std::vector<std::string>& flags) {
    std::vector<std::string> argv = {ATTNLAB_CLI,    command,
                                     "--checkpoint", GetParam() + "/checkpoint_best.safetensors",
                                     "--threads",    "1"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    return std::make_unique<PipedProcess>(argv, directory_->path(),
                                          *directory_ / (GetParam() + "_" + command + ".err"));
  }
  static std::string StandardError(const std::string& command) {
    return ReadFile(*directory_ / (GetParam() + "_" + command + ".err"));
  }

  static attnlab::testing::ScratchDirectory* directory_;
  static std::map<std::string, CliOutput>* trained_;
};

attnlab::testing::ScratchDirectory* DecodeScoreCliTest::directory_ = nullptr;
std::map<std::string, CliOutput>* DecodeScoreCliTest::trained_ = nullptr;

TEST_P(DecodeScoreCliTest, NBestListsAreSortedDifferentAndStartWithTheOneBest) {
  const std::string flags = "--beam 4 --max_len 12 --input sources.in";
  const CliOutput one_best = RunOnCheckpoint("decode", flags);
  ASSERT_EQ(one_best.exit_code, 0) << one_best.err;
  const CliOutput nbest = RunOnCheckpoint("decode", flags + " --nbest 3");
  ASSERT_EQ(nbest.exit_code, 0) << nbest.err;
  EXPECT_EQ(nbest.err, "");
  const std::vector<std::string> predictions = Lines(one_best.out);
  const std::vector<std::string> lists = Lines(nbest.out);
  ASSERT_EQ(predictions.size(), kSources.size()) << one_best.out;
  ASSERT_EQ(lists.size(), kSources.size()) << nbest.out;
  for (size_t i = 0; i < kSources.size(); ++i) {
    EXPECT_EQ(lists[i].rfind("{\"source\":", 0), 0u)
        << "keys in the documented order: " << lists[i];
    const Json list = Json::parse(lists[i]);
    EXPECT_EQ(list.at("source"), kSources[i]);
    const Json& hypotheses = list.at("hypotheses");
    ASSERT_EQ(hypotheses.size(), 3u) << lists[i];
    EXPECT_EQ(hypotheses[0].at("text"), predictions[i]) << lists[i];
    std::set<std::string> texts;
    for (size_t rank = 0; rank < hypotheses.size(); ++rank) {
      texts.insert(hypotheses[rank].at("text").get<std::string>());
      const double log_prob = hypotheses[rank].at("log_prob");
      const double score = hypotheses[rank].at("score");
      EXPECT_LT(log_prob, 0.0);
      EXPECT_GE(score, log_prob);  // the length penalty is at least 1
      if (rank > 0) {
        EXPECT_GE(hypotheses[rank - 1].at("score").get<double>(), score) << lists[i];
      }
    }
    EXPECT_EQ(texts.size(), 3u) << lists[i];
  }
}

TEST_P(DecodeScoreCliTest, ScoreGivesEachHypothesisTheLogProbDecodePrinted) {
  const CliOutput nbest =
      RunOnCheckpoint("decode", "--beam 4 --nbest 4 --max_len 12 --input sources.in");
  ASSERT_EQ(nbest.exit_code, 0) << nbest.err;
  std::vector<std::string> pairs;
  std::vector<double> printed;
  for (const std::string& line : Lines(nbest.out)) {
    const Json list = Json::parse(line);
    for (const Json& hypothesis : list.at("hypotheses")) {
      pairs.push_back(list.at("source").get<std::string>() + "\t" +
                      hypothesis.at("text").get<std::string>());
      printed.push_back(hypothesis.at("log_prob"));
    }
  }
  ASSERT_EQ(pairs.size(), 4 * kSources.size());
  WriteFile(*directory_ / (GetParam() + "_pairs.tsv"), JoinLines(pairs));
  const CliOutput scored = RunOnCheckpoint("score", "--input " + GetParam() + "_pairs.tsv");
  ASSERT_EQ(scored.exit_code, 0) << scored.err;
  EXPECT_EQ(scored.err, "");
  const std::vector<ScoreLine> scores = ParseScores(scored.out);
  ASSERT_EQ(scores.size(), pairs.size()) << scored.out;
  int compared = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    EXPECT_NEAR(scores[i].mean_log_prob, scores[i].log_prob / scores[i].tokens, 1e-6) << pairs[i];
    // score counts the target's eos; a hypothesis cut at --max_len has none in its log_prob.
    if (scores[i].tokens - 1 >= kMaxLen) continue;
    ++compared;
    // Decoding steps and one teacher-forced pass round differently (bf16: at 8 bits).
    const double tolerance = GetParam() == "bf16" ? 2e-2 : 2e-4;
    EXPECT_NEAR(scores[i].log_prob, printed[i], tolerance) << pairs[i];
  }
  EXPECT_GT(compared, 0);
}

TEST_P(DecodeScoreCliTest, DecodeAnswersEachLineOfAPipeBeforeTheNextArrives) {
  const CliOutput from_file = RunOnCheckpoint("decode", "--input sources.in");
  ASSERT_EQ(from_file.exit_code, 0) << from_file.err;
  const std::vector<std::string> expected = Lines(from_file.out);
  ASSERT_EQ(expected.size(), kSources.size());

  std::unique_ptr<PipedProcess> decode = StartOnCheckpoint("decode", {});
  for (size_t i = 0; i < 2; ++i) {
    ASSERT_TRUE(decode->WriteLine(kSources[i]));
    EXPECT_EQ(decode->ReadLine(kAnswerTimeout), expected[i]) << "line " << i + 1;
  }
  // A bad line gets an empty answer and an error; decoding goes on.
  ASSERT_TRUE(decode->WriteLine("3 \xe9"));
  EXPECT_EQ(decode->ReadLine(kAnswerTimeout), "");
  ASSERT_TRUE(decode->WriteLine(kSources[2]));
  EXPECT_EQ(decode->ReadLine(kAnswerTimeout), expected[2]);
  decode->CloseInput();
  EXPECT_EQ(decode->ReadLine(kAnswerTimeout), std::nullopt);  // nothing more
  EXPECT_EQ(decode->Wait(kAnswerTimeout), 1);
  EXPECT_EQ(StandardError("decode"),
            "attnlab decode: stdin:3: invalid UTF-8 (byte 3 of the line)\n"
            "attnlab decode: 1 of 4 input lines were not answered (see the stdin:LINE errors "
            "above)\n");
}

TEST_P(DecodeScoreCliTest, NBestAndScorePipesAnswerLineByLine) {
  std::unique_ptr<PipedProcess> decode =
      StartOnCheckpoint("decode", {"--beam", "2", "--nbest", "2"});
  for (const std::string& line : {kSources[0], std::string("\xff"), kSources[1]}) {
    ASSERT_TRUE(decode->WriteLine(line));
    const std::optional<std::string> answer = decode->ReadLine(kAnswerTimeout);
    ASSERT_TRUE(answer.has_value()) << "no answer to '" << line << "'";
    const Json json = Json::parse(*answer);
    if (line == "\xff") {
      EXPECT_EQ(json, Json({{"error", "stdin:2: invalid UTF-8 (byte 1 of the line)"}}));
    } else {
      EXPECT_EQ(json.at("source"), line);
      EXPECT_EQ(json.at("hypotheses").size(), 2u) << *answer;
    }
  }
  decode->CloseInput();
  EXPECT_EQ(decode->Wait(kAnswerTimeout), 1);

  const std::vector<std::string> pairs = {"1 2 3\t1 2 3", "4 4 5\t4 4 5"};
  WriteFile(*directory_ / (GetParam() + "_two_pairs.tsv"), JoinLines(pairs));
  const CliOutput from_file = RunOnCheckpoint("score", "--input " + GetParam() + "_two_pairs.tsv");
  ASSERT_EQ(from_file.exit_code, 0) << from_file.err;
  const std::vector<std::string> expected = Lines(from_file.out);
  ASSERT_EQ(expected.size(), 2u);
  std::unique_ptr<PipedProcess> score = StartOnCheckpoint("score", {});
  ASSERT_TRUE(score->WriteLine(pairs[0]));
  EXPECT_EQ(score->ReadLine(kAnswerTimeout), expected[0]);
  ASSERT_TRUE(score->WriteLine("1 2 3 without a tab"));
  EXPECT_EQ(score->ReadLine(kAnswerTimeout), "");
  ASSERT_TRUE(score->WriteLine(pairs[1]));
  EXPECT_EQ(score->ReadLine(kAnswerTimeout), expected[1]);
  score->CloseInput();
  EXPECT_EQ(score->Wait(kAnswerTimeout), 1);
  EXPECT_EQ(StandardError("score"),
            "attnlab score: stdin:2: no tab between source and target (expected "
            "source<TAB>target)\n"
            "attnlab score: 1 of 3 input lines were not answered (see the stdin:LINE errors "
            "above)\n");
}

INSTANTIATE_TEST_SUITE_P(Models, DecodeScoreCliTest,
                         ::testing::Values("transformer", "rnn", "bf16"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace attnlab::experiments
