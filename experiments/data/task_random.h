// The seeded random source of the generated tasks (their examples) and of batching (the
// order of batches): the same sequence on every platform, so data and batch order are
// functions of their seeds only.
#pragma once

#include <cstdint>

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

}  // namespace attnlab::experiments
