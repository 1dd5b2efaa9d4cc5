// Shared by the generated tasks: the construction of disjoint train/valid/test splits of
// distinct examples from a seeded random source (TaskRandom, experiments/data/task_random.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "experiments/config/config.h"
#include "experiments/data/task_random.h"
#include "experiments/tasks/task.h"

namespace attnlab::experiments {

// Length range of a split: the test split may use task.test_min_length/test_max_length.
struct LengthRange {
  int64_t min, max;
};

// Draws examples with make_example(random, lengths) until each split has its configured
// size of distinct sources, never repeating a source across splits. Fails with a clear
// message when the settings admit too few distinct examples.
absl::StatusOr<Splits> GenerateSplits(
    const Config& config, const std::string& task_name,
    const std::function<Example(TaskRandom& random, const LengthRange& lengths)>& make_example);

}  // namespace attnlab::experiments
