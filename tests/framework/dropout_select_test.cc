// Dropout's per-word select loops (framework/ops/dropout_select.h): the portable forms
// against the element-by-element definition, and the AVX-512 forms against the portable
// ones bit for bit, on inputs that test every branch: halves on both sides of the
// threshold and at it, thresholds 0 and 65535, x negative, +-0, NaN, infinite, denormal.
#include "framework/ops/dropout_select.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace attnlab::dropout_select {
namespace {

uint32_t BitsOf(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

// 64 of everything a select must treat right, then random values.
std::vector<float> TrickyFloats(uint32_t seed) {
  std::vector<float> values = {0.0f,
                               -0.0f,
                               1.0f,
                               -1.0f,
                               std::numeric_limits<float>::quiet_NaN(),
                               -std::numeric_limits<float>::quiet_NaN(),
                               std::numeric_limits<float>::infinity(),
                               -std::numeric_limits<float>::infinity(),
                               std::numeric_limits<float>::denorm_min(),
                               -std::numeric_limits<float>::denorm_min(),
                               std::numeric_limits<float>::max(),
                               std::numeric_limits<float>::lowest()};
  std::mt19937 engine(seed);
  std::uniform_real_distribution<float> uniform(-3.0f, 3.0f);
  while (values.size() < 64) values.push_back(uniform(engine));
  return values;
}

std::vector<uint16_t> Halves(uint32_t seed, uint16_t threshold) {
  std::vector<uint16_t> halves = {0, 65535, threshold, static_cast<uint16_t>(threshold - 1),
                                  static_cast<uint16_t>(threshold + 1)};
  std::mt19937 engine(seed);
  while (halves.size() < 64) halves.push_back(static_cast<uint16_t>(engine()));
  return halves;
}

template <Epilogue kEpilogue>
void CheckDropWord(uint16_t threshold, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << "epilogue " << static_cast<int>(kEpilogue) << ", threshold "
                                    << threshold << ", seed " << seed);
  const std::vector<uint16_t> halves = Halves(seed, threshold);
  const std::vector<float> in = TrickyFloats(seed);
  const std::vector<float> residual = TrickyFloats(seed + 1000);
  const float scale = 1.0f / (1.0f - 0.1f);

  // The definition, element by element.
  std::vector<float> expected(64);
  uint64_t expected_bits = 0;
  for (int i = 0; i < 64; ++i) {
    const bool keep = DropElement<kEpilogue>(halves[i] >= threshold, scale, in.data(),
                                             residual.data(), expected.data(), i);
    expected_bits |= static_cast<uint64_t>(keep) << i;
  }

  std::vector<float> portable(64);
  EXPECT_EQ(DropWordPortable<kEpilogue>(halves.data(), threshold, scale, in.data(), residual.data(),
                                        portable.data()),
            expected_bits);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(BitsOf(portable[i]), BitsOf(expected[i])) << i;

#ifdef ATTNLAB_DROPOUT_AVX512
  std::vector<float> vectorised(64);
  EXPECT_EQ(DropWordAvx512<kEpilogue>(halves.data(), threshold, scale, in.data(), residual.data(),
                                      vectorised.data()),
            expected_bits);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(BitsOf(vectorised[i]), BitsOf(expected[i])) << i;
#endif
}

TEST(DropoutSelectTest, DropWordMatchesTheDefinitionForEveryEpilogue) {
  for (const uint16_t threshold :
       {uint16_t{0}, uint16_t{1}, uint16_t{6554}, uint16_t{32768}, uint16_t{65535}}) {
    for (uint32_t seed = 1; seed <= 4; ++seed) {
      CheckDropWord<Epilogue::kPlain>(threshold, seed);
      CheckDropWord<Epilogue::kRelu>(threshold, seed);
      CheckDropWord<Epilogue::kResidual>(threshold, seed);
    }
  }
}

TEST(DropoutSelectTest, ScaleByMaskWordMatchesTheDefinition) {
  std::mt19937_64 engine(7);
  for (const uint64_t bits : {uint64_t{0}, ~uint64_t{0}, uint64_t{0x8000000000000001},
                              uint64_t{engine()}, uint64_t{engine()}}) {
    const std::vector<float> grad = TrickyFloats(static_cast<uint32_t>(bits));
    const float scale = 1.25f;
    std::vector<float> portable(64);
    ScaleByMaskWordPortable(bits, scale, grad.data(), portable.data());
    for (int i = 0; i < 64; ++i) {
      const float expected = ((bits >> i) & 1) != 0 ? grad[i] * scale : 0.0f;
      EXPECT_EQ(BitsOf(portable[i]), BitsOf(expected)) << "bit " << i << " of " << bits;
    }
#ifdef ATTNLAB_DROPOUT_AVX512
    std::vector<float> vectorised(64);
    ScaleByMaskWordAvx512(bits, scale, grad.data(), vectorised.data());
    for (int i = 0; i < 64; ++i) {
      EXPECT_EQ(BitsOf(vectorised[i]), BitsOf(portable[i])) << "bit " << i << " of " << bits;
    }
#endif
  }
}

}  // namespace
}  // namespace attnlab::dropout_select
