#include "experiments/ablation/study_results.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "framework/core/error.h"

namespace attnlab::experiments {

absl::StatusOr<std::vector<CellRuns>> LoadStudyResults(const StudyPlan& plan) {
  namespace fs = std::filesystem;
  std::vector<CellRuns> cells(plan.cells.size());
  for (size_t c = 0; c < plan.cells.size(); ++c) {
    cells[c].name = plan.cells[c].name;
    cells[c].base = plan.cells[c].base;
  }
  for (const PlannedRun& run : plan.runs) {
    CellRuns& cell = cells[run.cell];
    ++cell.planned;
    const fs::path result_path = fs::path(run.run_dir) / kRunResultFile;
    if (!fs::exists(result_path)) continue;
    SeedRun seed_run;
    seed_run.seed = run.seed;
    seed_run.run_dir = run.run_dir;
    ASSIGN_OR_RETURN(seed_run.result, ReadRunResult(result_path.string()));
    ASSIGN_OR_RETURN(seed_run.records,
                     ReadMetricsLog((fs::path(run.run_dir) / "metrics.jsonl").string()));
    std::vector<double> throughput;
    for (const MetricsRecord& record : seed_run.records) {
      const double value = record.Get("tokens_per_second");
      if (record.kind == "train" && std::isfinite(value)) throughput.push_back(value);
    }
    seed_run.tokens_per_second = std::numeric_limits<double>::quiet_NaN();
    if (!throughput.empty()) {
      std::sort(throughput.begin(), throughput.end());
      const size_t middle = throughput.size() / 2;
      seed_run.tokens_per_second = throughput.size() % 2 == 1
                                       ? throughput[middle]
                                       : (throughput[middle - 1] + throughput[middle]) / 2;
    }
    cell.finished.push_back(std::move(seed_run));
  }
  return cells;
}

}  // namespace attnlab::experiments
