// layer_norm over the last dim: forward against a reference computed in double,
// gradients for x, gamma and beta by finite differences (all of them, and subsets),
// the backward from the output or from the input against a double reference, odd shapes,
// size-1 dims, strided inputs, and the shape and dtype errors.
// The plain gradient checks (and 1-vs-2-thread checks) of these ops are cases in the
// table of op cases, op_cases.cc.
#include <cmath>
#include <string>
#include <vector>

#include "framework/ops/ops.h"
#include "framework/tensor/allocator.h"
#include "gtest/gtest.h"
#include "tests/support/gradcheck.h"

namespace attnlab {
namespace {

using testing::AllClose;
using testing::GradCheck;
using testing::RandomInput;

// (x - mean) / sqrt(biased variance + epsilon) * gamma + beta per row, in double.
std::vector<float> ReferenceLayerNorm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                      double epsilon) {
  const std::vector<float> xs = x.ToFloats(), g = gamma.ToFloats(), b = beta.ToFloats();
  const int64_t cols = x.size(-1);
  const int64_t rows = x.numel() / cols;
  std::vector<float> out(xs.size());
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = xs.data() + r * cols;
    double mean = 0.0;
    for (int64_t c = 0; c < cols; ++c) mean += row[c];
    mean /= cols;
    double variance = 0.0;
    for (int64_t c = 0; c < cols; ++c) variance += (row[c] - mean) * (row[c] - mean);
    variance /= cols;
    const double inverse_std = 1.0 / std::sqrt(variance + epsilon);
    for (int64_t c = 0; c < cols; ++c) {
      out[r * cols + c] = static_cast<float>((row[c] - mean) * inverse_std * g[c] + b[c]);
    }
  }
  return out;
}

class LayerNormTest : public ::testing::TestWithParam<Shape> {};

TEST_P(LayerNormTest, ForwardMatchesDoubleReference) {
  const Shape& shape = GetParam();
  const int64_t channels = shape.back();
  // An offset and scale per input, as real activations have, to exercise the centring.
  const Tensor x = AddScalar(MulScalar(RandomInput(shape, 1), 3.0f), 5.0f);
  const Tensor gamma = RandomInput({channels}, 2, 0.5f, 1.5f);
  const Tensor beta = RandomInput({channels}, 3);
  for (const float epsilon : {1e-5f, 1e-1f}) {
    const Tensor y = LayerNorm(x, gamma, beta, epsilon);
    ASSERT_EQ(y.shape(), shape);
    EXPECT_TRUE(AllClose(y, ReferenceLayerNorm(x, gamma, beta, epsilon), 1e-5))
        << x.Describe() << " epsilon " << epsilon;
  }
}

INSTANTIATE_TEST_SUITE_P(LayerNorm, LayerNormTest,
                         ::testing::Values(Shape{3, 7}, Shape{2, 3, 5}, Shape{1, 4}, Shape{4, 1, 6},
                                           Shape{9}, Shape{3, 1}));

TEST(LayerNormSubsetTest, OnlySomeInputsRequireGrad) {
  // x alone, gamma alone, beta alone: the unneeded gradients are scratch and never reach
  // the inputs that do not require grad.
  const Shape shape = {2, 3, 5};
  for (int which = 0; which < 3; ++which) {
    std::vector<Tensor> inputs = {RandomInput(shape, 20), RandomInput({5}, 21, 0.5f, 1.5f),
                                  RandomInput({5}, 22)};
    for (int i = 0; i < 3; ++i) inputs[i].set_requires_grad(i == which);
    EXPECT_TRUE(GradCheck(
        [](const std::vector<Tensor>& in) { return LayerNorm(in[0], in[1], in[2]); }, inputs))
        << "only input " << which;
    for (int i = 0; i < 3; ++i) {
      if (i != which) {
        EXPECT_FALSE(inputs[i].grad().defined()) << i;
      }
    }
  }
}

// The gradients of sum(LayerNorm(x) * upstream) in double: with xhat = (x - mean) * rstd
// and g = upstream * gamma, dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),
// dgamma = sum over rows of upstream * xhat, dbeta = sum over rows of upstream.
struct Gradients {
  std::vector<float> x, gamma, beta;
};
Gradients ReferenceLayerNormGradients(const Tensor& x, const Tensor& gamma, const Tensor& upstream,
                                      double epsilon) {
  const std::vector<float> xs = x.ToFloats(), g = gamma.ToFloats(), dy = upstream.ToFloats();
  const int64_t cols = x.size(-1), rows = x.numel() / cols;
  std::vector<double> dgamma(cols, 0.0), dbeta(cols, 0.0);
  Gradients out{std::vector<float>(xs.size()), {}, {}};
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = xs.data() + r * cols;
    const float* d = dy.data() + r * cols;
    double mean = 0.0, variance = 0.0;
    for (int64_t c = 0; c < cols; ++c) mean += row[c];
    mean /= cols;
    for (int64_t c = 0; c < cols; ++c) variance += (row[c] - mean) * (row[c] - mean);
    variance /= cols;
    const double rstd = 1.0 / std::sqrt(variance + epsilon);
    double mean_g = 0.0, mean_g_xhat = 0.0;
    for (int64_t c = 0; c < cols; ++c) {
      const double xhat = (row[c] - mean) * rstd;
      mean_g += d[c] * g[c] / cols;
      mean_g_xhat += d[c] * g[c] * xhat / cols;
      dgamma[c] += d[c] * xhat;
      dbeta[c] += d[c];
    }
    for (int64_t c = 0; c < cols; ++c) {
      const double xhat = (row[c] - mean) * rstd;
      out.x[r * cols + c] = static_cast<float>(rstd * (d[c] * g[c] - mean_g - xhat * mean_g_xhat));
    }
  }
  out.gamma.assign(dgamma.begin(), dgamma.end());
  out.beta.assign(dbeta.begin(), dbeta.end());
  return out;
}

// Backward rebuilds xhat from the output when gamma and beta allow it (every |gamma| >=
// 1/16 and >= |beta| / 16) and keeps the input otherwise (a gamma of 0 here); both give
// the double-precision gradients to f32 rounding. Only the first lets the input go: its
// storage is freed as soon as the caller drops it.
TEST(LayerNormBackwardTest, FromOutputOrFromInputMatchesDoubleReference) {
  const Tensor x_values = RandomInput({96, 48}, 40, -3.0f, 3.0f);
  const Tensor upstream = RandomInput({96, 48}, 41).detach();
  for (const bool gamma_has_zero : {false, true}) {
    std::vector<float> gamma_values = RandomInput({48}, 42, 0.5f, 1.5f).ToFloats();
    for (int64_t c = 0; c < 48; c += 2) gamma_values[c] = -gamma_values[c];  // signs too
    if (gamma_has_zero) gamma_values[7] = 0.0f;
    Tensor gamma = Tensor::FromFloats(gamma_values, {48});
    Tensor beta = RandomInput({48}, 43, -4.0f, 4.0f);  // |beta| / |gamma| up to 8
    Tensor leaf = x_values.detach().Clone();
    gamma.set_requires_grad(true);
    beta.set_requires_grad(true);
    leaf.set_requires_grad(true);
    Tensor x = MulScalar(leaf, 1.0f);  // a fresh tensor only layer norm may keep
    const Tensor y = LayerNorm(x, gamma, beta);
    const size_t before_drop = CachingAllocator::Global().Stats().current_bytes;
    x = Tensor();
    const size_t freed = before_drop - CachingAllocator::Global().Stats().current_bytes;
    EXPECT_EQ(freed, gamma_has_zero ? 0 : CachingAllocator::SizeClass(96 * 48 * sizeof(float)));
    Sum(Mul(y, upstream)).backward();
    const Gradients expected = ReferenceLayerNormGradients(x_values, gamma, upstream, 1e-5);
    const std::string what = gamma_has_zero ? "from the input" : "from the output";
    EXPECT_TRUE(AllClose(leaf.grad(), expected.x, 2e-5)) << what;
    EXPECT_TRUE(AllClose(gamma.grad(), expected.gamma, 2e-5)) << what;
    EXPECT_TRUE(AllClose(beta.grad(), expected.beta, 2e-5)) << what;
  }
}

TEST(LayerNormSubsetTest, BetaGradientIsSumOfOutputGradient) {
  Tensor x = RandomInput({4, 3}, 30);
  Tensor gamma = RandomInput({3}, 31), beta = RandomInput({3}, 32);
  Sum(LayerNorm(x, gamma, beta)).backward();
  EXPECT_TRUE(AllClose(beta.grad(), {4.0f, 4.0f, 4.0f}, 1e-6));
  // The normalised row xhat sums to zero, so with a uniform gamma sum(y) does not depend
  // on x and its gradient with respect to x is 0.
  Tensor x2 = RandomInput({4, 3}, 33);
  Sum(LayerNorm(x2, Tensor::Full({3}, 1.0f), Tensor::Zeros({3}))).backward();
  for (const float g : x2.grad().ToFloats()) EXPECT_NEAR(g, 0.0f, 1e-5);
}

TEST(LayerNormStridedTest, StridedInputIsHandled) {
  const Tensor base = RandomInput({3, 9}, 40);
  const Tensor view = base.narrow(1, 2, 5);  // [3, 5] with row stride 9
  ASSERT_FALSE(view.is_contiguous());
  const Tensor gamma = RandomInput({5}, 41), beta = RandomInput({5}, 42);
  EXPECT_TRUE(AllClose(LayerNorm(view, gamma, beta),
                       ReferenceLayerNorm(view.contiguous(), gamma, beta, 1e-5), 1e-5));
  EXPECT_TRUE(GradCheck(
      [](const std::vector<Tensor>& in) {
        return LayerNorm(in[0].narrow(1, 2, 5), in[1].narrow(0, 1, 5), in[2]);
      },
      {RandomInput({3, 9}, 43), RandomInput({7}, 44, 0.5f, 1.5f), RandomInput({5}, 45)}));
}

TEST(LayerNormEdgeTest, SingleChannelGivesBeta) {
  // With C = 1 every row equals its mean: the output is beta and dx is 0.
  Tensor x = RandomInput({4, 1}, 50);
  const Tensor gamma = Tensor::Full({1}, 2.0f), beta = Tensor::Full({1}, 0.75f);
  const Tensor y = LayerNorm(x, gamma, beta);
  EXPECT_TRUE(AllClose(y, {0.75f, 0.75f, 0.75f, 0.75f}, 1e-6));
  Sum(y).backward();
  EXPECT_TRUE(AllClose(x.grad(), {0.0f, 0.0f, 0.0f, 0.0f}, 1e-6));
}

TEST(LayerNormErrorTest, MismatchedShapesThrow) {
  const Tensor x = Tensor::Zeros({2, 3, 5});
  EXPECT_THROW(LayerNorm(x, Tensor::Zeros({4}), Tensor::Zeros({5})), Error);
  EXPECT_THROW(LayerNorm(x, Tensor::Zeros({5}), Tensor::Zeros({3})), Error);
  EXPECT_THROW(LayerNorm(x, Tensor::Zeros({1, 5}), Tensor::Zeros({5})), Error);
  EXPECT_THROW(LayerNorm(x, Tensor(), Tensor::Zeros({5})), Error);
  try {
    LayerNorm(x, Tensor::Zeros({4}), Tensor::Zeros({5}));
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("layer_norm"), std::string::npos) << message;
    EXPECT_NE(message.find("f32[2, 3, 5]"), std::string::npos) << message;
    EXPECT_NE(message.find("f32[4]"), std::string::npos) << message;
  }
}

TEST(LayerNormErrorTest, WrongDtypesThrow) {
  const std::vector<int32_t> ids = {0, 1, 2, 3, 4, 5};
  EXPECT_THROW(LayerNorm(Tensor::FromInts(ids, {2, 3}), Tensor::Zeros({3}), Tensor::Zeros({3})),
               Error);
  const Tensor int_gamma = Tensor::FromInts(std::vector<int32_t>{1, 2, 3}, {3});
  EXPECT_THROW(LayerNorm(Tensor::Zeros({2, 3}), int_gamma, Tensor::Zeros({3})), Error);
}

}  // namespace
}  // namespace attnlab
