#include "framework/random/generator.h"

#include <cmath>
#include <numbers>

#include "framework/parallel/parallel_for.h"
#include "framework/random/philox.h"

namespace attnlab {

Generator& DefaultGenerator() {
  static Generator* generator = new Generator(0);
  return *generator;
}

void ManualSeed(uint64_t seed) { DefaultGenerator().set_state({seed, 0}); }

namespace {
// Calls fill(i, words) for each 4-element group i of `count` elements.
template <typename Fill>
void ForEachBlock(int64_t count, Generator& generator, Fill fill) {
  const int64_t blocks = (count + 3) / 4;
  const uint64_t first = generator.Reserve(blocks);
  const uint64_t seed = generator.seed();
  ParallelFor(blocks, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t block = begin; block < end; ++block) fill(block, PhiloxBlock(seed, first + block));
  });
}
}  // namespace

Tensor RandomUniform(const Shape& shape, float low, float high, Generator& generator) {
  Tensor out = Tensor::Empty(shape);
  float* data = out.data<float>();
  const int64_t count = out.numel();
  ForEachBlock(count, generator, [&](int64_t block, const PhiloxCounter& words) {
    for (int64_t j = 0; j < 4 && block * 4 + j < count; ++j) {
      data[block * 4 + j] = low + (high - low) * UniformFloat(words[j]);
    }
  });
  return out;
}

Tensor RandomNormal(const Shape& shape, float mean, float stddev, Generator& generator) {
  Tensor out = Tensor::Empty(shape);
  float* data = out.data<float>();
  const int64_t count = out.numel();
  // Box-Muller: each pair of uniform words gives two normal values.
  ForEachBlock(count, generator, [&](int64_t block, const PhiloxCounter& words) {
    for (int64_t pair = 0; pair < 2; ++pair) {
      const float u1 = 1.0f - UniformFloat(words[2 * pair]);  // (0, 1]
      const float u2 = UniformFloat(words[2 * pair + 1]);
      const float radius = std::sqrt(-2.0f * std::log(u1));
      const float angle = 2.0f * std::numbers::pi_v<float> * u2;
      const int64_t i = block * 4 + pair * 2;
      if (i < count) data[i] = mean + stddev * radius * std::cos(angle);
      if (i + 1 < count) data[i + 1] = mean + stddev * radius * std::sin(angle);
    }
  });
  return out;
}

Tensor RandomInts(const Shape& shape, int32_t low, int32_t high, Generator& generator) {
  ATTNLAB_CHECK(high > low, "RandomInts: empty range [", low, ", ", high, ")");
  Tensor out = Tensor::Empty(shape, DType::kI32);
  int32_t* data = out.data<int32_t>();
  const int64_t count = out.numel();
  const uint64_t range = static_cast<uint64_t>(high - low);
  ForEachBlock(count, generator, [&](int64_t block, const PhiloxCounter& words) {
    for (int64_t j = 0; j < 4 && block * 4 + j < count; ++j) {
      data[block * 4 + j] =
          low + static_cast<int32_t>((static_cast<uint64_t>(words[j]) * range) >> 32);
    }
  });
  return out;
}

}  // namespace attnlab
