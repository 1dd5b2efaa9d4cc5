// VectorExp against std::exp: within 1 ulp on a dense sweep of the whole range where the
// result is a finite nonzero float (subnormal results included), exact special values,
// and saturation to 0 and infinity outside it.
#include "framework/ops/vector_exp.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace attnlab {
namespace {

// |a - b| in units of the spacing of floats at b.
double UlpDistance(float a, float b) {
  const float spacing =
      std::nextafter(std::fabs(b), std::numeric_limits<float>::infinity()) - std::fabs(b);
  return std::fabs(static_cast<double>(a) - static_cast<double>(b)) / spacing;
}

TEST(VectorExpTest, WithinOneUlpOfStdExpOverTheWholeRange) {
  // About 1.9 million points from -103.9 (a subnormal result) to 88.7 (near FLT_MAX),
  // with relative steps of 1e-5 and dense coverage around 0.
  double worst = 0.0;
  float worst_at = 0.0f;
  int64_t points = 0;
  for (float x = -103.9f; x < 88.72f; x += std::max(std::fabs(x) * 1e-5f, 1e-6f)) {
    const double distance = UlpDistance(VectorExp(x), std::exp(x));
    if (distance > worst) {
      worst = distance;
      worst_at = x;
    }
    ++points;
  }
  EXPECT_GT(points, 1000000);
  EXPECT_LE(worst, 1.0) << "worst at x = " << worst_at;
}

TEST(VectorExpTest, SpecialValues) {
  constexpr float kInfinity = std::numeric_limits<float>::infinity();
  EXPECT_EQ(VectorExp(0.0f), 1.0f);
  EXPECT_EQ(VectorExp(-0.0f), 1.0f);
  EXPECT_LE(UlpDistance(VectorExp(1.0f), 2.71828182845904524f), 1.0);
  EXPECT_LE(UlpDistance(VectorExp(-1.0f), 0.36787944117144233f), 1.0);
  EXPECT_EQ(VectorExp(-kInfinity), 0.0f);  // masked logits
  EXPECT_EQ(VectorExp(-105.0f), 0.0f);     // below the smallest subnormal
  EXPECT_EQ(VectorExp(kInfinity), kInfinity);
  EXPECT_EQ(VectorExp(89.0f), kInfinity);  // exp(89) > FLT_MAX
  EXPECT_TRUE(std::isnan(VectorExp(std::numeric_limits<float>::quiet_NaN())));
  // The largest finite result and a subnormal one.
  EXPECT_LE(UlpDistance(VectorExp(88.7f), std::exp(88.7f)), 1.0);
  EXPECT_GT(VectorExp(-100.0f), 0.0f);
  EXPECT_LT(VectorExp(-100.0f), std::numeric_limits<float>::min());
  EXPECT_LE(UlpDistance(VectorExp(-100.0f), std::exp(-100.0f)), 1.0);
}

// The loops the loss kernels run: an array at a time (vectorised) gives the same values
// as element by element.
TEST(VectorExpTest, ArrayLoopEqualsElementByElement) {
  std::vector<float> in(1003), out(in.size());
  for (size_t i = 0; i < in.size(); ++i) in[i] = -30.0f + 0.037f * static_cast<float>(i);
  for (size_t i = 0; i < in.size(); ++i) out[i] = VectorExp(in[i]);
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_LE(UlpDistance(out[i], std::exp(in[i])), 1.0) << "x = " << in[i];
  }
}

}  // namespace
}  // namespace attnlab
