// Writes a study's summary.md, summary.csv and report.html into its directory
// (<runs_dir>/<study>/), from whatever runs have finished, each file atomically.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "experiments/ablation/plan.h"

namespace attnlab::experiments {

// Returns the markdown summary (for printing).
absl::StatusOr<std::string> WriteStudyOutputs(const StudyPlan& plan);

}  // namespace attnlab::experiments
