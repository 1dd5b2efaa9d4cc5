// The plan of a study: every cell's resolved config (checked before anything runs) and
// every cell x seed run with what the runner will do to it, decided from its directory
// <runs_dir>/<study>/<cell>/seed-<n>/:
//
//   result.json present            skip     finished (the trainer writes it last)
//   checkpoint_last present        resume   interrupted; continues from the checkpoint
//   metrics.jsonl but no checkpoint rerun   stopped before its first checkpoint; its
//                                           files are replaced
//   nothing                        run
//
// A run directory whose config.toml differs from the cell's config (other than
// experiment.threads) is an error: the study file changed since it ran, and mixing old
// and new runs would make the table lie.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/ablation/cells.h"
#include "experiments/ablation/study.h"
#include "experiments/config/config.h"
#include "experiments/tasks/task.h"

namespace attnlab::experiments {

enum class RunAction { kSkip, kResume, kRun, kRerun };
const char* RunActionName(RunAction action);  // "skip", "resume", "run", "rerun"

struct PlannedRun {
  size_t cell = 0;  // index into StudyPlan::cells
  int64_t seed = 0;
  std::string run_dir;
  // The run's fully resolved config (the base config, the cell's assignments and
  // experiment.seed): its run spec (scheduler.h).
  Config config;
  RunAction action = RunAction::kRun;
  std::string reason;  // "finished", "interrupted at step 300", ...
};

struct StudyPlan {
  Study study;
  std::string study_dir;  // <runs_dir>/<study name>
  std::vector<Cell> cells;
  std::vector<Config> configs;   // per cell (experiment.seed = the first seed)
  std::vector<PlannedRun> runs;  // cell-major, seeds in study order
  size_t base_cell = 0;
};

struct PlanOptions {
  std::string runs_dir;        // "" = the base config's experiment.runs_dir
  std::vector<int64_t> seeds;  // non-empty: replaces the study's seeds
};

// Expands the cells, resolves and checks every cell's config (errors name the study's
// line), checks the metrics against the task, and decides each run's action.
absl::StatusOr<StudyPlan> PlanStudy(const Study& study, const PlanOptions& options = {});

// The test metrics a config's runs report, as its objective declares them (a seq2seq
// task's: loss, token_accuracy, exact_match and the task's own; beam_<name> too with
// eval.beam_size > 1).
absl::StatusOr<std::vector<std::string>> AvailableMetrics(const Config& config);

// The metrics of a config's validation evaluations (metrics.jsonl "eval" records) and
// which way is better, as its objective declares them.
absl::StatusOr<std::vector<MetricSpec>> ValidationMetrics(const Config& config);

}  // namespace attnlab::experiments
