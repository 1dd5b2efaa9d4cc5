// The study runner on real training runs of the attnlab binary (tiny copy-task models of
// 20 steps): a study stopped after its first run and rerun trains only the rest; an
// interrupted run is resumed from its checkpoint, one that stopped before its first
// checkpoint is rerun; a crashing run fails alone; and a study edited after it ran is
// refused rather than mixed with the old runs.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "experiments/ablation/plan.h"
#include "experiments/ablation/scheduler.h"
#include "experiments/ablation/study.h"
#include "experiments/trainer/run_result.h"
#include "gtest/gtest.h"
#include "tests/support/file_contents.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_config.h"

#ifndef ATTNLAB_CLI
#error "ATTNLAB_CLI (the attnlab binary) must be defined by the build"
#endif

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;

using attnlab::testing::ReadFile;
using testing::TinyConfigToml;

class AblationRunnerTest : public attnlab::testing::TempDirTest {
 protected:
  void SetUp() override {
    std::ofstream(directory_ / "tiny.toml") << TinyConfigToml(testing::kShortRun);
  }

  // The tiny study (two cells, attention scaled_dot and dot, x two seeds) with `extra`
  // appended.
  absl::StatusOr<StudyPlan> Plan(const std::string& extra = "") {
    const std::string text = testing::kTinyStudy + extra;
    absl::StatusOr<Study> study = ParseStudy(text, (directory_ / "study.toml").string());
    if (!study.ok()) return study.status();
    PlanOptions options;
    options.runs_dir = (directory_ / "runs").string();
    return PlanStudy(*study, options);
  }

  static SchedulerOptions Options() {
    SchedulerOptions options;
    options.executable = ATTNLAB_CLI;
    options.jobs = 1;
    options.threads_per_run = 1;
    return options;
  }

  static std::vector<RunAction> Actions(const StudyPlan& plan) {
    std::vector<RunAction> actions;
    for (const PlannedRun& run : plan.runs) actions.push_back(run.action);
    return actions;
  }
};

TEST_F(AblationRunnerTest, AStudyStoppedAfterOneRunRunsOnlyTheRestWhenRerun) {
  absl::StatusOr<StudyPlan> plan = Plan();
  ASSERT_TRUE(plan.ok()) << plan.status();
  // Stop (as Ctrl-C would) as soon as the first run has ended.
  int ended = 0;
  SchedulerOptions options = Options();
  options.stop_requested = [&] { return ended > 0; };
  options.on_end = [&](size_t, const PlannedRun&, const RunOutcome&) { ++ended; };
  std::vector<RunOutcome> outcomes = ExecuteStudy(*plan, options);
  ASSERT_EQ(outcomes.size(), 4u);
  EXPECT_EQ(outcomes[0].status, RunStatus::kFinished) << outcomes[0].message;
  for (size_t i = 1; i < 4; ++i) EXPECT_EQ(outcomes[i].status, RunStatus::kNotStarted);
  const fs::path first_result = fs::path(plan->runs[0].run_dir) / kRunResultFile;
  ASSERT_TRUE(fs::exists(first_result));
  const std::string first_text = ReadFile(first_result);
  absl::StatusOr<RunResult> first = ReadRunResult(first_result.string());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->steps, 20);
  EXPECT_GT(first->parameters, 0);
  EXPECT_EQ(first->test_metrics.count("exact_match"), 1u);

  // Rerun: the finished run is skipped, the three others run.
  plan = Plan();
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(Actions(*plan), (std::vector<RunAction>{RunAction::kSkip, RunAction::kRun,
                                                    RunAction::kRun, RunAction::kRun}));
  std::vector<size_t> started;
  options = Options();
  options.on_start = [&](size_t index, const PlannedRun&) { started.push_back(index); };
  outcomes = ExecuteStudy(*plan, options);
  EXPECT_EQ(started, (std::vector<size_t>{1, 2, 3}));
  EXPECT_EQ(outcomes[0].status, RunStatus::kSkipped);
  for (size_t i = 1; i < 4; ++i) {
    EXPECT_EQ(outcomes[i].status, RunStatus::kFinished) << outcomes[i].message;
  }
  EXPECT_EQ(ReadFile(first_result), first_text);  // untouched
  plan = Plan();
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(Actions(*plan), std::vector<RunAction>(4, RunAction::kSkip));
}

TEST_F(AblationRunnerTest, InterruptedRunsResumeAndRunsWithoutACheckpointRerun) {
  absl::StatusOr<StudyPlan> plan = Plan();
  ASSERT_TRUE(plan.ok()) << plan.status();
  SchedulerOptions options = Options();
  options.jobs = 2;  // two runs side by side
  for (const RunOutcome& outcome : ExecuteStudy(*plan, options)) {
    ASSERT_EQ(outcome.status, RunStatus::kFinished) << outcome.message;
  }
  // Run 1 as if interrupted after its last checkpoint; run 2 as if it stopped before its
  // first (metrics.jsonl only).
  const fs::path interrupted(plan->runs[1].run_dir), early(plan->runs[2].run_dir);
  fs::remove(interrupted / kRunResultFile);
  fs::remove(early / kRunResultFile);
  fs::remove(early / "checkpoint_last.safetensors");
  fs::remove(early / "checkpoint_best.safetensors");
  plan = Plan();
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(Actions(*plan), (std::vector<RunAction>{RunAction::kSkip, RunAction::kResume,
                                                    RunAction::kRerun, RunAction::kSkip}));
  EXPECT_EQ(plan->runs[1].reason, "interrupted at step 20");
  const std::vector<std::string> command = TrainCommand(plan->runs[1], Options());
  EXPECT_EQ(command.back(), "--resume");
  EXPECT_EQ(command[1], "train");
  EXPECT_EQ(TrainCommand(plan->runs[2], Options()).back(), "1");  // --threads 1, no --resume

  const std::vector<RunOutcome> outcomes = ExecuteStudy(*plan, Options());
  EXPECT_EQ(outcomes[1].status, RunStatus::kFinished) << outcomes[1].message;
  EXPECT_EQ(outcomes[2].status, RunStatus::kFinished) << outcomes[2].message;
  EXPECT_NE(ReadFile(interrupted / "train.log").find("resuming at step 20"), std::string::npos);
  // The rerun started from an empty directory: one test record, not two.
  const std::string metrics = ReadFile(early / "metrics.jsonl");
  EXPECT_EQ(metrics.find("\"kind\":\"test\""), metrics.rfind("\"kind\":\"test\"")) << metrics;
}

TEST_F(AblationRunnerTest, ACrashingRunFailsAloneWithItsError) {
  // 16 is not divisible by 3 heads: the schema accepts 3, the config's consistency check
  // (run by the cell's own `attnlab train`) does not.
  absl::StatusOr<StudyPlan> plan = Plan("[[axis]]\nkey = \"model.heads\"\nvalues = [2, 3]\n");
  ASSERT_TRUE(plan.ok()) << plan.status();
  absl::StatusOr<StudyPlan> one_seed = plan;
  std::vector<PlannedRun> runs;
  for (const PlannedRun& run : plan->runs) {
    if (run.seed == 1 && run.cell < 2) runs.push_back(run);  // scaled_dot+heads-2, +heads-3
  }
  one_seed->runs = runs;
  const std::vector<RunOutcome> outcomes = ExecuteStudy(*one_seed, Options());
  EXPECT_EQ(outcomes[0].status, RunStatus::kFinished) << outcomes[0].message;
  EXPECT_EQ(outcomes[1].status, RunStatus::kFailed);
  EXPECT_NE(outcomes[1].message.find("is not divisible by model.heads = 3"), std::string::npos)
      << outcomes[1].message;
  EXPECT_NE(outcomes[1].message.find("train.log"), std::string::npos) << outcomes[1].message;
}

TEST_F(AblationRunnerTest, AStudyChangedAfterItRanIsRefused) {
  absl::StatusOr<StudyPlan> plan = Plan();
  ASSERT_TRUE(plan.ok()) << plan.status();
  plan->runs.resize(1);
  ASSERT_EQ(ExecuteStudy(*plan, Options())[0].status, RunStatus::kFinished);
  const absl::StatusOr<StudyPlan> changed = Plan("[set]\ntrain.max_steps = 25\n");
  ASSERT_FALSE(changed.ok());
  EXPECT_NE(std::string(changed.status().message()).find("train.max_steps: 20 -> 25"),
            std::string::npos)
      << changed.status();
  // Other thread counts are not a change.
  EXPECT_TRUE(Plan().ok());
}

TEST_F(AblationRunnerTest, EachRunStartsFromItsRunSpec) {
  absl::StatusOr<StudyPlan> plan = Plan();
  ASSERT_TRUE(plan.ok()) << plan.status();
  plan->runs = {plan->runs[3]};  // dot, seed 2
  const PlannedRun& run = plan->runs[0];
  // No config key on the command line: the spec holds them all.
  EXPECT_EQ(TrainCommand(run, Options()),
            (std::vector<std::string>{ATTNLAB_CLI, "train", RunSpecPath(run), "--run_dir",
                                      run.run_dir, "--threads", "1"}));
  ASSERT_EQ(ExecuteStudy(*plan, Options())[0].status, RunStatus::kFinished);
  // The spec the run trained from is the planned config (the trainer rewrote it with the
  // thread count of --threads).
  absl::StatusOr<Config> spec = Config::Load(
      RunSpecPath(run), {"experiment.threads=" + std::to_string(run.config.experiment().threads)});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->ToToml(), run.config.ToToml());
  EXPECT_EQ(spec->model().attention.variant, "dot");
  EXPECT_EQ(spec->experiment().seed, 2);
}

}  // namespace
}  // namespace attnlab::experiments
