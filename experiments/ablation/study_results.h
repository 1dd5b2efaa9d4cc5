// What a study's finished runs measured, read back from their directories: result.json
// (test metrics, parameters, times) and metrics.jsonl (curves, throughput). Runs without
// a result.json (not run, failed, interrupted) are left out.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/ablation/plan.h"
#include "experiments/report/report.h"
#include "experiments/trainer/run_result.h"

namespace attnlab::experiments {

struct SeedRun {
  int64_t seed = 0;
  std::string run_dir;
  RunResult result;
  // Target tokens per second: the median over the run's `train` records (robust to the
  // first window, which includes start-up).
  double tokens_per_second = 0.0;
  std::vector<MetricsRecord> records;
};

struct CellRuns {
  std::string name;
  bool base = false;
  size_t planned = 0;             // seeds in the study
  std::vector<SeedRun> finished;  // in seed order
};

// One entry per cell, in plan order.
absl::StatusOr<std::vector<CellRuns>> LoadStudyResults(const StudyPlan& plan);

}  // namespace attnlab::experiments
