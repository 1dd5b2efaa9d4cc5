// result.json: what a finished run measured. The trainer writes it atomically as the
// very last thing a run does, so its presence marks a finished run: the ablation
// runner skips a run directory that has one and resumes or reruns one that has not.
//
//   {"format": 1, "steps": 2000, "train_seconds": 221.4, "wall_seconds": 227.0,
//    "parameters": 1234567, "test": {"exact_match": 99.7, "loss": 0.01, ...},
//    "valid": {...}}
//
// `test` holds the test metrics of the best checkpoint (beam-search ones as beam_<name>);
// `valid` the last validation. `train_seconds` is the training loop's time (with its
// periodic evaluations) summed over resumes; `wall_seconds` adds the final evaluation.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace attnlab::experiments {

struct RunResult {
  int64_t steps = 0;
  double train_seconds = 0.0;
  double wall_seconds = 0.0;
  int64_t parameters = -1;  // -1: not known (results of seed_pooling runs before it had a module)
  std::map<std::string, double> test_metrics;
  std::map<std::string, double> valid_metrics;
};

inline constexpr char kRunResultFile[] = "result.json";

absl::Status WriteRunResult(const std::string& path, const RunResult& result);
// Errors name the path; a file of another format or with a missing field is an error.
absl::StatusOr<RunResult> ReadRunResult(const std::string& path);

}  // namespace attnlab::experiments
