// softmax and log_softmax over the last dim: forward against a reference computed in
// double, gradients by finite differences, masks (padding [B, 1, 1, S], causal [T, T],
// finite biases), fully masked rows (zeros, zero gradient, no NaN), strided inputs and
// the shape and dtype errors.
// The plain gradient checks (and 1-vs-2-thread checks) of these ops are cases in the
// table of op cases, op_cases.cc.
#include <cmath>
#include <limits>
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

constexpr float kMinusInfinity = -std::numeric_limits<float>::infinity();

// The values of `t` broadcast (NumPy rules) to `shape`, row-major, by explicit indexing.
std::vector<float> BroadcastTo(const Tensor& t, const Shape& shape) {
  const std::vector<float> values = t.ToFloats();
  const int64_t rank = static_cast<int64_t>(shape.size());
  const int64_t shift = rank - t.rank();
  std::vector<float> out(NumElements(shape));
  for (int64_t i = 0; i < static_cast<int64_t>(out.size()); ++i) {
    int64_t rest = i, source = 0, source_stride = 1;
    for (int64_t d = rank - 1; d >= 0; --d) {
      const int64_t index = rest % shape[d];
      rest /= shape[d];
      if (d < shift) continue;
      const int64_t extent = t.shape()[d - shift];
      if (extent != 1) source += index * source_stride;
      source_stride *= extent;
    }
    out[i] = values[source];
  }
  return out;
}

// softmax (or log_softmax) of x + mask along the last dim, in double; rows that are all
// -inf give zeros (the op's documented convention).
std::vector<float> ReferenceSoftmax(const Tensor& x, const Tensor& mask, bool log_softmax) {
  std::vector<float> scores = x.ToFloats();
  if (mask.defined()) {
    const std::vector<float> mask_values = BroadcastTo(mask, x.shape());
    for (size_t i = 0; i < scores.size(); ++i) scores[i] += mask_values[i];
  }
  const int64_t cols = x.size(-1);
  const int64_t rows = x.numel() / cols;
  std::vector<float> out(scores.size(), 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = scores.data() + r * cols;
    double max_score = -std::numeric_limits<double>::infinity();
    for (int64_t c = 0; c < cols; ++c) max_score = std::max(max_score, double{row[c]});
    if (std::isinf(max_score)) continue;  // fully masked: zeros
    double sum = 0.0;
    for (int64_t c = 0; c < cols; ++c) sum += std::exp(row[c] - max_score);
    for (int64_t c = 0; c < cols; ++c) {
      const double shifted = row[c] - max_score;
      out[r * cols + c] =
          static_cast<float>(log_softmax ? shifted - std::log(sum) : std::exp(shifted) / sum);
    }
  }
  return out;
}

// [batch, 1, 1, src]: 0 for the first lengths[b] positions, -inf for the padding after.
Tensor PaddingMask(const std::vector<int64_t>& lengths, int64_t src) {
  std::vector<float> values;
  for (const int64_t length : lengths) {
    for (int64_t s = 0; s < src; ++s) values.push_back(s < length ? 0.0f : kMinusInfinity);
  }
  return Tensor::FromFloats(values, {static_cast<int64_t>(lengths.size()), 1, 1, src});
}

// [t, t]: query i sees keys 0..i.
Tensor CausalMask(int64_t t) {
  std::vector<float> values;
  for (int64_t i = 0; i < t; ++i) {
    for (int64_t j = 0; j < t; ++j) values.push_back(j <= i ? 0.0f : kMinusInfinity);
  }
  return Tensor::FromFloats(values, {t, t});
}

Tensor Apply(bool log_softmax, const Tensor& x, const Tensor& mask = Tensor()) {
  return log_softmax ? LogSoftmax(x, mask) : Softmax(x, mask);
}

// Parameterised by log_softmax (false: softmax, true: log_softmax).
class SoftmaxTest : public ::testing::TestWithParam<bool> {};

TEST_P(SoftmaxTest, ForwardMatchesDoubleReference) {
  const bool log_softmax = GetParam();
  uint64_t seed = 1;
  for (const Shape& shape : {Shape{3, 7}, Shape{2, 3, 5}, Shape{1, 1}, Shape{4, 1}, Shape{1, 9},
                             Shape{7}, Shape{64, 333}}) {
    // Scores spread over [-8, 8]: exp spans ~7 decades, as attention logits do.
    const Tensor x = RandomInput(shape, seed++, -8.0f, 8.0f);
    const Tensor y = Apply(log_softmax, x);
    ASSERT_EQ(y.shape(), shape);
    EXPECT_TRUE(AllClose(y, ReferenceSoftmax(x, Tensor(), log_softmax), 1e-5)) << x.Describe();
  }
}

TEST_P(SoftmaxTest, FiniteMaskIsAddedAndGetsNoGradient) {
  // A finite additive bias (ALiBi-style) broadcast from [3, 5] over [2, 3, 5].
  const bool log_softmax = GetParam();
  const Tensor mask = RandomInput({3, 5}, 30, -2.0f, 2.0f).detach();
  const Tensor x = RandomInput({2, 3, 5}, 31, -3.0f, 3.0f);
  EXPECT_TRUE(AllClose(Apply(log_softmax, x, mask), ReferenceSoftmax(x, mask, log_softmax), 1e-5));
  EXPECT_TRUE(
      GradCheck([&](const std::vector<Tensor>& in) { return Apply(log_softmax, in[0], mask); },
                {RandomInput({2, 3, 5}, 32, -3.0f, 3.0f)}));
}

TEST_P(SoftmaxTest, PaddingMaskBroadcastsOverHeadsAndQueries) {
  const bool log_softmax = GetParam();
  const Tensor mask = PaddingMask({5, 3}, 5);  // [2, 1, 1, 5]
  const Tensor x = RandomInput({2, 3, 4, 5}, 40, -4.0f, 4.0f);
  const Tensor y = Apply(log_softmax, x, mask);
  ASSERT_EQ(y.shape(), x.shape());
  const std::vector<float> expected = ReferenceSoftmax(x, mask, log_softmax);
  EXPECT_TRUE(AllClose(y, expected, 1e-5));
  // Padded keys get probability exactly 0 (log-probability -inf).
  const std::vector<float> values = y.ToFloats();
  for (int64_t row = 0; row < 3 * 4; ++row) {
    for (int64_t s = 3; s < 5; ++s) {
      const float value = values[(3 * 4 + row) * 5 + s];  // batch 1, length 3
      EXPECT_EQ(value, log_softmax ? kMinusInfinity : 0.0f);
    }
  }
}

TEST_P(SoftmaxTest, CausalMaskOverBatchAndHeads) {
  const bool log_softmax = GetParam();
  const int64_t t = 6;
  const Tensor mask = CausalMask(t);  // [t, t] broadcast over [2, 2, t, t]
  const Tensor x = RandomInput({2, 2, t, t}, 50, -4.0f, 4.0f);
  EXPECT_TRUE(AllClose(Apply(log_softmax, x, mask), ReferenceSoftmax(x, mask, log_softmax), 1e-5));
}

TEST(SoftmaxMaskedGradientTest, SoftmaxWithInfiniteMasksMatchesFiniteDifferences) {
  // Masked outputs are exactly 0 whatever x is, so finite differences are well defined.
  // Default tolerances: 2e-2 relative + 2e-3 absolute.
  const Tensor padding = PaddingMask({4, 2}, 4);
  EXPECT_TRUE(GradCheck([&](const std::vector<Tensor>& x) { return Softmax(x[0], padding); },
                        {RandomInput({2, 2, 3, 4}, 60, -3.0f, 3.0f)}));
  const Tensor causal = CausalMask(5);
  EXPECT_TRUE(GradCheck([&](const std::vector<Tensor>& x) { return Softmax(x[0], causal); },
                        {RandomInput({2, 5, 5}, 61, -3.0f, 3.0f)}));
}

TEST(SoftmaxMaskedGradientTest, LogSoftmaxWithInfiniteMaskThroughExp) {
  // log_softmax is -inf at masked keys, where differences are undefined, so check
  // exp(log_softmax(x, mask)) instead: that exercises log_softmax's backward through the
  // masked positions (whose incoming gradient is 0). Default tolerances.
  const Tensor causal = CausalMask(5);
  EXPECT_TRUE(GradCheck([&](const std::vector<Tensor>& x) { return Exp(LogSoftmax(x[0], causal)); },
                        {RandomInput({2, 5, 5}, 62, -3.0f, 3.0f)}));
}

TEST_P(SoftmaxTest, FullyMaskedRowGivesZerosAndZeroGradient) {
  // Batch 1 of the padding mask has length 0: every key of every query is masked;
  // batch 0 (length 3) stays normal.
  const bool log_softmax = GetParam();
  const Tensor mask = PaddingMask({3, 0}, 4);  // [2, 1, 1, 4]
  Tensor x = RandomInput({2, 2, 3, 4}, 70, -3.0f, 3.0f);
  const Tensor y = Apply(log_softmax, x, mask);
  const std::vector<float> values = y.ToFloats();
  const int64_t half = 2 * 3 * 4;
  for (int64_t i = half; i < 2 * half; ++i) EXPECT_EQ(values[i], 0.0f) << i;
  EXPECT_TRUE(AllClose(y, ReferenceSoftmax(x, mask, log_softmax), 1e-5));

  // Project with nonzero weights everywhere, so the fully masked rows receive a nonzero
  // incoming gradient. log_softmax is -inf at batch 0's padded key, where a weight would
  // give NaN, so it goes through exp first (exp(-inf) = 0; exp(0) = 1 on masked rows).
  std::vector<float> weights(2 * half);
  for (int64_t i = 0; i < 2 * half; ++i) weights[i] = 0.25f * static_cast<float>(i % 7) - 0.6f;
  const Tensor safe_y = log_softmax ? Exp(y) : y;
  Sum(Mul(safe_y, Tensor::FromFloats(weights, y.shape()))).backward();
  const std::vector<float> grad = x.grad().ToFloats();
  for (int64_t i = 0; i < 2 * half; ++i) EXPECT_TRUE(std::isfinite(grad[i])) << i;
  for (int64_t i = half; i < 2 * half; ++i) EXPECT_EQ(grad[i], 0.0f) << i;
  // Batch 0 gets a real gradient.
  double batch0_norm = 0.0;
  for (int64_t i = 0; i < half; ++i) batch0_norm += std::abs(grad[i]);
  EXPECT_GT(batch0_norm, 0.0);
}

TEST_P(SoftmaxTest, FullyMaskedRowInInputWithoutMask) {
  // A row that is already all -inf in x (no mask) is zeroed too, and x is not modified.
  const bool log_softmax = GetParam();
  const std::vector<float> values = {1.0f,           2.0f,           3.0f,
                                     kMinusInfinity, kMinusInfinity, kMinusInfinity};
  Tensor x = Tensor::FromFloats(values, {2, 3});
  x.set_requires_grad(true);
  const Tensor y = Apply(log_softmax, x);
  EXPECT_TRUE(AllClose(y, ReferenceSoftmax(x, Tensor(), log_softmax), 1e-5));
  const std::vector<float> x_after = x.ToFloats();
  EXPECT_EQ(x_after[3], kMinusInfinity);
  EXPECT_EQ(x_after[5], kMinusInfinity);
  Sum(Mul(y, Tensor::FromFloats(std::vector<float>{0.3f, -0.2f, 0.5f, 1.0f, 2.0f, 3.0f}, {2, 3})))
      .backward();
  const std::vector<float> grad = x.grad().ToFloats();
  for (int64_t i = 0; i < 3; ++i) EXPECT_TRUE(std::isfinite(grad[i])) << i;
  for (int64_t i = 3; i < 6; ++i) EXPECT_EQ(grad[i], 0.0f) << i;
}

TEST_P(SoftmaxTest, StridedInputIsHandled) {
  const bool log_softmax = GetParam();
  const Tensor base = RandomInput({3, 9}, 80, -3.0f, 3.0f);
  const Tensor view = base.narrow(1, 2, 5);  // [3, 5] with row stride 9
  ASSERT_FALSE(view.is_contiguous());
  EXPECT_TRUE(AllClose(Apply(log_softmax, view),
                       ReferenceSoftmax(view.contiguous(), Tensor(), log_softmax), 1e-5));
  EXPECT_TRUE(GradCheck(
      [&](const std::vector<Tensor>& x) { return Apply(log_softmax, x[0].narrow(1, 2, 5)); },
      {RandomInput({3, 9}, 81, -3.0f, 3.0f)}));
  // A strided x with a mask.
  const Tensor mask = CausalMask(4).narrow(0, 1, 3).narrow(1, 1, 3);  // [3, 3], row stride 4
  ASSERT_FALSE(mask.is_contiguous());
  EXPECT_TRUE(GradCheck(
      [&](const std::vector<Tensor>& x) {
        return Exp(Apply(log_softmax, x[0].narrow(1, 1, 3), mask));
      },
      {RandomInput({3, 5}, 82, -3.0f, 3.0f)}));
}

TEST_P(SoftmaxTest, MismatchedMaskThrows) {
  const bool log_softmax = GetParam();
  const Tensor x = Tensor::Zeros({2, 3, 5});
  EXPECT_THROW(Apply(log_softmax, x, Tensor::Zeros({4, 5})), Error);        // incompatible
  EXPECT_THROW(Apply(log_softmax, x, Tensor::Zeros({2, 2, 3, 5})), Error);  // larger than x
  EXPECT_THROW(Apply(log_softmax, x, Tensor::Zeros({2, 1, 4})), Error);
  try {
    Apply(log_softmax, x, Tensor::Zeros({4, 5}));
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(log_softmax ? "log_softmax" : "softmax"), std::string::npos) << message;
    EXPECT_NE(message.find("[2, 3, 5]"), std::string::npos) << message;
    EXPECT_NE(message.find("[4, 5]"), std::string::npos) << message;
  }
}

TEST_P(SoftmaxTest, WrongDtypesThrow) {
  const bool log_softmax = GetParam();
  const std::vector<int32_t> ids = {0, 1, 2, 3, 4, 5};
  EXPECT_THROW(Apply(log_softmax, Tensor::FromInts(ids, {2, 3})), Error);
  EXPECT_THROW(Apply(log_softmax, Tensor::Zeros({2, 3}), Tensor::FromInts(ids, {2, 3})), Error);
}

TEST_P(SoftmaxTest, MaskRequiringGradThrows) {
  const bool log_softmax = GetParam();
  EXPECT_THROW(Apply(log_softmax, Tensor::Zeros({2, 3}), RandomInput({3}, 90)), Error);
}

INSTANTIATE_TEST_SUITE_P(Softmax, SoftmaxTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return std::string(info.param ? "LogSoftmax" : "Softmax");
                         });

TEST(SoftmaxRowsTest, RowsSumToOne) {
  const Tensor x = RandomInput({4, 3, 37}, 100, -10.0f, 10.0f);
  const std::vector<float> y = Softmax(x, CausalMask(37).narrow(0, 0, 3)).ToFloats();
  for (int64_t row = 0; row < 12; ++row) {
    double sum = 0.0;
    for (int64_t c = 0; c < 37; ++c) sum += y[row * 37 + c];
    EXPECT_NEAR(sum, 1.0, 1e-5) << row;
  }
}

TEST(SoftmaxRowsTest, LogSoftmaxExponentiatesToRowsSummingToOne) {
  const std::vector<float> y = LogSoftmax(RandomInput({5, 11}, 101, -10.0f, 10.0f)).ToFloats();
  for (int64_t row = 0; row < 5; ++row) {
    double sum = 0.0;
    for (int64_t c = 0; c < 11; ++c) sum += std::exp(double{y[row * 11 + c]});
    EXPECT_NEAR(sum, 1.0, 1e-5) << row;
  }
}

TEST(SoftmaxRowsTest, LargeScoresDoNotOverflow) {
  const Tensor x = Tensor::FromFloats(std::vector<float>{1000.0f, 1001.0f, -1000.0f}, {1, 3});
  // f32 results; 1e-5 of max(1, |expected|) (log_softmax subtracts a rounded log-sum).
  EXPECT_TRUE(AllClose(Softmax(x), ReferenceSoftmax(x, Tensor(), false), 1e-5));
  EXPECT_TRUE(AllClose(LogSoftmax(x), ReferenceSoftmax(x, Tensor(), true), 1e-5));
}

}  // namespace
}  // namespace attnlab
