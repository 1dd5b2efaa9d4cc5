// SumChunkPartials: out[i] = 0 + partials[0][i] + ... + partials[chunks - 1][i], added in
// that order, bit for bit, on any number of threads (block tails, signed zeros, NaN and
// infinities included).
#include "framework/parallel/chunk_partials.h"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/bit_identical.h"
#include "tests/support/thread_counts.h"

namespace attnlab {
namespace {

using testing::BitIdentical;

// The definition, element by element.
std::vector<float> ReferenceSum(const std::vector<float>& partials, int64_t chunks, int64_t size) {
  std::vector<float> out(size);
  for (int64_t i = 0; i < size; ++i) {
    float total = 0.0f;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) total += partials[chunk * size + i];
    out[i] = total;
  }
  return out;
}

// Values of mixed magnitude, so the order of the additions shows in the low bits.
std::vector<float> MixedValues(int64_t count, unsigned seed) {
  std::mt19937 engine(seed);
  std::uniform_real_distribution<float> unit(-0.5f, 0.5f);
  std::vector<float> values(count);
  for (int64_t i = 0; i < count; ++i) {
    values[i] = unit(engine) * std::ldexp(1.0f, static_cast<int>(i % 41) - 20);
  }
  return values;
}

TEST(SumChunkPartialsTest, EqualsTheElementByElementSumBitForBit) {
  // Sizes below, at and across the 4096-element blocks, with a ragged tail.
  for (const int64_t size : {1, 7, 4096, 4097, 3 * 4096 + 123}) {
    for (const int64_t chunks : {1, 2, 5, 8}) {
      SCOPED_TRACE(::testing::Message() << "size " << size << ", chunks " << chunks);
      const std::vector<float> partials =
          MixedValues(chunks * size, static_cast<unsigned>(1000 + size + chunks));
      std::vector<float> out(size, 123.0f);  // overwritten, not added to
      SumChunkPartials(partials.data(), chunks, size, out.data());
      EXPECT_TRUE(BitIdentical(out, ReferenceSum(partials, chunks, size)));
    }
  }
}

TEST(SumChunkPartialsTest, SignedZerosNanAndInfinitiesFollowTheDefinition) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // Columns: -0 + -0 (0 + -0 + -0 is +0), inf + 1, inf + -inf (NaN), NaN + 1, max + max.
  const std::vector<float> partials = {-0.0f, inf,  inf,  nan,  3e38f,   // chunk 0
                                       -0.0f, 1.0f, -inf, 1.0f, 3e38f};  // chunk 1
  std::vector<float> out(5);
  SumChunkPartials(partials.data(), 2, 5, out.data());
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_FALSE(std::signbit(out[0]));
  EXPECT_EQ(out[1], inf);
  EXPECT_TRUE(std::isnan(out[2]));
  EXPECT_TRUE(std::isnan(out[3]));
  EXPECT_EQ(out[4], inf);
}

TEST(SumChunkPartialsTest, SameBitsOnOneAndTwoThreads) {
  const int64_t size = 5 * 4096 + 17, chunks = 6;
  const std::vector<float> partials = MixedValues(chunks * size, 77);
  std::vector<float> one(size), two(size);
  testing::OnThreads(1, [&] { SumChunkPartials(partials.data(), chunks, size, one.data()); });
  testing::OnThreads(2, [&] { SumChunkPartials(partials.data(), chunks, size, two.data()); });
  EXPECT_TRUE(BitIdentical(one, two));
  EXPECT_TRUE(BitIdentical(one, ReferenceSum(partials, chunks, size)));
}

}  // namespace
}  // namespace attnlab
