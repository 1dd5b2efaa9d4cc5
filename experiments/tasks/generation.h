// Shared by the generated tasks: a seeded random source and the construction of
// disjoint train/valid/test splits of distinct examples.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "experiments/config/config.h"
#include "experiments/tasks/task.h"

namespace attnlab::experiments {

// splitmix64: tiny, fast, and the same sequence on every platform (unlike the
// standard library's distributions, whose mapping is implementation-defined).
class TaskRandom {
 public:
  explicit TaskRandom(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform integer in [low, high] (inclusive).
  int64_t Uniform(int64_t low, int64_t high) {
    const uint64_t range = static_cast<uint64_t>(high - low) + 1;
    return low + static_cast<int64_t>((static_cast<unsigned __int128>(Next()) * range) >> 64);
  }

 private:
  uint64_t state_;
};

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
