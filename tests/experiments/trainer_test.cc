// The trainer end to end on a tiny copy task: the files of a run, bit-identical resume
// after a stop request (after a step, between micro-batches, inside an evaluation, in
// the final test), Ctrl-C/SIGTERM saving a loadable checkpoint, the NaN policies (stop
// names the last good checkpoint; skip finishes the run or stops after
// train.max_skipped_steps; a non-finite model is never saved), refusing to reuse a run
// directory, the run directory lock, and what --resume refuses. The same through the
// binary, with real signals, kills and disk limits, is fault_test.cc.
#include "experiments/trainer/trainer.h"

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "experiments/config/config.h"
#include "experiments/trainer/checkpoint.h"
#include "experiments/trainer/model_factory.h"
#include "experiments/trainer/run_directory_lock.h"
#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/core/error.h"
#include "framework/core/stop_request.h"
#include "framework/io/safetensors.h"
#include "framework/optim/adam.h"
#include "gtest/gtest.h"
#include "tests/support/file_contents.h"
#include "tests/support/metrics_jsonl.h"
#include "tests/support/tensor_bytes.h"
#include "tests/support/tiny_config.h"
#include "tests/support/trainer_run_test.h"

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using attnlab::testing::LoadedTensorBytesOf;
using attnlab::testing::ReadFile;
using attnlab::testing::ReadMetricsJsonl;
using attnlab::testing::RecordsOfKind;
using testing::RequestStopAfterStep;
using testing::StopAtQuestion;
using testing::StoppedAfter;
using testing::TinyConfig;

std::vector<int64_t> Steps(const std::vector<Json>& records) {
  std::vector<int64_t> steps;
  for (const Json& record : records) steps.push_back(record.at("step").get<int64_t>());
  return steps;
}

// Name -> bytes of every file in a directory.
std::map<std::string, std::string> DirectoryContents(const fs::path& directory) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::directory_iterator(directory)) {
    files[entry.path().filename().string()] = ReadFile(entry.path());
  }
  return files;
}

// Loads a checkpoint strictly into a model (and Adam) built from its own metadata.
absl::StatusOr<CheckpointContents> LoadIntoFreshModel(const fs::path& path) {
  ASSIGN_OR_RETURN(CheckpointContents metadata, ReadCheckpointMetadata(path.string()));
  ASSIGN_OR_RETURN(Config config, Config::Parse(metadata.config_toml, "saved config"));
  ASSIGN_OR_RETURN(std::shared_ptr<nn::Seq2SeqModel> model,
                   BuildModel(config, static_cast<int64_t>(metadata.source_vocabulary.size()),
                              static_cast<int64_t>(metadata.target_vocabulary.size())));
  Adam optimizer(model->NamedParameters());
  return LoadCheckpoint(path.string(), *model, &optimizer);
}

// Two runs' records (same numbers, timings aside; no record missing or repeated), final
// parameters and optimizer state, best checkpoint and samples are identical, bit for bit.
void ExpectIdenticalRuns(const fs::path& a, const fs::path& b) {
  const std::vector<Json> records_a = ReadMetricsJsonl(a);
  const std::vector<Json> records_b = ReadMetricsJsonl(b);
  ASSERT_EQ(records_a.size(), records_b.size());
  for (size_t i = 0; i < records_a.size(); ++i) {
    const Json& ra = records_a[i];
    const Json& rb = records_b[i];
    EXPECT_EQ(ra.at("kind"), rb.at("kind")) << i;
    EXPECT_EQ(ra.at("step"), rb.at("step")) << i;
    EXPECT_EQ(ra.value("decoder", ""), rb.value("decoder", "")) << i;
    for (const char* key : {"loss", "lr", "epoch", "token_accuracy", "exact_match"}) {
      if (!ra.contains(key)) continue;
      ASSERT_TRUE(rb.contains(key)) << key << " in record " << i;
      // Exactly equal doubles, not merely close.
      EXPECT_EQ(ra.at(key).get<double>(), rb.at(key).get<double>())
          << key << " of " << ra.at("kind") << " record at step " << ra.at("step");
    }
  }
  const auto tensors_a = LoadedTensorBytesOf(a / "checkpoint_last.safetensors");
  const auto tensors_b = LoadedTensorBytesOf(b / "checkpoint_last.safetensors");
  ASSERT_FALSE(tensors_a.empty());
  ASSERT_EQ(tensors_a.size(), tensors_b.size());
  for (const auto& [name, bytes] : tensors_a) {
    ASSERT_TRUE(tensors_b.count(name)) << name;
    EXPECT_TRUE(bytes == tensors_b.at(name)) << name << " differs";
  }
  EXPECT_EQ(LoadedTensorBytesOf(a / "checkpoint_best.safetensors"),
            LoadedTensorBytesOf(b / "checkpoint_best.safetensors"));
  EXPECT_EQ(ReadFile(a / "samples.txt"), ReadFile(b / "samples.txt"));
}

// "" if the checkpoint's parameters are all finite (loaded into a model of its config).
std::string NonFiniteParametersOf(const fs::path& path) {
  absl::StatusOr<CheckpointContents> metadata = ReadCheckpointMetadata(path.string());
  if (!metadata.ok()) return std::string(metadata.status().message());
  absl::StatusOr<Config> config = Config::Parse(metadata->config_toml, "saved config");
  if (!config.ok()) return std::string(config.status().message());
  absl::StatusOr<std::shared_ptr<nn::Seq2SeqModel>> model =
      BuildModel(*config, static_cast<int64_t>(metadata->source_vocabulary.size()),
                 static_cast<int64_t>(metadata->target_vocabulary.size()));
  if (!model.ok()) return std::string(model.status().message());
  absl::Status loaded = LoadCheckpoint(path.string(), **model, nullptr).status();
  if (!loaded.ok()) return std::string(loaded.message());
  return DescribeNonFiniteParameters(**model);
}

class TrainerTest : public testing::TrainerRunTest {};

// ---- A run's files ----------------------------------------------------------------------

TEST_F(TrainerTest, RunWritesEveryArtefact) {
  const Config config = TinyConfig();
  const RunOptions options = Options("run");
  absl::StatusOr<TrainResult> result = Train(config, options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->steps, 30);
  EXPECT_FALSE(result->interrupted);
  EXPECT_EQ(result->run_dir, options.run_dir);
  for (const char* metric : {"loss", "token_accuracy", "exact_match"}) {
    EXPECT_TRUE(result->valid_metrics.count(metric)) << metric;
    EXPECT_TRUE(result->test_metrics.count(metric)) << metric;
  }

  const fs::path run_dir = options.run_dir;
  for (const char* file :
       {"config.toml", "metrics.jsonl", "checkpoint_last.safetensors",
        "checkpoint_best.safetensors", "samples.txt", "attention.safetensors", "report.html"}) {
    EXPECT_TRUE(fs::is_regular_file(run_dir / file)) << file;
  }
  // No temporary file is left behind.
  for (const auto& entry : fs::directory_iterator(run_dir)) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
  }

  // config.toml is the resolved config and loads back to the same thing.
  absl::StatusOr<Config> saved = Config::Load((run_dir / "config.toml").string());
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(saved->ToToml(), config.ToToml());

  // metrics.jsonl: train records at every log step, eval records at every eval step, and
  // one test record at the end.
  const std::vector<Json> records = ReadMetricsJsonl(run_dir);
  const std::vector<Json> train = RecordsOfKind(records, "train");
  EXPECT_EQ(Steps(train), (std::vector<int64_t>{5, 10, 15, 20, 25, 30}));
  for (const Json& record : train) {
    ASSERT_TRUE(record.at("loss").is_number());
    EXPECT_GT(record.at("loss").get<double>(), 0.0);
    EXPECT_DOUBLE_EQ(record.at("lr").get<double>(), 0.003);
    for (const char* key : {"epoch", "tokens_per_second", "elapsed_seconds"}) {
      EXPECT_TRUE(record.contains(key)) << key;
    }
  }
  const std::vector<Json> eval = RecordsOfKind(records, "eval");
  EXPECT_EQ(Steps(eval), (std::vector<int64_t>{10, 20, 30}));
  for (const Json& record : eval) {
    EXPECT_EQ(record.at("split"), "valid");
    for (const char* key :
         {"loss", "token_accuracy", "exact_match", "seconds", "elapsed_seconds"}) {
      EXPECT_TRUE(record.at(key).is_number()) << key;
    }
  }
  // An evaluation follows its step's training: same elapsed time as that step's record.
  for (size_t i = 0; i < eval.size(); ++i) {
    EXPECT_EQ(eval[i].at("elapsed_seconds"), train[2 * i + 1].at("elapsed_seconds"));
  }
  const std::vector<Json> test = RecordsOfKind(records, "test");
  ASSERT_EQ(test.size(), 1u);
  EXPECT_EQ(test[0].at("step"), 30);
  EXPECT_EQ(test[0].at("decoder"), "greedy");
  EXPECT_EQ(test[0].at("loss").get<double>(), result->test_metrics.at("loss"));
  EXPECT_EQ(records.size(), train.size() + eval.size() + test.size());

  // The checkpoints load strictly; `last` is at the final step.
  absl::StatusOr<CheckpointContents> last =
      LoadIntoFreshModel(run_dir / "checkpoint_last.safetensors");
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->progress.step, 30);
  absl::StatusOr<CheckpointContents> best =
      LoadIntoFreshModel(run_dir / "checkpoint_best.safetensors");
  ASSERT_TRUE(best.ok()) << best.status();
  EXPECT_EQ(best->progress.step, best->progress.best_step);
  EXPECT_TRUE(best->progress.step == 10 || best->progress.step == 20 || best->progress.step == 30);

  // samples.txt: eval.samples validation examples.
  const std::string samples = ReadFile(run_dir / "samples.txt");
  size_t count = 0;
  for (size_t at = samples.find("source:"); at != std::string::npos;
       at = samples.find("source:", at + 1)) {
    ++count;
  }
  EXPECT_EQ(count, 4u);
  EXPECT_NE(samples.find("reference:"), std::string::npos);
  EXPECT_NE(samples.find("prediction:"), std::string::npos);

  // attention.safetensors: maps of eval.attention_plots examples with their tokens.
  absl::StatusOr<SafetensorsContents> attention =
      ReadSafetensors((run_dir / "attention.safetensors").string());
  ASSERT_TRUE(attention.ok()) << attention.status();
  EXPECT_FALSE(attention->tensors.empty());
  for (const auto& [name, tensor] : attention->tensors) {
    EXPECT_TRUE(name.rfind("example0.", 0) == 0 || name.rfind("example1.", 0) == 0) << name;
    EXPECT_EQ(tensor.rank(), 3) << name;
  }
  EXPECT_TRUE(attention->metadata.count("example1.source_tokens"));
  EXPECT_TRUE(attention->metadata.count("example1.target_tokens"));

  const std::string report = ReadFile(run_dir / "report.html");
  EXPECT_NE(report.find("<html"), std::string::npos);
  EXPECT_NE(report.find("</html>"), std::string::npos);
}

// ---- Resume -----------------------------------------------------------------------------

TEST_F(TrainerTest, ResumeAfterSigintIsBitIdenticalToAnUninterruptedRun) {
  const Config config = TinyConfig();
  absl::StatusOr<TrainResult> a = Train(config, Options("a"));
  ASSERT_TRUE(a.ok()) << a.status();

  // B: interrupted by Ctrl-C's stop request after step 13 (between two log steps and
  // two checkpoints), then resumed to the end.
  RunOptions interrupted = Options("b");
  interrupted.after_step = RequestStopAfterStep(13);
  absl::StatusOr<TrainResult> b_first = Train(config, interrupted);
  ASSERT_TRUE(StoppedAfter(b_first, 13));
  absl::StatusOr<TrainResult> b = Train(config, Options("b", /*resume=*/true));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_FALSE(b->interrupted);
  EXPECT_EQ(b->steps, 30);

  EXPECT_EQ(a->test_metrics, b->test_metrics);
  EXPECT_EQ(a->valid_metrics, b->valid_metrics);
  ExpectIdenticalRuns(directory_ / "a", directory_ / "b");
}

// ---- Mixed precision ----------------------------------------------------------------

// train.dtype = "bf16": the run learns, its numbers differ from the f32 run's (the matmul
// inputs were rounded), the saved config says bf16, and it reproduces exactly.
TEST_F(TrainerTest, Bf16RunLearnsDiffersFromF32AndReproduces) {
  if (!dnnl_backend::HasNativeBF16()) GTEST_SKIP() << "no native bf16 on this CPU";
  absl::StatusOr<TrainResult> f32 = Train(TinyConfig(), Options("f32"));
  ASSERT_TRUE(f32.ok()) << f32.status();
  const Config bf16_config = TinyConfig({"train.dtype=bf16"});
  absl::StatusOr<TrainResult> bf16 = Train(bf16_config, Options("bf16"));
  ASSERT_TRUE(bf16.ok()) << bf16.status();
  absl::StatusOr<TrainResult> again = Train(bf16_config, Options("bf16_again"));
  ASSERT_TRUE(again.ok()) << again.status();

  const std::vector<Json> f32_train = RecordsOfKind(ReadMetricsJsonl(directory_ / "f32"), "train");
  const std::vector<Json> bf16_train =
      RecordsOfKind(ReadMetricsJsonl(directory_ / "bf16"), "train");
  const std::vector<Json> again_train =
      RecordsOfKind(ReadMetricsJsonl(directory_ / "bf16_again"), "train");
  ASSERT_GE(bf16_train.size(), 2u);
  ASSERT_EQ(bf16_train.size(), f32_train.size());
  ASSERT_EQ(bf16_train.size(), again_train.size());
  EXPECT_LT(bf16_train.back().at("loss").get<double>(),
            bf16_train.front().at("loss").get<double>());
  EXPECT_NE(bf16_train.back().at("loss").get<double>(), f32_train.back().at("loss").get<double>());
  EXPECT_NEAR(bf16_train.back().at("loss").get<double>(), f32_train.back().at("loss").get<double>(),
              0.1 * f32_train.back().at("loss").get<double>());
  for (size_t i = 0; i < bf16_train.size(); ++i) {
    EXPECT_EQ(bf16_train[i].at("loss").get<double>(), again_train[i].at("loss").get<double>()) << i;
  }
  EXPECT_EQ(bf16->test_metrics, again->test_metrics);
  EXPECT_NE(ReadFile(directory_ / "bf16" / "config.toml").find("dtype = \"bf16\""),
            std::string::npos);
}

// ---- Ctrl-C and SIGTERM ----------------------------------------------------------------

TEST_F(TrainerTest, SigintSavesALoadableCheckpointAtTheInterruptedStep) {
  RunOptions options = Options("run");
  std::vector<int64_t> seen;
  options.after_step = [&seen](int64_t step) {
    seen.push_back(step);
    if (step == 7) RequestStop(SIGINT);
  };
  absl::StatusOr<TrainResult> result = Train(TinyConfig(), options);
  ASSERT_TRUE(StoppedAfter(result, 7));
  EXPECT_EQ(seen.size(), 7u);  // it stopped right after the request
  EXPECT_EQ(StopSignal(), SIGINT);

  const fs::path run_dir = options.run_dir;
  absl::StatusOr<CheckpointContents> last =
      LoadIntoFreshModel(run_dir / "checkpoint_last.safetensors");
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->progress.step, 7);
  // Not a finished run: no test record, samples or report.
  EXPECT_TRUE(RecordsOfKind(ReadMetricsJsonl(run_dir), "test").empty());
  EXPECT_FALSE(fs::exists(run_dir / "report.html"));
}

TEST_F(TrainerTest, SigtermStopsLikeCtrlC) {
  RunOptions options = Options("run");
  options.after_step = RequestStopAfterStep(12, SIGTERM);
  absl::StatusOr<TrainResult> result = Train(TinyConfig(), options);
  ASSERT_TRUE(StoppedAfter(result, 12));
  absl::StatusOr<CheckpointContents> last =
      LoadIntoFreshModel(fs::path(options.run_dir) / "checkpoint_last.safetensors");
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->progress.step, 12);
  // Resuming runs the remaining steps.
  absl::StatusOr<TrainResult> resumed = Train(TinyConfig(), Options("run", /*resume=*/true));
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->steps, 30);
}

// ---- NaN policy -------------------------------------------------------------------------

TEST_F(TrainerTest, NanStopIsADataLossErrorAndKeepsTheLastGoodCheckpoint) {
  const Config config = TinyConfig({"train.lr=1e12", "train.schedule=\"constant\"",
                                    "train.checkpoint_every=1", "train.nan_policy=\"stop\""});
  RunOptions options = Options("run");
  const fs::path last_path = fs::path(options.run_dir) / "checkpoint_last.safetensors";
  int64_t last_step = 0;
  std::string last_bytes;
  options.after_step = [&](int64_t step) {
    last_step = step;
    last_bytes = ReadFile(last_path);
  };
  absl::StatusOr<TrainResult> result = Train(config, options);
  ASSERT_FALSE(result.ok()) << "lr 1e12 trained 30 steps without a NaN";
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss) << result.status();
  const std::string message(result.status().message());
  EXPECT_NE(message.find("step " + std::to_string(last_step + 1)), std::string::npos) << message;
  EXPECT_NE(message.find(last_path.string()), std::string::npos) << message;
  EXPECT_NE(message.find("nan_policy"), std::string::npos) << message;

  // At least one good step was saved, and the failing step did not touch it.
  ASSERT_GE(last_step, 1);
  ASSERT_FALSE(last_bytes.empty());
  EXPECT_TRUE(ReadFile(last_path) == last_bytes);
  absl::StatusOr<CheckpointContents> last = LoadIntoFreshModel(last_path);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->progress.step, last_step);
  EXPECT_TRUE(RecordsOfKind(ReadMetricsJsonl(options.run_dir), "skipped").empty());
}

TEST_F(TrainerTest, NanSkipFinishesTheRunWithSkippedRecordsAndCheckpoints) {
  const Config config = TinyConfig({"train.lr=1e12", "train.schedule=\"constant\"",
                                    "train.nan_policy=\"skip\"", "train.max_skipped_steps=1000"});
  const RunOptions options = Options("run");
  absl::StatusOr<TrainResult> result = Train(config, options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->steps, 30);
  EXPECT_FALSE(result->interrupted);

  const std::vector<Json> records = ReadMetricsJsonl(options.run_dir);
  const std::vector<Json> skipped = RecordsOfKind(records, "skipped");
  ASSERT_FALSE(skipped.empty());
  for (const Json& record : skipped) {
    const int64_t step = record.at("step").get<int64_t>();
    EXPECT_GE(step, 1);
    EXPECT_LE(step, 30);
  }
  EXPECT_EQ(RecordsOfKind(records, "test").size(), 1u);
  // Skipped steps keep the evaluation and checkpoint schedule: the finished run can be
  // evaluated and resumed like any other.
  EXPECT_EQ(Steps(RecordsOfKind(records, "eval")), (std::vector<int64_t>{10, 20, 30}));
  absl::StatusOr<CheckpointContents> last =
      LoadIntoFreshModel(fs::path(options.run_dir) / "checkpoint_last.safetensors");
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->progress.step, 30);
  EXPECT_TRUE(fs::exists(fs::path(options.run_dir) / "report.html"));
}

TEST_F(TrainerTest, ANanValidationMetricIsNeverTheBest) {
  // The diverged model's validation loss is NaN at every evaluation.
  const Config config =
      TinyConfig({"train.lr=1e12", "train.schedule=\"constant\"", "train.nan_policy=\"skip\"",
                  "train.max_skipped_steps=1000", "train.early_stopping_metric=\"loss\""});
  const RunOptions options = Options("run");
  absl::StatusOr<TrainResult> result = Train(config, options);
  ASSERT_TRUE(result.ok()) << result.status();
  const std::vector<Json> eval = RecordsOfKind(ReadMetricsJsonl(options.run_dir), "eval");
  ASSERT_FALSE(eval.empty());
  for (const Json& record : eval) ASSERT_TRUE(record.at("loss").is_null()) << record.dump();
  // No best checkpoint, and the last one (whose progress holds the best metric so far)
  // still reads back: a NaN best would be written as null and make it unreadable.
  EXPECT_FALSE(fs::exists(fs::path(options.run_dir) / "checkpoint_best.safetensors"));
  absl::StatusOr<CheckpointContents> last =
      LoadIntoFreshModel(fs::path(options.run_dir) / "checkpoint_last.safetensors");
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->progress.best_step, -1);
  // And it resumes (here: nothing left to do but the final evaluation).
  EXPECT_TRUE(Train(config, Options("run", /*resume=*/true)).ok());
}

TEST_F(TrainerTest, CtrlCStopsARunThatIsSkippingSteps) {
  const Config config = TinyConfig({"train.lr=1e12", "train.schedule=\"constant\"",
                                    "train.nan_policy=\"skip\"", "train.max_skipped_steps=1000"});
  RunOptions options = Options("run");
  options.after_step = RequestStopAfterStep(6);
  absl::StatusOr<TrainResult> result = Train(config, options);
  ASSERT_TRUE(StoppedAfter(result, 6));
  absl::StatusOr<CheckpointContents> last =
      LoadIntoFreshModel(fs::path(options.run_dir) / "checkpoint_last.safetensors");
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->progress.step, 6);
}

// ---- Stop requests inside a step, an evaluation, the final test --------------------------

TEST_F(TrainerTest, AStopBetweenMicroBatchesDropsThePartialStepAndResumesBitIdentically) {
  const Config config = TinyConfig({"train.accumulation=3"});
  ASSERT_TRUE(Train(config, Options("a")).ok());
  // Each step asks once before it and once before each of its 3 micro-batches: the 23rd
  // question comes after the first micro-batch of step 6.
  RunOptions interrupted = Options("b");
  interrupted.stop_requested = StopAtQuestion(23);
  absl::StatusOr<TrainResult> first = Train(config, interrupted);
  ASSERT_TRUE(StoppedAfter(first, 5));
  absl::StatusOr<CheckpointContents> last =
      LoadIntoFreshModel(directory_ / "b" / "checkpoint_last.safetensors");
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->progress.step, 5);
  ASSERT_TRUE(Train(config, Options("b", /*resume=*/true)).ok());
  ExpectIdenticalRuns(directory_ / "a", directory_ / "b");
}

TEST_F(TrainerTest, AStopInsideAValidationIsResumedByThatValidation) {
  const Config config = TinyConfig();
  ASSERT_TRUE(Train(config, Options("a")).ok());
  // Two questions per step (before it, before its one micro-batch); the 22nd is before the
  // second batch of step 10's validation.
  RunOptions interrupted = Options("b");
  interrupted.stop_requested = StopAtQuestion(22);
  absl::StatusOr<TrainResult> first = Train(config, interrupted);
  ASSERT_TRUE(StoppedAfter(first, 10));
  EXPECT_TRUE(RecordsOfKind(ReadMetricsJsonl(directory_ / "b"), "eval").empty());
  absl::StatusOr<CheckpointContents> last =
      LoadIntoFreshModel(directory_ / "b" / "checkpoint_last.safetensors");
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_TRUE(last->progress.evaluation_pending);
  ASSERT_TRUE(Train(config, Options("b", /*resume=*/true)).ok());
  ExpectIdenticalRuns(directory_ / "a", directory_ / "b");
}

TEST_F(TrainerTest, AStopInTheFinalTestLeavesTheEndToResumeWithOneRecordPerDecoder) {
  const Config config = TinyConfig({"eval.beam_size=2"});
  ASSERT_TRUE(Train(config, Options("a")).ok());
  // Stopped during beam search, after the greedy test record was written.
  RunOptions interrupted = Options("b");
  const fs::path run_b = directory_ / "b";
  interrupted.stop_requested = [&run_b] {
    return !RecordsOfKind(ReadMetricsJsonl(run_b), "test").empty();
  };
  absl::StatusOr<TrainResult> first = Train(config, interrupted);
  ASSERT_TRUE(StoppedAfter(first, 30));
  EXPECT_FALSE(fs::exists(run_b / "result.json"));
  ASSERT_TRUE(Train(config, Options("b", /*resume=*/true)).ok());
  EXPECT_EQ(RecordsOfKind(ReadMetricsJsonl(run_b), "test").size(), 2u);  // greedy and beam2
  ExpectIdenticalRuns(directory_ / "a", run_b);
}

// ---- What --resume refuses -------------------------------------------------------------

TEST_F(TrainerTest, ResumingAFinishedRunSaysSoAndChangesNothing) {
  const Config config = TinyConfig();
  ASSERT_TRUE(Train(config, Options("run")).ok());
  const auto before = DirectoryContents(directory_ / "run");
  absl::StatusOr<TrainResult> again = Train(config, Options("run", /*resume=*/true));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->already_finished);
  EXPECT_EQ(again->steps, 30);
  EXPECT_EQ(DirectoryContents(directory_ / "run"), before);
}

TEST_F(TrainerTest, ResumingWithChangedDataOrModelKeysIsRefusedNamingThem) {
  RunOptions options = Options("run");
  options.after_step = RequestStopAfterStep(5);
  ASSERT_TRUE(Train(TinyConfig(), options).ok());
  const auto before = DirectoryContents(directory_ / "run");
  absl::StatusOr<TrainResult> changed =
      Train(TinyConfig({"task.vocab_size=6", "model.d_ff=64"}), Options("run", /*resume=*/true));
  ASSERT_FALSE(changed.ok());
  EXPECT_EQ(changed.status().code(), absl::StatusCode::kFailedPrecondition) << changed.status();
  const std::string message(changed.status().message());
  EXPECT_NE(message.find("task.vocab_size 5 -> 6"), std::string::npos) << message;
  EXPECT_NE(message.find("model.d_ff 32 -> 64"), std::string::npos) << message;
  EXPECT_EQ(DirectoryContents(directory_ / "run"), before);
  // Keys that change neither (more steps, another learning rate) are fine.
  EXPECT_TRUE(
      Train(TinyConfig({"train.max_steps=12", "train.lr=0.001"}), Options("run", true)).ok());
}

// ---- The run directory lock and stale temporaries ---------------------------------------

TEST_F(TrainerTest, ALockedRunDirectoryIsRefusedNamingTheHoldersPid) {
  fs::create_directories(directory_ / "run");
  {
    absl::StatusOr<RunDirectoryLock> held =
        RunDirectoryLock::Acquire((directory_ / "run").string());
    ASSERT_TRUE(held.ok()) << held.status();
    absl::StatusOr<TrainResult> second = Train(TinyConfig(), Options("run"));
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
    EXPECT_NE(second.status().message().find("pid " + std::to_string(getpid())), std::string::npos)
        << second.status();
    EXPECT_FALSE(fs::exists(directory_ / "run" / "metrics.jsonl"));
  }
  EXPECT_TRUE(Train(TinyConfig(), Options("run")).ok());  // released with its holder
}

TEST_F(TrainerTest, StaleTemporariesOfDeadProcessesAreRemovedOthersKept) {
  const pid_t dead = fork();
  if (dead == 0) _exit(0);
  ASSERT_GT(dead, 0);
  ASSERT_EQ(waitpid(dead, nullptr, 0), dead);
  const fs::path run_dir = directory_ / "run";
  fs::create_directories(run_dir);
  const std::string stale = "checkpoint_last.safetensors.tmp." + std::to_string(dead) + ".3";
  const std::string living = "checkpoint_best.safetensors.tmp." + std::to_string(getppid()) + ".0";
  for (const std::string& name : {stale, living, std::string("notes.tmp.txt")}) {
    std::ofstream(run_dir / name) << "partial";
  }
  ASSERT_TRUE(Train(TinyConfig(), Options("run")).ok());
  EXPECT_FALSE(fs::exists(run_dir / stale));
  EXPECT_TRUE(fs::exists(run_dir / living));
  EXPECT_TRUE(fs::exists(run_dir / "notes.tmp.txt"));
}

// ---- Non-finite models ------------------------------------------------------------------

TEST_F(TrainerTest, ANonFiniteModelIsNeverSavedAndTheNanStopNamesOnlyAFiniteCheckpoint) {
  // The case (SGD at lr 1e6, a checkpoint every step) and the default interval.
  for (const std::string interval : {"1", "10"}) {
    SCOPED_TRACE("checkpoint_every " + interval);
    const std::string name = "run" + interval;
    absl::StatusOr<TrainResult> result =
        Train(TinyConfig({"train.optimizer=\"sgd\"", "train.schedule=\"constant\"", "train.lr=1e6",
                          "train.checkpoint_every=" + interval}),
              Options(name));
    ASSERT_FALSE(result.ok()) << "lr 1e6 trained 30 steps without diverging";
    EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss) << result.status();
    const std::string message(result.status().message());
    for (const char* file : {"checkpoint_last.safetensors", "checkpoint_best.safetensors"}) {
      const fs::path path = directory_ / name / file;
      if (message.find(path.string()) != std::string::npos) {
        EXPECT_TRUE(fs::exists(path)) << message;
      }
      if (fs::exists(path)) {
        EXPECT_EQ(NonFiniteParametersOf(path), "") << path;
      }
    }
  }
}

TEST_F(TrainerTest, TooManySkippedStepsInARowStopTheRun) {
  absl::StatusOr<TrainResult> result =
      Train(TinyConfig({"train.lr=1e12", "train.schedule=\"constant\"", "train.nan_policy=\"skip\"",
                        "train.max_skipped_steps=3"}),
            Options("run"));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss) << result.status();
  EXPECT_NE(result.status().message().find("train.max_skipped_steps = 3"), std::string::npos)
      << result.status();
  const std::vector<int64_t> skipped =
      Steps(RecordsOfKind(ReadMetricsJsonl(directory_ / "run"), "skipped"));
  ASSERT_GE(skipped.size(), 3u);
  EXPECT_EQ(skipped[skipped.size() - 1] - skipped[skipped.size() - 3], 2);  // in a row
  EXPECT_FALSE(fs::exists(directory_ / "run" / "result.json"));
}

// ---- Run directories --------------------------------------------------------------------

TEST_F(TrainerTest, AnOccupiedRunDirectoryIsRefusedAndLeftUnchanged) {
  const Config config = TinyConfig();
  ASSERT_TRUE(Train(config, Options("run")).ok());
  const auto before = DirectoryContents(directory_ / "run");

  absl::StatusOr<TrainResult> again = Train(config, Options("run"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists) << again.status();
  EXPECT_NE(again.status().message().find("--resume"), std::string::npos) << again.status();
  // Another config (another seed) is refused just the same.
  EXPECT_FALSE(Train(TinyConfig({"experiment.seed=8"}), Options("run")).ok());
  EXPECT_EQ(DirectoryContents(directory_ / "run"), before);
}

TEST_F(TrainerTest, ARunStoppedBeforeItsFirstCheckpointIsNotAppendedTo) {
  // NaN at step 2, long before checkpoint_every: a metrics.jsonl and no checkpoint.
  const Config diverging = TinyConfig({"train.lr=1e12", "train.schedule=\"constant\""});
  ASSERT_EQ(Train(diverging, Options("run")).status().code(), absl::StatusCode::kDataLoss);
  ASSERT_FALSE(fs::exists(directory_ / "run" / "checkpoint_last.safetensors"));
  ASSERT_TRUE(fs::exists(directory_ / "run" / "metrics.jsonl"));
  const auto before = DirectoryContents(directory_ / "run");

  absl::StatusOr<TrainResult> again = Train(TinyConfig(), Options("run"));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists) << again.status();
  EXPECT_EQ(DirectoryContents(directory_ / "run"), before);
}

TEST_F(TrainerTest, ResumeWithoutACheckpointIsAnError) {
  absl::StatusOr<TrainResult> result = Train(TinyConfig(), Options("never", /*resume=*/true));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound) << result.status();
  EXPECT_NE(result.status().message().find("no checkpoint"), std::string::npos) << result.status();
  EXPECT_FALSE(fs::exists(directory_ / "never"));  // nothing created
}

TEST_F(TrainerTest, ACosineWarmupAsLongAsTheRunIsAConfigError) {
  absl::StatusOr<TrainResult> result = Train(
      TinyConfig({"train.schedule=\"cosine\"", "train.warmup_steps=30", "train.max_steps=30"}),
      Options("run"));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
  EXPECT_NE(result.status().message().find("train.warmup_steps (30)"), std::string::npos)
      << result.status();
  EXPECT_FALSE(fs::exists(directory_ / "run" / "metrics.jsonl"));
}

}  // namespace
}  // namespace attnlab::experiments
