// Runs a study's planned runs, each as its own `attnlab train` process, `jobs` at a time.
// A run starts from its run spec, not from command-line overrides: the run's fully
// resolved config (PlannedRun::config, every key, as Config::ToToml prints it) written
// to D/config.toml, the file the trainer saves there anyway. The process is then
//
//   attnlab train D/config.toml --run_dir D --threads T [--resume]
//
// with its output appended to D/train.log (the trainer rewrites D/config.toml with the
// same config, experiment.threads = T). A run that crashes fails alone; the others go
// on. When `stop_requested` turns true (Ctrl-C), no new run starts and the running ones
// get SIGINT, which makes the trainer save a checkpoint and exit 130; the study resumes
// them when rerun. A run whose directory another process has locked fails without being
// touched (experiments/trainer/run_directory_lock.h).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "experiments/ablation/plan.h"

namespace attnlab::experiments {

enum class RunStatus {
  kSkipped,      // finished before this invocation
  kFinished,     // ran to the end now (result.json written)
  kFailed,       // exited with an error, or crashed
  kInterrupted,  // stopped by a stop request; resumable
  kNotStarted,   // a stop request came first
};
const char* RunStatusName(RunStatus status);

struct RunOutcome {
  RunStatus status = RunStatus::kNotStarted;
  double seconds = 0.0;  // wall time of the process
  std::string message;   // for failures: the last line of train.log
};

struct SchedulerOptions {
  std::string executable;  // the attnlab binary
  int jobs = 1;
  int threads_per_run = 1;
  std::function<bool()> stop_requested = [] { return false; };
  // Called (from the scheduling thread) when a run starts and when it ends; `index` is
  // the run's index in the plan.
  std::function<void(size_t index, const PlannedRun& run)> on_start;
  std::function<void(size_t index, const PlannedRun& run, const RunOutcome& outcome)> on_end;
};

// One outcome per planned run, in plan order.
std::vector<RunOutcome> ExecuteStudy(const StudyPlan& plan, const SchedulerOptions& options);

// The run spec's file in a run directory.
inline constexpr char kRunSpecFile[] = "config.toml";
// <run_dir>/config.toml.
std::string RunSpecPath(const PlannedRun& run);
// Writes the run's spec (atomically) into its run directory, which must exist.
absl::Status WriteRunSpec(const PlannedRun& run);

// The command line of one run (argv[0] is `executable`); it reads the run's spec.
std::vector<std::string> TrainCommand(const PlannedRun& run, const SchedulerOptions& options);

}  // namespace attnlab::experiments
