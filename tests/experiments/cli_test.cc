// The attnlab binary end to end: train a tiny config, then evaluate, decode, init, dump,
// report and keys on the results; --help for the program and every command; and the
// error paths, each a non-zero exit with one line on stderr naming the problem.
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "experiments/config/config.h"
#include "experiments/trainer/checkpoint.h"
#include "experiments/trainer/experiment_data.h"
#include "experiments/trainer/model_factory.h"
#include "framework/io/safetensors.h"
#include "framework/ops/ops.h"
#include "gtest/gtest.h"
#include "tests/experiments/cli_runner.h"
#include "tests/support/file_contents.h"
#include "tests/support/metrics_jsonl.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_config.h"

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;
using attnlab::testing::ReadFile;
using attnlab::testing::ReadMetricsJsonl;
using attnlab::testing::RecordsOfKind;
using attnlab::testing::WriteFile;
using testing::CliOutput;
using Json = nlohmann::json;

const char* const kCommands[] = {"ablate", "average",  "bench", "decode", "demo",
                                 "dump",   "evaluate", "init",  "keys",   "profile",
                                 "report", "score",    "train"};

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

// "name   value" lines (evaluate's output) as a map.
std::map<std::string, double> MetricLines(const std::string& text) {
  std::map<std::string, double> metrics;
  for (const std::string& line : Lines(text)) {
    std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    double value;
    if (parts.size() == 2 && absl::SimpleAtod(parts[1], &value)) metrics[parts[0]] = value;
  }
  return metrics;
}

class CliTest : public ::testing::Test {
 protected:
  // One training run shared by the tests that read its checkpoints.
  static void SetUpTestSuite() {
    directory_ = new attnlab::testing::ScratchDirectory("cli");
    // Five validation samples, decoded again by DecodeFromStandardInputMatchesTheSamplesOfTheRun.
    WriteFile(*directory_ / "tiny.toml", testing::TinyConfigToml({"eval.samples=5"}));
    train_ = new CliOutput(Run("train tiny.toml --run_dir run --quiet --threads 1"));
  }
  static void TearDownTestSuite() {
    delete directory_;
    delete train_;
  }

  // Runs a shell command line in the test directory, capturing stdout and stderr.
  static CliOutput Shell(const std::string& command_line) {
    return testing::RunShell(directory_->path(), command_line);
  }
  // `attnlab ARGUMENTS`, with standard input from /dev/null.
  static CliOutput Run(const std::string& arguments) {
    return Shell(std::string("'") + ATTNLAB_CLI + "' " + arguments + " < /dev/null");
  }

  static fs::path Path(const std::string& name) { return *directory_ / name; }

  // A failed command: a non-zero exit, nothing on stdout and one stderr line that
  // starts with "attnlab" and contains every one of `parts`.
  static ::testing::AssertionResult FailsWith(const CliOutput& output,
                                              const std::vector<std::string>& parts) {
    if (output.exit_code <= 0) {
      return ::testing::AssertionFailure()
             << "exit code " << output.exit_code << ", stderr: " << output.err;
    }
    if (!output.out.empty()) return ::testing::AssertionFailure() << "stdout: " << output.out;
    if (output.err.rfind("attnlab", 0) != 0 || output.err.empty() || output.err.back() != '\n' ||
        output.err.find('\n') != output.err.size() - 1) {
      return ::testing::AssertionFailure() << "stderr is not one line: '" << output.err << "'";
    }
    for (const std::string& part : parts) {
      if (output.err.find(part) == std::string::npos) {
        return ::testing::AssertionFailure() << "'" << output.err << "' lacks '" << part << "'";
      }
    }
    return ::testing::AssertionSuccess();
  }

  static attnlab::testing::ScratchDirectory* directory_;
  static CliOutput* train_;
};

attnlab::testing::ScratchDirectory* CliTest::directory_ = nullptr;
CliOutput* CliTest::train_ = nullptr;

// ---- train, evaluate, decode, report ----------------------------------------------------

TEST_F(CliTest, TrainWritesARunAndPrintsItsTestMetrics) {
  ASSERT_EQ(train_->exit_code, 0) << train_->err;
  EXPECT_EQ(train_->err, "");  // --quiet
  EXPECT_NE(train_->out.find("run: run  (30 steps"), std::string::npos) << train_->out;
  for (const char* metric : {"test exact_match", "test loss", "test token_accuracy"}) {
    EXPECT_NE(train_->out.find(metric), std::string::npos) << train_->out;
  }
  EXPECT_NE(train_->out.find("report: run/report.html"), std::string::npos) << train_->out;
  for (const char* file :
       {"config.toml", "metrics.jsonl", "checkpoint_last.safetensors",
        "checkpoint_best.safetensors", "samples.txt", "attention.safetensors", "report.html"}) {
    EXPECT_TRUE(fs::is_regular_file(Path("run") / file)) << file;
  }
  // --threads is recorded in the resolved config.
  absl::StatusOr<Config> saved = Config::Load(Path("run/config.toml").string());
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(saved->experiment().threads, 1);
}

TEST_F(CliTest, EvaluateOfTheBestCheckpointMatchesItsEvaluationInTraining) {
  ASSERT_EQ(train_->exit_code, 0) << train_->err;
  const CliOutput output =
      Run("evaluate --checkpoint run/checkpoint_best.safetensors --split valid --threads 1");
  ASSERT_EQ(output.exit_code, 0) << output.err;
  EXPECT_EQ(output.err, "");
  EXPECT_EQ(output.out.rfind("valid split, 20 examples, greedy decoding", 0), 0u) << output.out;
  const std::map<std::string, double> printed = MetricLines(output.out);

  // The eval record of the step the best checkpoint was saved at.
  absl::StatusOr<CheckpointContents> best =
      ReadCheckpointMetadata(Path("run/checkpoint_best.safetensors").string());
  ASSERT_TRUE(best.ok()) << best.status();
  Json record;
  for (const Json& eval : RecordsOfKind(ReadMetricsJsonl(Path("run")), "eval")) {
    if (eval["step"] == best->progress.best_step) record = eval;
  }
  ASSERT_TRUE(record.is_object()) << "no eval record at step " << best->progress.best_step;
  for (const char* metric : {"loss", "token_accuracy", "exact_match"}) {
    ASSERT_TRUE(printed.count(metric)) << metric << " not in " << output.out;
    EXPECT_NEAR(printed.at(metric), record.at(metric).get<double>(), 5.1e-5) << metric;  // %.4f
  }

  const CliOutput beam =
      Run("evaluate --checkpoint=run/checkpoint_best.safetensors --beam=2 --threads=1");
  ASSERT_EQ(beam.exit_code, 0) << beam.err;
  EXPECT_EQ(beam.out.rfind("test split, 20 examples, beam-2 decoding", 0), 0u) << beam.out;
  EXPECT_TRUE(MetricLines(beam.out).count("exact_match")) << beam.out;
}

// A model that is not sequence-to-sequence (the seed's attention pooling) is scored by
// evaluate through its objective, with the metrics its run logged; decode refuses it.
TEST_F(CliTest, EvaluateScoresAModelOfItsOwnThroughItsObjective) {
  WriteFile(Path("pooling.toml"),
            "[experiment]\nthreads = 1\n[task]\nname = \"seed_pooling\"\ntrain_size = 64\n"
            "valid_size = 16\ntest_size = 16\n[model]\nattention = \"dot\"\n"
            "[train]\nlr = 0.01\nmax_steps = 8\nmax_batch_size = 16\neval_every = 4\n");
  const CliOutput trained = Run("train pooling.toml --run_dir pooling --quiet");
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  const CliOutput output = Run("evaluate --checkpoint pooling/checkpoint_best.safetensors");
  ASSERT_EQ(output.exit_code, 0) << output.err;
  EXPECT_EQ(output.out.rfind("test split, seed_pooling", 0), 0u) << output.out;
  Json test_record;
  for (const Json& test : RecordsOfKind(ReadMetricsJsonl(Path("pooling")), "test")) {
    test_record = test;
  }
  const std::map<std::string, double> printed = MetricLines(output.out);
  for (const char* metric : {"mse", "weight_difference"}) {
    ASSERT_TRUE(printed.count(metric)) << metric << " not in " << output.out;
    EXPECT_NEAR(printed.at(metric), test_record.at(metric).get<double>(), 5.1e-5) << metric;
  }
  EXPECT_TRUE(FailsWith(Run("evaluate --checkpoint pooling/checkpoint_best.safetensors --beam 2"),
                        {"--beam applies to sequence-to-sequence models only"}));
  EXPECT_TRUE(FailsWith(Run("decode --checkpoint pooling/checkpoint_best.safetensors"),
                        {"task 'seed_pooling' trains a model of its own", "attnlab evaluate"}));
}

TEST_F(CliTest, DecodeFromStandardInputMatchesTheSamplesOfTheRun) {
  ASSERT_EQ(train_->exit_code, 0) << train_->err;
  const CliOutput output =
      Shell(std::string("echo \"1 2 3\" | '") + ATTNLAB_CLI +
            "' decode --checkpoint run/checkpoint_best.safetensors --threads 1");
  ASSERT_EQ(output.exit_code, 0) << output.err;
  EXPECT_EQ(output.err, "");
  const std::vector<std::string> lines = Lines(output.out);
  ASSERT_EQ(lines.size(), 1u) << output.out;
  for (absl::string_view token : absl::StrSplit(lines[0], ' ', absl::SkipEmpty())) {
    int symbol = 0;
    EXPECT_TRUE(absl::SimpleAtoi(token, &symbol) && symbol >= 1 && symbol <= 5) << token;
  }

  // samples.txt (written with the best checkpoint): decoding its sources gives its
  // predictions.
  std::vector<std::string> sources, predictions;
  for (const std::string& line : Lines(ReadFile(Path("run/samples.txt")))) {
    if (line.rfind("source:     ", 0) == 0) sources.push_back(line.substr(12));
    if (line.rfind("prediction: ", 0) == 0) {
      predictions.push_back(line.substr(12, line.rfind("   (") - 12));
    }
  }
  ASSERT_EQ(sources.size(), 5u);
  ASSERT_EQ(predictions.size(), 5u);
  std::string input;
  for (const std::string& source : sources) input += source + "\n";
  WriteFile(Path("samples.in"), input);
  const CliOutput decoded =
      Run("decode --checkpoint run/checkpoint_best.safetensors --input samples.in --threads 1");
  ASSERT_EQ(decoded.exit_code, 0) << decoded.err;
  EXPECT_EQ(Lines(decoded.out), predictions);
}

TEST_F(CliTest, DecodeWithBeamSearchFromAFile) {
  ASSERT_EQ(train_->exit_code, 0) << train_->err;
  WriteFile(Path("beam.in"), "1 2 3\n4 4 5 1\r\n2 3 5 5 1\n");
  const CliOutput output = Run(
      "decode --checkpoint run/checkpoint_last.safetensors --beam 3 --input beam.in --threads 1");
  ASSERT_EQ(output.exit_code, 0) << output.err;
  EXPECT_EQ(Lines(output.out).size(), 3u) << output.out;
  const CliOutput capped = Run(
      "decode --checkpoint run/checkpoint_last.safetensors --beam 3 --max_len 2 --input beam.in "
      "--threads 1");
  ASSERT_EQ(capped.exit_code, 0) << capped.err;
  for (const std::string& line : Lines(capped.out)) {
    const std::vector<std::string> tokens = absl::StrSplit(line, ' ', absl::SkipEmpty());
    EXPECT_LE(tokens.size(), 2u) << line;
  }
}

// ---- average, and the EMA's checkpoint ----------------------------------------------------

// A run that keeps its last three checkpoints and a moving average of its weights; their
// average and the average's checkpoint load into evaluate and decode.
TEST_F(CliTest, AverageOfTheLastCheckpointsAndTheEmaCheckpointAreEvaluatedAndDecoded) {
  const CliOutput trained =
      Run("train tiny.toml --run_dir kept --quiet --threads 1 --set train.keep_last=3 "
          "--set train.ema_decay=0.9");
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  const std::string inputs =
      "kept/checkpoint_step_10.safetensors kept/checkpoint_step_20.safetensors "
      "kept/checkpoint_step_30.safetensors";
  const CliOutput averaged = Run("average " + inputs + " --out average.safetensors");
  ASSERT_EQ(averaged.exit_code, 0) << averaged.err;
  EXPECT_EQ(averaged.err, "");
  EXPECT_EQ(averaged.out.rfind("average.safetensors: the average of 3 checkpoints: "
                               "kept/checkpoint_step_10.safetensors (step 10), ",
                               0),
            0u)
      << averaged.out;

  const CliOutput evaluated =
      Run("evaluate --checkpoint average.safetensors --split valid --threads 1");
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.err;
  EXPECT_TRUE(MetricLines(evaluated.out).count("exact_match")) << evaluated.out;
  const CliOutput decoded = Shell(std::string("echo \"1 2 3\" | '") + ATTNLAB_CLI +
                                  "' decode --checkpoint average.safetensors --threads 1");
  ASSERT_EQ(decoded.exit_code, 0) << decoded.err;
  EXPECT_EQ(Lines(decoded.out).size(), 1u) << decoded.out;

  // checkpoint_ema scores as the run's last evaluation of the average did.
  const CliOutput ema =
      Run("evaluate --checkpoint kept/checkpoint_ema.safetensors --split valid --threads 1");
  ASSERT_EQ(ema.exit_code, 0) << ema.err;
  const Json last_eval = RecordsOfKind(ReadMetricsJsonl(Path("kept")), "eval").back();
  const std::map<std::string, double> printed = MetricLines(ema.out);
  for (const char* metric : {"loss", "token_accuracy", "exact_match"}) {
    ASSERT_TRUE(printed.count(metric)) << metric << " not in " << ema.out;
    EXPECT_NEAR(printed.at(metric), last_eval.at(std::string("ema_") + metric).get<double>(),
                5.1e-5)
        << metric;
  }

  // Neither can be resumed: they are weights, not training states.
  fs::create_directories(Path("from_average"));
  fs::copy_file(Path("average.safetensors"), Path("from_average/checkpoint_last.safetensors"));
  EXPECT_TRUE(FailsWith(Run("train tiny.toml --run_dir from_average --resume --quiet"),
                        {"--resume: from_average/checkpoint_last.safetensors holds weights "
                         "derived from training (the average of 3 checkpoints",
                         "no optimizer state"}));
}

TEST_F(CliTest, AverageRefusesOtherModelsItsOwnInputsAndBadArguments) {
  ASSERT_EQ(train_->exit_code, 0) << train_->err;
  EXPECT_TRUE(FailsWith(Run("average --out x.safetensors"),
                        {"expected CHECKPOINT... --out=FILE", "attnlab average --help"}));
  EXPECT_TRUE(FailsWith(Run("average run/checkpoint_last.safetensors"),
                        {"expected CHECKPOINT... --out=FILE"}));
  const std::string before = ReadFile(Path("run/checkpoint_last.safetensors"));
  EXPECT_TRUE(
      FailsWith(Run("average run/checkpoint_best.safetensors "
                    "run/checkpoint_last.safetensors --out ./run/checkpoint_last.safetensors"),
                {"./run/checkpoint_last.safetensors is one of the checkpoints to average "
                 "(run/checkpoint_last.safetensors)"}));
  EXPECT_EQ(ReadFile(Path("run/checkpoint_last.safetensors")), before);
  EXPECT_TRUE(FailsWith(Run("average run/checkpoint_last.safetensors missing.safetensors --out "
                            "x.safetensors"),
                        {"missing.safetensors"}));
  // A checkpoint of a narrower model: the first differing key is named.
  WriteFile(Path("narrow.toml"), testing::TinyConfigToml({"model.d_model=8", "model.d_ff=16"}));
  ASSERT_EQ(Run("init --config narrow.toml --out narrow.safetensors").exit_code, 0);
  EXPECT_TRUE(FailsWith(
      Run("average run/checkpoint_last.safetensors narrow.safetensors --out x.safetensors"),
      {"narrow.safetensors: model.d_model = 8, but 16 in run/checkpoint_last.safetensors"}));
  EXPECT_FALSE(fs::exists(Path("x.safetensors")));
}

TEST_F(CliTest, ReportWritesAPage) {
  ASSERT_EQ(train_->exit_code, 0) << train_->err;
  const CliOutput output = Run("report run --out=page.html");
  ASSERT_EQ(output.exit_code, 0) << output.err;
  EXPECT_EQ(output.out, "wrote page.html\n");
  const std::string page = ReadFile(Path("page.html"));
  EXPECT_NE(page.find("<html"), std::string::npos);
  EXPECT_NE(page.find("</html>"), std::string::npos);
  // Default: RUN_DIR/report.html.
  fs::remove(Path("run/report.html"));
  const CliOutput default_output = Run("report run");
  ASSERT_EQ(default_output.exit_code, 0) << default_output.err;
  EXPECT_TRUE(fs::exists(Path("run/report.html")));
}

// ---- init and dump ----------------------------------------------------------------------

TEST_F(CliTest, InitWritesTheSeededInitialModel) {
  const CliOutput output = Run("init --config tiny.toml --out init.safetensors");
  ASSERT_EQ(output.exit_code, 0) << output.err;
  EXPECT_NE(output.out.find("init.safetensors: "), std::string::npos) << output.out;
  EXPECT_NE(output.out.find(" parameters in "), std::string::npos) << output.out;

  // The same weights as the model built in this process from the same config.
  absl::StatusOr<Config> config = Config::Load(Path("tiny.toml").string());
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<ExperimentData> data = LoadExperimentData(*config);
  ASSERT_TRUE(data.ok()) << data.status();
  absl::StatusOr<std::shared_ptr<nn::Seq2SeqModel>> model =
      BuildModel(*config, data->source_vocabulary.size(), data->target_vocabulary.size());
  ASSERT_TRUE(model.ok()) << model.status();
  absl::StatusOr<SafetensorsContents> file = ReadSafetensors(Path("init.safetensors").string());
  ASSERT_TRUE(file.ok()) << file.status();
  std::map<std::string, Tensor> saved;
  for (const auto& [name, tensor] : file->tensors) saved[name] = tensor;
  for (const auto& [name, parameter] : (*model)->NamedParameters()) {
    ASSERT_TRUE(saved.count(name)) << name;
    EXPECT_EQ(saved[name].shape(), parameter.shape()) << name;
    EXPECT_TRUE(saved[name].ToFloats() == parameter.ToFloats()) << name;
  }
  EXPECT_EQ(output.out.find(std::to_string((*model)->ParameterCount()) + " parameters"),
            output.out.find(": ") + 2)
      << output.out;
  absl::StatusOr<CheckpointContents> metadata =
      ReadCheckpointMetadata(Path("init.safetensors").string());
  ASSERT_TRUE(metadata.ok()) << metadata.status();
  EXPECT_EQ(metadata->source_vocabulary, data->source_vocabulary.tokens());
  EXPECT_EQ(metadata->target_vocabulary, data->target_vocabulary.tokens());
}

TEST_F(CliTest, DumpWritesLogitsLossAndEveryGradient) {
  ASSERT_EQ(Run("init --config tiny.toml --out dump_init.safetensors").exit_code, 0);
  absl::StatusOr<CheckpointContents> metadata =
      ReadCheckpointMetadata(Path("dump_init.safetensors").string());
  ASSERT_TRUE(metadata.ok()) << metadata.status();
  const int64_t vocabulary = static_cast<int64_t>(metadata->target_vocabulary.size());
  ASSERT_EQ(vocabulary, 9);  // <pad> <s> </s> <unk> and the symbols 1..5

  const std::vector<int32_t> src = {4, 5, 6, 2, 7, 8, 2, 0};
  const std::vector<int32_t> tgt_in = {1, 4, 5, 6, 1, 7, 8, 0};
  const std::vector<int32_t> tgt_out = {4, 5, 6, 2, 7, 8, 2, 0};
  ASSERT_TRUE(WriteSafetensors(Path("batch.safetensors").string(),
                               {{"src", Tensor::FromInts(src, {2, 4})},
                                {"tgt_in", Tensor::FromInts(tgt_in, {2, 4})},
                                {"tgt_out", Tensor::FromInts(tgt_out, {2, 4})}})
                  .ok());
  const CliOutput output =
      Run("dump --config tiny.toml --checkpoint dump_init.safetensors --batch batch.safetensors "
          "--out dump.safetensors --threads 1");
  ASSERT_EQ(output.exit_code, 0) << output.err;
  EXPECT_EQ(output.out.rfind("loss ", 0), 0u) << output.out;

  absl::StatusOr<SafetensorsContents> dump = ReadSafetensors(Path("dump.safetensors").string());
  ASSERT_TRUE(dump.ok()) << dump.status();
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, tensor] : dump->tensors) tensors[name] = tensor;
  ASSERT_TRUE(tensors.count("logits"));
  ASSERT_TRUE(tensors.count("loss"));
  EXPECT_EQ(tensors["logits"].shape(), (Shape{2, 4, vocabulary}));
  EXPECT_EQ(tensors["loss"].rank(), 0);
  const float loss = tensors["loss"].item();
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_GT(loss, 0.0f);
  EXPECT_TRUE(dump->metadata.count("loss"));

  // The same forward pass in this process (dropout off, label smoothing from the config).
  absl::StatusOr<Config> config = Config::Load(Path("tiny.toml").string());
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<std::shared_ptr<nn::Seq2SeqModel>> model =
      BuildModel(*config, static_cast<int64_t>(metadata->source_vocabulary.size()), vocabulary);
  ASSERT_TRUE(model.ok()) << model.status();
  (*model)->Eval();
  const Tensor logits =
      (*model)->Forward(Tensor::FromInts(src, {2, 4}), Tensor::FromInts(tgt_in, {2, 4}));
  const float expected =
      CrossEntropy(Reshape(logits, {-1, vocabulary}), Tensor::FromInts(tgt_out, {8}),
                   static_cast<float>(config->train().label_smoothing), 0)
          .item();
  EXPECT_NEAR(loss, expected, 1e-5f * expected);
  for (const auto& [name, parameter] : (*model)->NamedParameters()) {
    ASSERT_TRUE(tensors.count("grad." + name)) << name;
    EXPECT_EQ(tensors["grad." + name].shape(), parameter.shape()) << name;
  }
  EXPECT_EQ(tensors.size(), (*model)->NamedParameters().size() + 2);

  // Ids outside the vocabulary are refused.
  ASSERT_TRUE(WriteSafetensors(Path("bad_batch.safetensors").string(),
                               {{"src", Tensor::FromInts(std::vector<int32_t>{4, 99}, {1, 2})},
                                {"tgt_in", Tensor::FromInts(std::vector<int32_t>{1, 4}, {1, 2})},
                                {"tgt_out", Tensor::FromInts(std::vector<int32_t>{4, 2}, {1, 2})}})
                  .ok());
  EXPECT_TRUE(FailsWith(Run("dump --config tiny.toml --checkpoint dump_init.safetensors "
                            "--batch bad_batch.safetensors --out bad.safetensors"),
                        {"src holds id 99 outside the vocabulary"}));
  EXPECT_FALSE(fs::exists(Path("bad.safetensors")));
}

// ---- keys and help ----------------------------------------------------------------------

TEST_F(CliTest, KeysPrintsConfigMd) {
  const CliOutput output = Run("keys");
  ASSERT_EQ(output.exit_code, 0) << output.err;
  const std::string reference =
      ReadFile(fs::path(ATTNLAB_SOURCE_DIR) / "experiments" / "CONFIG.md");
  ASSERT_FALSE(reference.empty());
  EXPECT_TRUE(output.out == reference) << "experiments/CONFIG.md is stale: regenerate it with "
                                          "`attnlab keys > experiments/CONFIG.md`";
}

TEST_F(CliTest, HelpListsEveryCommand) {
  const CliOutput output = Run("--help");
  ASSERT_EQ(output.exit_code, 0) << output.err;
  EXPECT_EQ(output.err, "");
  for (const char* command : kCommands) {
    EXPECT_NE(output.out.find(std::string("\n  ") + command + " "), std::string::npos)
        << command << " missing from:\n"
        << output.out;
  }
  EXPECT_EQ(Run("-h").out, output.out);
  // Without a command: the same overview, and exit code 2 (a usage error).
  const CliOutput bare = Run("");
  EXPECT_EQ(bare.exit_code, 2);
  EXPECT_EQ(bare.out, output.out);
}

TEST_F(CliTest, EveryCommandHasHelpThatExitsZero) {
  for (const char* command : kCommands) {
    const CliOutput output = Run(std::string(command) + " --help");
    EXPECT_EQ(output.exit_code, 0) << command << ": " << output.err;
    EXPECT_EQ(output.err, "") << command;
    EXPECT_EQ(output.out.rfind(std::string("usage: attnlab ") + command, 0), 0u) << command << ":\n"
                                                                                 << output.out;
  }
  // --help anywhere among the arguments, and even after arguments that are wrong.
  EXPECT_EQ(Run("train nonexistent.toml --bogus --help").exit_code, 0);
}

// ---- Errors -----------------------------------------------------------------------------

TEST_F(CliTest, UsageErrorsAreOneLineNamingTheProblem) {
  const CliOutput unknown_command = Run("trian tiny.toml");
  EXPECT_EQ(unknown_command.exit_code, 2);
  EXPECT_TRUE(FailsWith(unknown_command, {"unknown command 'trian'", "attnlab --help"}));
  EXPECT_TRUE(FailsWith(Run("train tiny.toml --run-dir somewhere"),
                        {"unknown flag --run-dir", "did you mean --run_dir?"}));
  EXPECT_TRUE(FailsWith(Run("evaluate --checkpont run/checkpoint_best.safetensors"),
                        {"unknown flag --checkpont", "did you mean --checkpoint?"}));
  EXPECT_TRUE(FailsWith(Run("train"), {"expected one config file"}));
  EXPECT_TRUE(FailsWith(Run("train tiny.toml --quiet=yes"), {"--quiet takes no value"}));
  EXPECT_TRUE(FailsWith(Run("train tiny.toml --run_dir"), {"--run_dir needs a value"}));
  EXPECT_TRUE(FailsWith(Run("evaluate"), {"expected --checkpoint"}));
  EXPECT_TRUE(FailsWith(Run("decode"), {"expected --checkpoint"}));
  EXPECT_TRUE(FailsWith(Run("score"), {"expected --checkpoint"}));
  EXPECT_TRUE(FailsWith(Run("decode --checkpoint run/checkpoint_best.safetensors --nbest 3"),
                        {"--nbest 3 needs --beam 3 or more", "--beam is 1"}));
  EXPECT_TRUE(FailsWith(Run("decode --checkpoint run/checkpoint_best.safetensors --beam 2 "
                            "--nbest 0"),
                        {"--nbest must be in [1, 64]"}));
  EXPECT_TRUE(FailsWith(Run("dump --config tiny.toml"), {"missing --checkpoint"}));
  EXPECT_TRUE(FailsWith(Run("init --config tiny.toml"), {"expected --config=FILE --out=FILE"}));
  EXPECT_TRUE(FailsWith(Run("report"), {"no run directory given"}));
  EXPECT_TRUE(FailsWith(Run("report run --bogus"), {"unknown flag '--bogus'"}));
  EXPECT_TRUE(FailsWith(Run("keys extra"), {"takes no arguments"}));
}

TEST_F(CliTest, ConfigErrorsNameTheFileKeyAndNearestKey) {
  EXPECT_TRUE(FailsWith(Run("train missing.toml"), {"missing.toml", "no such config file"}));
  WriteFile(Path("typo.toml"), "[model]\nd_model = 16\nd_modle = 16\n");
  EXPECT_TRUE(FailsWith(Run("train typo.toml"), {"typo.toml:3", "unknown key 'model.d_modle'",
                                                 "did you mean 'model.d_model'?"}));
  EXPECT_TRUE(FailsWith(Run("train tiny.toml --set model.d_modle=16"),
                        {"model.d_modle", "did you mean 'model.d_model'?"}));
  EXPECT_TRUE(FailsWith(Run("train tiny.toml --set model.d_model=abc"),
                        {"--set model.d_model=abc", "'model.d_model'", "integer"}));
  EXPECT_TRUE(
      FailsWith(Run("train tiny.toml --set model.dropout=yes"), {"'model.dropout'", "float"}));
  EXPECT_TRUE(FailsWith(Run("init --config typo.toml --out never.safetensors"),
                        {"typo.toml:3", "model.d_modle"}));
  EXPECT_FALSE(fs::exists(Path("never.safetensors")));
}

TEST_F(CliTest, ThreadsMustBePositive) {
  EXPECT_TRUE(FailsWith(Run("train tiny.toml --run_dir zero_threads --threads 0"),
                        {"--threads must be in [1, 1024], got 0"}));
  EXPECT_FALSE(fs::exists(Path("zero_threads")));
  EXPECT_TRUE(FailsWith(Run("evaluate --checkpoint run/checkpoint_best.safetensors --threads 0"),
                        {"--threads must be in [1, 1024], got 0"}));
  EXPECT_TRUE(FailsWith(Run("decode --checkpoint run/checkpoint_best.safetensors --threads=-3"),
                        {"--threads must be in [1, 1024], got -3"}));
  EXPECT_TRUE(FailsWith(Run("evaluate --checkpoint run/checkpoint_best.safetensors --threads two"),
                        {"--threads needs an integer, got 'two'"}));
}

TEST_F(CliTest, CorruptOrMissingCheckpointsAreOneLineErrors) {
  ASSERT_EQ(train_->exit_code, 0) << train_->err;
  WriteFile(Path("junk.safetensors"), std::string("\x10\0\0\0\0\0\0\0{\"a\": [1, 2, 3", 22));
  EXPECT_TRUE(FailsWith(Run("evaluate --checkpoint junk.safetensors"),
                        {"junk.safetensors", "not a valid safetensors file"}));
  const std::string checkpoint = ReadFile(Path("run/checkpoint_best.safetensors"));
  WriteFile(Path("truncated.safetensors"), checkpoint.substr(0, checkpoint.size() / 2));
  EXPECT_TRUE(FailsWith(Run("evaluate --checkpoint truncated.safetensors --split valid"),
                        {"truncated.safetensors", "not a valid safetensors file"}));
  WriteFile(Path("corrupt.in"), "1 2 3\n");
  EXPECT_TRUE(FailsWith(Run("decode --checkpoint truncated.safetensors --input corrupt.in"),
                        {"truncated.safetensors"}));
  EXPECT_TRUE(FailsWith(Run("evaluate --checkpoint absent.safetensors"),
                        {"absent.safetensors", "cannot open"}));
  // A safetensors file that is not a checkpoint (the attention maps of the run).
  EXPECT_TRUE(FailsWith(Run("evaluate --checkpoint run/attention.safetensors"),
                        {"not an attnlab checkpoint"}));
  EXPECT_TRUE(FailsWith(Run("evaluate --checkpoint run/checkpoint_best.safetensors --split train"),
                        {"--split must be valid or test"}));
  EXPECT_TRUE(
      FailsWith(Run("decode --checkpoint run/checkpoint_best.safetensors --input absent.txt"),
                {"absent.txt", "cannot open"}));
}

TEST_F(CliTest, RunDirectoriesAreNeverOverwritten) {
  ASSERT_EQ(train_->exit_code, 0) << train_->err;
  const std::string metrics = ReadFile(Path("run/metrics.jsonl"));
  EXPECT_TRUE(
      FailsWith(Run("train tiny.toml --run_dir run --quiet"), {"already holds a run", "--resume"}));
  EXPECT_EQ(ReadFile(Path("run/metrics.jsonl")), metrics);
  EXPECT_TRUE(
      FailsWith(Run("train tiny.toml --run_dir fresh --resume --quiet"), {"no checkpoint"}));
  EXPECT_FALSE(fs::exists(Path("fresh")));
}

TEST_F(CliTest, DivergingRunsStopWithOneLineOrSkipQuietly) {
  // nan_policy stop: a one-line error naming the step and the last good checkpoint.
  EXPECT_TRUE(FailsWith(Run("train tiny.toml --run_dir nan --quiet --threads 1 --set train.lr=1e12 "
                            "--set train.checkpoint_every=1"),
                        {"the loss is", "training stopped", "nan/checkpoint_last.safetensors"}));
  // nan_policy skip: the run finishes, and --quiet means quiet.
  const CliOutput skip =
      Run("train tiny.toml --run_dir skip --quiet --threads 1 --set train.lr=1e12 "
          "--set train.nan_policy=skip");
  EXPECT_EQ(skip.exit_code, 0) << skip.err;
  EXPECT_EQ(skip.err, "");
  EXPECT_NE(skip.out.find("run: skip  (30 steps"), std::string::npos) << skip.out;
  EXPECT_TRUE(fs::exists(Path("skip/checkpoint_best.safetensors")));
}

}  // namespace
}  // namespace attnlab::experiments
