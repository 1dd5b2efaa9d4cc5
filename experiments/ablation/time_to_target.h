// Time to a target: when a run's validation `metric` first reached a value (a study's
// `time_to`, see experiments/recipes/studies/README.md), read from its metrics.jsonl.
//
// The time is training time: the run's elapsed wall time at that step (`elapsed_seconds`,
// logged by the trainer in `train` records and, since it was added, in `eval` records)
// minus the `seconds` of the validation evaluations before that step. Checkpoint writes
// stay in it; the evaluation that reached the target is not in it either way (it runs
// after the step). When the step has no record with `elapsed_seconds` (train.eval_every
// not a multiple of train.log_every), the training time is interpolated linearly between
// the nearest logged steps before and after it, the run's end (RunResult::train_seconds
// at RunResult::steps) counting as one.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "experiments/ablation/study.h"
#include "experiments/report/report.h"

namespace attnlab::experiments {

struct TargetReached {
  int64_t step = 0;
  double seconds = 0.0;  // training time up to `step`
};

// The first `eval` record with split "valid" whose `target.metric` is <= target.value
// (>= when higher is better); nullopt when none is, or when no time is known after it.
std::optional<TargetReached> FirstReached(const std::vector<MetricsRecord>& records,
                                          const TimeTarget& target, int64_t final_step,
                                          double final_train_seconds);

// "wer ≤ 40", "exact_match ≥ 90.5".
std::string TimeTargetLabel(const TimeTarget& target);
// "wer_le_40", "exact_match_ge_90.5": for CSV column names.
std::string TimeTargetKey(const TimeTarget& target);

}  // namespace attnlab::experiments
