// Splits a fixed data set (a dictionary read from disk) into train/valid/test by a hash
// of each example's source: the same source and seed always land in the same split, on
// every platform and whatever the file order, and a source can only be in one split.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "experiments/config/config.h"
#include "experiments/data/stable_hash.h"
#include "experiments/tasks/task.h"

namespace attnlab::experiments {

// Parts per thousand of each split, by hash: [0, 900) train, [900, 950) valid,
// [950, 1000) test.
inline constexpr uint64_t kTrainPerMille = 900, kValidPerMille = 50;

// Caps on the split sizes; 0 keeps the whole split.
struct SplitCaps {
  int64_t train = 0, valid = 0, test = 0;
};
// task.train_size, task.valid_size, task.test_size.
SplitCaps SplitCapsFromConfig(const Config& config);

// Distributes `examples` (whose sources must be distinct) by StableHash(source, seed).
// Each split is ordered by hash (ties by source), so a cap keeps a uniformly random,
// deterministic subset, and a larger cap only adds examples to a smaller one's.
Splits SplitBySourceHash(std::vector<Example> examples, uint64_t seed, const SplitCaps& caps);

}  // namespace attnlab::experiments
