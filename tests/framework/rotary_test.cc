// rotary: forward against a naive loop computing the RoFormer angles in double, with
// position offsets, gradients by finite differences, the backward as the rotation by
// the negative angle, strided inputs, norm preservation and the errors.
// The plain gradient checks (and 1-vs-2-thread checks) of these ops are cases in the
// table of op cases, op_cases.cc.
#include <cmath>
#include <string>
#include <vector>

#include "framework/ops/ops.h"
#include "gtest/gtest.h"
#include "tests/support/gradcheck.h"

namespace attnlab {
namespace {

using testing::AllClose;
using testing::GradCheck;
using testing::RandomInput;

// x: [..., time, head_dim]. Pair (2i, 2i+1) of row t rotated by
// angle_sign * (t + offset) * 10000^(-2i / head_dim), by explicit indexing.
std::vector<float> NaiveRotary(const Tensor& x, int64_t offset, double angle_sign = 1.0) {
  const std::vector<float> values = x.ToFloats();
  const int64_t time = x.size(-2), head_dim = x.size(-1);
  const int64_t outer = x.numel() / (time * head_dim);
  std::vector<float> out(values.size());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t t = 0; t < time; ++t) {
      for (int64_t i = 0; i < head_dim / 2; ++i) {
        const double angle = angle_sign * static_cast<double>(t + offset) *
                             std::pow(10000.0, -2.0 * i / static_cast<double>(head_dim));
        const int64_t base = (o * time + t) * head_dim + 2 * i;
        const double even = values[base], odd = values[base + 1];
        out[base] = static_cast<float>(even * std::cos(angle) - odd * std::sin(angle));
        out[base + 1] = static_cast<float>(even * std::sin(angle) + odd * std::cos(angle));
      }
    }
  }
  return out;
}

struct RotaryCase {
  Shape shape;
  int64_t offset;
};

class RotaryTest : public ::testing::TestWithParam<RotaryCase> {};

TEST_P(RotaryTest, ForwardMatchesNaiveLoop) {
  const RotaryCase& c = GetParam();
  const Tensor x = RandomInput(c.shape, 1);
  const Tensor out = Rotary(x, c.offset);
  ASSERT_EQ(out.shape(), x.shape());
  EXPECT_TRUE(AllClose(out, NaiveRotary(x, c.offset), 2e-5));
}

INSTANTIATE_TEST_SUITE_P(Shapes, RotaryTest,
                         ::testing::Values(RotaryCase{{2, 3, 5, 4}, 0}, RotaryCase{{2, 3, 5, 4}, 7},
                                           RotaryCase{{1, 1, 1, 2}, 3},
                                           RotaryCase{{2, 2, 4, 8}, 1000}, RotaryCase{{6, 6}, 0},
                                           RotaryCase{{2, 1, 3, 16}, 2}));

TEST(RotaryTest, PositionZeroIsTheIdentity) {
  const Tensor x = RandomInput({2, 2, 1, 8}, 3);
  EXPECT_TRUE(AllClose(Rotary(x, 0), x, 0.0));
}

TEST(RotaryTest, BackwardRotatesTheGradientByTheNegativeAngle) {
  const Tensor x = RandomInput({2, 2, 5, 6}, 4);
  const Tensor grad_output = RandomInput({2, 2, 5, 6}, 5).detach();
  Sum(Mul(Rotary(x, 3), grad_output)).backward();
  EXPECT_TRUE(AllClose(x.grad(), NaiveRotary(grad_output, 3, -1.0), 2e-5));
}

TEST(RotaryTest, PreservesTheNormOfEveryPair) {
  const Tensor x = RandomInput({1, 1, 9, 10}, 6);
  const std::vector<float> in = x.ToFloats(), out = Rotary(x, 11).ToFloats();
  for (size_t p = 0; p + 1 < in.size(); p += 2) {
    EXPECT_NEAR(in[p] * in[p] + in[p + 1] * in[p + 1], out[p] * out[p] + out[p + 1] * out[p + 1],
                1e-5);
  }
}

TEST(RotaryTest, StridedInputFromTranspose) {
  // [batch, time, heads, dim] transposed to [batch, heads, time, dim], as attention does.
  const Tensor x = RandomInput({2, 5, 3, 4}, 7);
  const Tensor heads_first = x.transpose(1, 2);
  EXPECT_TRUE(AllClose(Rotary(heads_first, 2), NaiveRotary(heads_first.contiguous(), 2), 2e-5));
  EXPECT_TRUE(
      GradCheck([](const std::vector<Tensor>& in) { return Rotary(in[0].transpose(1, 2), 2); },
                {RandomInput({2, 5, 3, 4}, 8)}));
}

TEST(RotaryTest, OddHeadDimAndBadInputsThrow) {
  try {
    Rotary(Tensor::Zeros({1, 1, 2, 5}), 0);
    FAIL() << "expected attnlab::Error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("f32[1, 1, 2, 5]"), std::string::npos) << error.what();
  }
  EXPECT_THROW(Rotary(Tensor::Zeros({4}), 0), Error);
  EXPECT_THROW(Rotary(Tensor::Zeros({2, 4}), -1), Error);
  EXPECT_THROW(Rotary(Tensor::Zeros({2, 4}, DType::kI32), 0), Error);
}

}  // namespace
}  // namespace attnlab
