// A random stream: a seed and an offset into its Philox sequence. Each consumer reserves
// a range of the sequence (Reserve) and draws from it by index, so results are
// independent of threading. The state is two integers, saved in checkpoints.
#pragma once

#include <cstdint>

#include "framework/tensor/tensor.h"

namespace attnlab {

struct GeneratorState {
  uint64_t seed = 0;
  uint64_t offset = 0;  // in 4-word Philox blocks
};

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : state_{seed, 0} {}
  // Reserves `blocks` Philox blocks and returns the first one's index.
  uint64_t Reserve(uint64_t blocks) {
    const uint64_t first = state_.offset;
    state_.offset += blocks;
    return first;
  }
  uint64_t seed() const { return state_.seed; }
  GeneratorState state() const { return state_; }
  void set_state(GeneratorState state) { state_ = state; }

 private:
  GeneratorState state_;
};

// The process-wide stream used by dropout and parameter initialisation.
Generator& DefaultGenerator();
// Restarts the default stream from `seed`.
void ManualSeed(uint64_t seed);

// New tensors of random values drawn from `generator` (default: the global stream).
Tensor RandomUniform(const Shape& shape, float low, float high,
                     Generator& generator = DefaultGenerator());
Tensor RandomNormal(const Shape& shape, float mean, float stddev,
                    Generator& generator = DefaultGenerator());
// Uniform integers in [low, high), as i32.
Tensor RandomInts(const Shape& shape, int32_t low, int32_t high,
                  Generator& generator = DefaultGenerator());

}  // namespace attnlab
