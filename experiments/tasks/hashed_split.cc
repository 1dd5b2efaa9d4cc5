#include "experiments/tasks/hashed_split.h"

#include <algorithm>
#include <utility>

namespace attnlab::experiments {

SplitCaps SplitCapsFromConfig(const Config& config) {
  return {config.task().train_size, config.task().valid_size, config.task().test_size};
}

Splits SplitBySourceHash(std::vector<Example> examples, uint64_t seed, const SplitCaps& caps) {
  std::vector<std::pair<uint64_t, Example>> hashed;
  hashed.reserve(examples.size());
  for (Example& example : examples) {
    const uint64_t hash = StableHash(example.source, seed);
    hashed.emplace_back(hash, std::move(example));
  }
  std::sort(hashed.begin(), hashed.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second.source < b.second.source;
  });
  Splits splits;
  auto add = [](std::vector<Example>& split, int64_t cap, Example&& example) {
    if (cap == 0 || static_cast<int64_t>(split.size()) < cap) split.push_back(std::move(example));
  };
  for (auto& [hash, example] : hashed) {
    // The hash scaled to [0, 1000).
    const uint64_t per_mille =
        static_cast<uint64_t>((static_cast<unsigned __int128>(hash) * 1000) >> 64);
    if (per_mille < kTrainPerMille) {
      add(splits.train, caps.train, std::move(example));
    } else if (per_mille < kTrainPerMille + kValidPerMille) {
      add(splits.valid, caps.valid, std::move(example));
    } else {
      add(splits.test, caps.test, std::move(example));
    }
  }
  return splits;
}

}  // namespace attnlab::experiments
