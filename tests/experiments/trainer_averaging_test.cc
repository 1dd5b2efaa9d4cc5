// What a run keeps for averaging, end to end on the tiny copy task: train.keep_last's
// checkpoint_step_<N> files (exactly the last K, across a resume, with a stale file of an
// interrupted save rewritten, and after a stop inside a checkpoint step's validation),
// and train.ema_decay's moving average (equal to the bias-corrected EMA of the recorded
// weight trajectory, evaluated as ema_* metrics, saved as checkpoint_ema, changing nothing
// else about the run, continued bit-identically by --resume, also when a stop cut its
// evaluation); an average of the step files refused by --resume.
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "experiments/trainer/checkpoint.h"
#include "experiments/trainer/checkpoint_average.h"
#include "experiments/trainer/step_checkpoints.h"
#include "experiments/trainer/trainer.h"
#include "framework/io/safetensors.h"
#include "gtest/gtest.h"
#include "tests/support/metrics_jsonl.h"
#include "tests/support/tensor_bytes.h"
#include "tests/support/tiny_config.h"
#include "tests/support/trainer_run_test.h"

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using attnlab::testing::LoadedTensorBytesOf;
using attnlab::testing::ReadMetricsJsonl;
using attnlab::testing::RecordsOfKind;
using testing::RequestStopAfterStep;
using testing::StopAtQuestion;
using testing::StoppedAfter;
using testing::TinyConfig;

class TrainerAveragingTest : public testing::TrainerRunTest {
 protected:
  std::vector<int64_t> StepFiles(const std::string& run) {
    absl::StatusOr<std::vector<int64_t>> steps = StepCheckpointSteps((directory_ / run).string());
    EXPECT_TRUE(steps.ok()) << steps.status();
    return steps.ok() ? *steps : std::vector<int64_t>();
  }
  fs::path File(const std::string& run, const std::string& name) const {
    return directory_ / run / name;
  }
};

// A tensor of a safetensors file as floats (empty, and a failure, if it is not there).
std::vector<float> TensorOf(const fs::path& path, const std::string& name) {
  absl::StatusOr<SafetensorsContents> file = ReadSafetensors(path.string());
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return {};
  for (const auto& [tensor_name, tensor] : file->tensors) {
    if (tensor_name == name) return tensor.ToFloats();
  }
  ADD_FAILURE() << path << " has no tensor " << name;
  return {};
}

// The tensors of a checkpoint whose names start with `prefix`, by name without it.
std::map<std::string, std::string> TensorBytesWithPrefix(const fs::path& path,
                                                         const std::string& prefix) {
  std::map<std::string, std::string> selected;
  for (const auto& [name, bytes] : LoadedTensorBytesOf(path)) {
    if (name.rfind(prefix, 0) == 0) selected[name.substr(prefix.size())] = bytes;
  }
  return selected;
}

// ---- train.keep_last --------------------------------------------------------------------

TEST_F(TrainerAveragingTest, KeepLastKeepsExactlyTheLastKStepCheckpointsAcrossAResume) {
  // Checkpoints every 5 steps of 30. "all" keeps every one: the reference trajectory.
  const std::vector<std::string> every_five = {"train.checkpoint_every=5"};
  std::vector<std::string> keep_all = every_five, keep_two = every_five;
  keep_all.push_back("train.keep_last=100");
  keep_two.push_back("train.keep_last=2");
  ASSERT_TRUE(Train(TinyConfig(keep_all), Options("all")).ok());
  EXPECT_EQ(StepFiles("all"), (std::vector<int64_t>{5, 10, 15, 20, 25, 30}));

  // Stopped after step 13 (between two checkpoints): 5 and 10 so far.
  RunOptions interrupted = Options("two");
  interrupted.after_step = RequestStopAfterStep(13);
  ASSERT_TRUE(StoppedAfter(Train(TinyConfig(keep_two), interrupted), 13));
  EXPECT_EQ(StepFiles("two"), (std::vector<int64_t>{5, 10}));
  // As a kill between a step file and checkpoint_last would leave it: a step-15 file
  // ahead of checkpoint_last (here a wrong one), and one of an abandoned longer run.
  fs::copy_file(File("two", StepCheckpointName(5)), File("two", StepCheckpointName(15)));
  fs::copy_file(File("two", StepCheckpointName(5)), File("two", StepCheckpointName(40)));

  absl::StatusOr<TrainResult> resumed = Train(TinyConfig(keep_two), Options("two", true));
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(StepFiles("two"), (std::vector<int64_t>{25, 30}));
  for (const int64_t step : {25, 30}) {
    const std::string name = StepCheckpointName(step);
    EXPECT_EQ(LoadedTensorBytesOf(File("two", name)), LoadedTensorBytesOf(File("all", name)))
        << name;
    absl::StatusOr<CheckpointContents> metadata = ReadCheckpointMetadata(File("two", name));
    ASSERT_TRUE(metadata.ok()) << metadata.status();
    EXPECT_EQ(metadata->progress.step, step);
  }
  // The last one is checkpoint_last's state.
  EXPECT_EQ(LoadedTensorBytesOf(File("two", StepCheckpointName(30))),
            LoadedTensorBytesOf(File("two", "checkpoint_last.safetensors")));
}

// A stop inside the validation of a checkpoint step comes before that step's save: the
// resumed run redoes the validation and then writes the step's checkpoint.
TEST_F(TrainerAveragingTest, AStopInsideAValidationAtACheckpointStepLosesNoStepCheckpoint) {
  const Config config = TinyConfig({"train.keep_last=3"});
  ASSERT_TRUE(Train(config, Options("a")).ok());
  ASSERT_EQ(StepFiles("a"), (std::vector<int64_t>{10, 20, 30}));
  // Two questions per step; the 22nd is inside step 10's validation (trainer_test.cc).
  RunOptions interrupted = Options("b");
  interrupted.stop_requested = StopAtQuestion(22);
  ASSERT_TRUE(StoppedAfter(Train(config, interrupted), 10));
  EXPECT_TRUE(StepFiles("b").empty());
  ASSERT_TRUE(Train(config, Options("b", /*resume=*/true)).ok());
  ASSERT_EQ(StepFiles("b"), (std::vector<int64_t>{10, 20, 30}));
  for (const int64_t step : {10, 20, 30}) {
    const std::string name = StepCheckpointName(step);
    EXPECT_EQ(LoadedTensorBytesOf(File("b", name)), LoadedTensorBytesOf(File("a", name))) << name;
  }
}

TEST_F(TrainerAveragingTest, KeepLastOffWritesNoStepCheckpoints) {
  ASSERT_TRUE(Train(TinyConfig(), Options("run")).ok());
  EXPECT_TRUE(StepFiles("run").empty());
}

TEST_F(TrainerAveragingTest, AnAverageOfStepCheckpointsLoadsAsAModelButIsNotResumed) {
  ASSERT_TRUE(Train(TinyConfig({"train.keep_last=3"}), Options("run")).ok());
  ASSERT_EQ(StepFiles("run"), (std::vector<int64_t>{10, 20, 30}));
  std::vector<std::string> inputs;
  for (const int64_t step : {10, 20, 30}) {
    inputs.push_back(File("run", StepCheckpointName(step)).string());
  }
  fs::create_directories(directory_ / "averaged");
  const fs::path out = File("averaged", "checkpoint_last.safetensors");
  ASSERT_TRUE(WriteCheckpointAverage(inputs, out.string()).ok());
  // One parameter by hand: the mean of its three values.
  const std::string name = "generator.bias";
  const std::vector<float> mean = TensorOf(out, name);
  ASSERT_FALSE(mean.empty());
  for (size_t i = 0; i < mean.size(); ++i) {
    double sum = 0;
    for (const std::string& input : inputs) sum += TensorOf(input, name)[i];
    EXPECT_EQ(mean[i], static_cast<float>(sum / 3.0)) << i;
  }

  absl::StatusOr<TrainResult> resumed =
      Train(TinyConfig({"train.max_steps=40"}), Options("averaged", /*resume=*/true));
  ASSERT_FALSE(resumed.ok());
  EXPECT_EQ(resumed.status().code(), absl::StatusCode::kFailedPrecondition);
  const std::string message(resumed.status().message());
  EXPECT_NE(message.find("holds weights derived from training (the average of 3 checkpoints"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("no optimizer state"), std::string::npos) << message;
}

// ---- train.ema_decay --------------------------------------------------------------------

// Plain SGD with a large step so the weights move, d = 0.5 so the average differs from
// them; keep_last records the weights after every step (checkpoint_every = 1). The
// moving average after 6 steps is sum_i (1 - d) d^(6-i) w_i / (1 - d^6).
TEST_F(TrainerAveragingTest, TheMovingAverageIsTheBiasCorrectedEmaOfTheWeightTrajectory) {
  constexpr int kSteps = 6;
  constexpr double kDecay = 0.5;
  const Config config =
      TinyConfig({"train.optimizer=sgd", "train.momentum=0", "train.lr=0.5", "train.max_steps=6",
                  "train.checkpoint_every=1", "train.keep_last=100", "train.eval_every=3",
                  "train.ema_decay=0.5"});
  ASSERT_TRUE(Train(config, Options("run")).ok());
  ASSERT_EQ(StepFiles("run").size(), static_cast<size_t>(kSteps));

  const fs::path last = File("run", "checkpoint_last.safetensors");
  const std::map<std::string, std::string> averages = TensorBytesWithPrefix(last, "ema.");
  ASSERT_FALSE(averages.empty());
  absl::StatusOr<CheckpointContents> metadata = ReadCheckpointMetadata(last.string());
  ASSERT_TRUE(metadata.ok()) << metadata.status();
  EXPECT_EQ(metadata->progress.ema_updates, kSteps);
  double largest_gap = 0;  // between the average and the final weights
  for (const auto& [name, bytes] : averages) {
    std::vector<std::vector<float>> trajectory;  // after steps 1..6
    for (int step = 1; step <= kSteps; ++step) {
      trajectory.push_back(TensorOf(File("run", StepCheckpointName(step)), name));
    }
    const std::vector<float> average = TensorOf(last, "ema." + name);
    ASSERT_EQ(average.size(), trajectory[0].size()) << name;
    for (size_t i = 0; i < average.size(); ++i) {
      double sum = 0;
      for (int step = 1; step <= kSteps; ++step) {
        sum += (1 - kDecay) * std::pow(kDecay, kSteps - step) * trajectory[step - 1][i];
      }
      const double expected = sum / (1 - std::pow(kDecay, kSteps));
      ASSERT_NEAR(average[i], expected, 1e-6 * std::max(1.0, std::abs(expected)))
          << name << "[" << i << "]";
      largest_gap = std::max(largest_gap, std::abs(expected - trajectory[kSteps - 1][i]));
    }
  }
  EXPECT_GT(largest_gap, 1e-3);  // the weights moved: the average is not just the weights

  // checkpoint_ema: a plain model checkpoint holding the average under the parameters'
  // names, marked as derived.
  const fs::path ema = File("run", "checkpoint_ema.safetensors");
  const std::map<std::string, std::string> ema_file = LoadedTensorBytesOf(ema);
  for (const auto& [name, bytes] : averages) {
    ASSERT_TRUE(ema_file.count(name)) << name;
    EXPECT_TRUE(ema_file.at(name) == bytes) << name;
  }
  for (const auto& [name, bytes] : ema_file) EXPECT_FALSE(IsTrainingState(name)) << name;
  absl::StatusOr<CheckpointContents> ema_metadata = ReadCheckpointMetadata(ema.string());
  ASSERT_TRUE(ema_metadata.ok()) << ema_metadata.status();
  EXPECT_EQ(ema_metadata->derived_from,
            "the exponential moving average of the weights (train.ema_decay = 0.5, "
            "bias-corrected) over 6 optimizer steps, at step 6");

  // Every validation record has the average's metrics beside the weights'.
  const std::vector<Json> evaluations = RecordsOfKind(ReadMetricsJsonl(directory_ / "run"), "eval");
  ASSERT_EQ(evaluations.size(), 2u);
  for (const Json& record : evaluations) {
    for (const char* key :
         {"ema_loss", "ema_token_accuracy", "ema_exact_match", "ema_seconds", "loss"}) {
      EXPECT_TRUE(record.contains(key) && record.at(key).is_number()) << key;
    }
    EXPECT_NE(record.at("ema_loss"), record.at("loss"));
  }
}

// Without train.ema_decay there is no average anywhere; with it, nothing else about the
// run changes: the same weights, optimizer state, best checkpoint and metrics.
TEST_F(TrainerAveragingTest, TurningTheEmaOnAddsTheAverageAndChangesNothingElse) {
  ASSERT_TRUE(Train(TinyConfig(), Options("plain")).ok());
  EXPECT_FALSE(fs::exists(File("plain", "checkpoint_ema.safetensors")));
  EXPECT_TRUE(TensorBytesWithPrefix(File("plain", "checkpoint_last.safetensors"), "ema.").empty());
  const std::vector<Json> plain = ReadMetricsJsonl(directory_ / "plain");
  for (const Json& record : RecordsOfKind(plain, "eval")) EXPECT_FALSE(record.contains("ema_loss"));

  ASSERT_TRUE(Train(TinyConfig({"train.ema_decay=0.9"}), Options("ema")).ok());
  for (const char* file : {"checkpoint_last.safetensors", "checkpoint_best.safetensors"}) {
    std::map<std::string, std::string> with_ema = LoadedTensorBytesOf(File("ema", file));
    const size_t averages = std::erase_if(
        with_ema, [](const auto& named) { return named.first.rfind("ema.", 0) == 0; });
    EXPECT_GT(averages, 0u) << file;
    EXPECT_EQ(with_ema, LoadedTensorBytesOf(File("plain", file))) << file;
  }
  const std::vector<Json> ema = ReadMetricsJsonl(directory_ / "ema");
  ASSERT_EQ(ema.size(), plain.size());
  for (size_t i = 0; i < ema.size(); ++i) {
    for (const char* key : {"loss", "token_accuracy", "exact_match"}) {
      if (plain[i].contains(key)) {
        EXPECT_EQ(ema[i].at(key), plain[i].at(key)) << key << " " << i;
      }
    }
  }
}

// A run of 30 steps against one stopped after step 13 and resumed: the same average
// (ema.* in checkpoint_last, checkpoint_ema) and the same ema_* metrics, bit for bit.
TEST_F(TrainerAveragingTest, TheMovingAverageSurvivesAResumeBitIdentically) {
  const Config config = TinyConfig({"train.ema_decay=0.9"});
  ASSERT_TRUE(Train(config, Options("a")).ok());
  RunOptions interrupted = Options("b");
  interrupted.stop_at_step = 13;
  ASSERT_TRUE(StoppedAfter(Train(config, interrupted), 13));
  ASSERT_TRUE(Train(config, Options("b", /*resume=*/true)).ok());

  for (const char* file : {"checkpoint_last.safetensors", "checkpoint_ema.safetensors",
                           "checkpoint_best.safetensors"}) {
    EXPECT_EQ(LoadedTensorBytesOf(File("a", file)), LoadedTensorBytesOf(File("b", file))) << file;
  }
  EXPECT_FALSE(TensorBytesWithPrefix(File("b", "checkpoint_last.safetensors"), "ema.").empty());
  const std::vector<Json> a = RecordsOfKind(ReadMetricsJsonl(directory_ / "a"), "eval");
  const std::vector<Json> b = RecordsOfKind(ReadMetricsJsonl(directory_ / "b"), "eval");
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    for (const char* key : {"ema_loss", "ema_token_accuracy", "ema_exact_match"}) {
      EXPECT_EQ(a[i].at(key).get<double>(), b[i].at(key).get<double>()) << key << " " << i;
    }
  }
}

// A stop inside the moving average's evaluation: the step's whole validation is redone
// when resuming, and the run ends as an uninterrupted one.
TEST_F(TrainerAveragingTest, AStopInsideTheAveragesEvaluationIsResumedByTheWholeValidation) {
  const Config config = TinyConfig({"train.ema_decay=0.9"});
  // Count the trainer's questions: two per step, then a validation's worth for the
  // weights and again for the average at step 10.
  RunOptions counted = Options("a");
  auto asked = std::make_shared<int64_t>(0);
  auto asked_after_step_10 = std::make_shared<int64_t>(0);
  counted.stop_requested = [asked] { return ++*asked < 0; };
  counted.after_step = [asked, asked_after_step_10](int64_t step) {
    if (step == 10) *asked_after_step_10 = *asked;
  };
  ASSERT_TRUE(Train(config, counted).ok());
  const int64_t per_validation = (*asked_after_step_10 - 20) / 2;
  ASSERT_GT(per_validation, 1);

  // The second question of the average's validation.
  RunOptions interrupted = Options("b");
  interrupted.stop_requested = StopAtQuestion(20 + per_validation + 2);
  ASSERT_TRUE(StoppedAfter(Train(config, interrupted), 10));
  EXPECT_TRUE(RecordsOfKind(ReadMetricsJsonl(directory_ / "b"), "eval").empty());
  ASSERT_TRUE(Train(config, Options("b", /*resume=*/true)).ok());
  EXPECT_EQ(ReadMetricsJsonl(directory_ / "a").size(), ReadMetricsJsonl(directory_ / "b").size());
  for (const char* file : {"checkpoint_last.safetensors", "checkpoint_ema.safetensors"}) {
    EXPECT_EQ(LoadedTensorBytesOf(File("a", file)), LoadedTensorBytesOf(File("b", file))) << file;
  }
  const std::vector<Json> a = RecordsOfKind(ReadMetricsJsonl(directory_ / "a"), "eval");
  const std::vector<Json> b = RecordsOfKind(ReadMetricsJsonl(directory_ / "b"), "eval");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].at("step"), b[i].at("step"));
    EXPECT_EQ(a[i].at("ema_loss").get<double>(), b[i].at("ema_loss").get<double>()) << i;
  }
}

// Turning the average on when resuming starts it at the resumed weights; turning it off
// drops the checkpoint's.
TEST_F(TrainerAveragingTest, TheAverageCanBeTurnedOnOrOffWhenResuming) {
  RunOptions first = Options("on");
  first.stop_at_step = 13;
  ASSERT_TRUE(StoppedAfter(Train(TinyConfig(), first), 13));
  ASSERT_TRUE(Train(TinyConfig({"train.ema_decay=0.9"}), Options("on", true)).ok());
  absl::StatusOr<CheckpointContents> on =
      ReadCheckpointMetadata(File("on", "checkpoint_last.safetensors").string());
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_EQ(on->progress.ema_updates, 17);  // steps 14 to 30
  EXPECT_TRUE(fs::exists(File("on", "checkpoint_ema.safetensors")));

  first = Options("off");
  first.stop_at_step = 13;
  ASSERT_TRUE(StoppedAfter(Train(TinyConfig({"train.ema_decay=0.9"}), first), 13));
  ASSERT_TRUE(Train(TinyConfig(), Options("off", true)).ok());
  EXPECT_TRUE(TensorBytesWithPrefix(File("off", "checkpoint_last.safetensors"), "ema.").empty());
  absl::StatusOr<CheckpointContents> off =
      ReadCheckpointMetadata(File("off", "checkpoint_last.safetensors").string());
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_EQ(off->progress.ema_updates, 0);
}

}  // namespace
}  // namespace attnlab::experiments
