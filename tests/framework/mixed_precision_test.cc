// Mixed precision: bf16 rounding of operands, and Matmul/Linear forward and backward
// inside a MixedPrecision scope against naive products of the bf16-rounded operands.
#include "framework/ops/mixed_precision.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <thread>
#include <vector>

#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "gtest/gtest.h"
#include "tests/support/gradcheck.h"
#include "tests/support/thread_counts.h"

namespace attnlab {
namespace {

using testing::AllClose;
using testing::RandomInput;

// The raw bf16 bit patterns of a bf16 tensor.
std::vector<uint16_t> Bits(const Tensor& t) {
  std::vector<uint16_t> bits(t.numel());
  std::memcpy(bits.data(), t.raw_data(), bits.size() * sizeof(uint16_t));
  return bits;
}

// x rounded to bf16 and widened back to f32.
Tensor Rounded(const Tensor& x) { return ContiguousAs(ContiguousAs(x, DType::kBF16), DType::kF32); }

// sum_k a[i, k] * b[k, j] in double, for 2-D a [M, K] and b [K, N].
std::vector<float> NaiveProduct(const Tensor& a, const Tensor& b) {
  const std::vector<float> av = a.ToFloats(), bv = b.ToFloats();
  const int64_t m = a.size(0), k = a.size(1), n = b.size(1);
  std::vector<float> c(m * n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double total = 0.0;
      for (int64_t q = 0; q < k; ++q) total += double{av[i * k + q]} * bv[q * n + j];
      c[i * n + j] = static_cast<float>(total);
    }
  return c;
}

class MixedPrecisionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!dnnl_backend::HasNativeBF16()) GTEST_SKIP() << "no native bf16 on this CPU";
  }
};

TEST_F(MixedPrecisionTest, RoundsToNearestEven) {
  // bf16 keeps 7 fraction bits: next to 1.0 the step is 2^-7, so 1 + 2^-8 is halfway
  // between 1 (even, 0x3F80) and 1 + 2^-7 (0x3F81) and goes down to 1; 1 + 3 * 2^-8 is
  // halfway between 1 + 2^-7 and 1 + 2^-6 (even, 0x3F82) and goes up; just above the
  // first halfway point goes up to 0x3F81. -2 is 0xC000.
  const std::vector<float> values = {1.0f, 1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f,
                                     1.0f + 0x1p-8f + 0x1p-20f, -2.0f};
  const Tensor x = Tensor::FromFloats(values, {5});
  EXPECT_EQ(Bits(ContiguousAs(x, DType::kBF16)),
            (std::vector<uint16_t>{0x3F80, 0x3F80, 0x3F82, 0x3F81, 0xC000}));
  EXPECT_EQ(Rounded(x).ToFloats(),
            (std::vector<float>{1.0f, 1.0f, 1.0f + 0x1p-6f, 1.0f + 0x1p-7f, -2.0f}));
}

// The fused rounding of a Linear's gradient: the same bits as ContiguousAs (normal,
// halfway, denormal, zero, infinite, NaN and overflowing values included), and column
// sums in chunks of 32 rows, hand-checked on small integers (exact in f32) and the same
// on one and two threads for random rows.
TEST_F(MixedPrecisionTest, RoundingWithColumnSumsMatchesContiguousAs) {
  const float denormal = 0x1p-130f, smallest_normal = 0x1p-126f;
  const std::vector<float> specials = {1.0f + 0x1p-8f,
                                       1.0f + 3 * 0x1p-8f,
                                       -2.0f,
                                       0.0f,
                                       -0.0f,
                                       denormal,
                                       -denormal,
                                       smallest_normal,
                                       std::numeric_limits<float>::infinity(),
                                       -std::numeric_limits<float>::infinity(),
                                       std::numeric_limits<float>::quiet_NaN(),
                                       std::numeric_limits<float>::max(),
                                       65504.0f,
                                       -1e-30f,
                                       3.14159265f,
                                       1e30f};
  const Tensor x = Tensor::FromFloats(specials, {4, 4});
  EXPECT_EQ(Bits(RoundToBf16WithColumnSums(x, nullptr)), Bits(ContiguousAs(x, DType::kBF16)));

  const Tensor random = RandomInput({70, 33}, 30).detach();  // 3 chunks, the last partial
  Tensor sums;
  EXPECT_EQ(Bits(RoundToBf16WithColumnSums(random, &sums)),
            Bits(ContiguousAs(random, DType::kBF16)));
  EXPECT_TRUE(AllClose(sums, Sum(random, {0}), 1e-5));
  Tensor one_thread_sums;
  testing::OnThreads(1, [&] { RoundToBf16WithColumnSums(random, &one_thread_sums); });
  EXPECT_EQ(one_thread_sums.ToFloats(), sums.ToFloats());

  // Rows r = 0..69 of column c hold r + c: column c sums to 69 * 70 / 2 + 70 c.
  std::vector<float> counting(70 * 3);
  for (int64_t r = 0; r < 70; ++r)
    for (int64_t c = 0; c < 3; ++c) counting[r * 3 + c] = static_cast<float>(r + c);
  Tensor counting_sums;
  RoundToBf16WithColumnSums(Tensor::FromFloats(counting, {70, 3}), &counting_sums);
  EXPECT_EQ(counting_sums.ToFloats(), (std::vector<float>{2415, 2485, 2555}));
}

TEST_F(MixedPrecisionTest, ConvertsStridedViewsToContiguousCopies) {
  // [[1, 2, 3], [4, 5, 6]] transposed is [[1, 4], [2, 5], [3, 6]] (all exact in bf16).
  const std::vector<float> values = {1, 2, 3, 4, 5, 6};
  const Tensor x = Tensor::FromFloats(values, {2, 3});
  const Tensor converted = ContiguousAs(Transpose(x, 0, 1), DType::kBF16);
  EXPECT_EQ(converted.shape(), (Shape{3, 2}));
  EXPECT_TRUE(converted.is_contiguous());
  EXPECT_EQ(ContiguousAs(converted, DType::kF32).ToFloats(),
            (std::vector<float>{1, 4, 2, 5, 3, 6}));
}

TEST_F(MixedPrecisionTest, ScopeNestsRestoresAndIsPerThread) {
  EXPECT_EQ(MatmulInputDType(), DType::kF32);
  {
    MixedPrecision bf16(DType::kBF16);
    EXPECT_EQ(MatmulInputDType(), DType::kBF16);
    DType other_thread = DType::kBF16;
    std::thread([&] { other_thread = MatmulInputDType(); }).join();
    EXPECT_EQ(other_thread, DType::kF32);
    {
      MixedPrecision f32(DType::kF32);
      EXPECT_EQ(MatmulInputDType(), DType::kF32);
    }
    EXPECT_EQ(MatmulInputDType(), DType::kBF16);
  }
  EXPECT_EQ(MatmulInputDType(), DType::kF32);
  EXPECT_THROW(MixedPrecision(DType::kI32), Error);
}

// Linear in bf16: y = round(x) round(W)^T + b exactly as a double-accumulated product
// (up to f32 summation error), and visibly different from the f32 result.
TEST_F(MixedPrecisionTest, LinearForwardMultipliesRoundedOperands) {
  const Tensor x = RandomInput({2, 5, 48}, 1), w = RandomInput({24, 48}, 2),
               b = RandomInput({24}, 3);
  const Tensor f32 = Linear(x, w, b);
  Tensor bf16;
  {
    MixedPrecision scope(DType::kBF16);
    bf16 = Linear(x, w, b);
  }
  std::vector<float> expected =
      NaiveProduct(Reshape(Rounded(x), {10, 48}), Transpose(Rounded(w), 0, 1).contiguous());
  const std::vector<float> bias = b.ToFloats();
  for (size_t i = 0; i < expected.size(); ++i) expected[i] += bias[i % 24];
  EXPECT_TRUE(AllClose(bf16, expected, 1e-5));
  EXPECT_FALSE(AllClose(bf16, f32, 1e-5)) << "the inputs were not rounded";
  EXPECT_TRUE(AllClose(bf16, f32, 3e-2)) << "bf16 should stay within a few ulps of 2^-8";
}

// Backward of a bf16 product uses the rounded operands and the rounded incoming gradient:
// with loss = sum(y * r), dX = round(r) round(W) and dW = round(r)^T round(X); the bias
// gradient is the f32 column sum of r. It holds when backward runs outside the scope.
TEST_F(MixedPrecisionTest, LinearBackwardMultipliesRoundedGradient) {
  const Tensor x = RandomInput({12, 40}, 4), w = RandomInput({20, 40}, 5), b = RandomInput({20}, 6);
  const Tensor r = RandomInput({12, 20}, 7).detach();
  Tensor loss;
  {
    MixedPrecision scope(DType::kBF16);
    loss = Sum(Mul(Linear(x, w, b), r));
  }
  loss.backward();
  EXPECT_TRUE(AllClose(x.grad(), NaiveProduct(Rounded(r), Rounded(w)), 1e-5));
  EXPECT_TRUE(
      AllClose(w.grad(), NaiveProduct(Transpose(Rounded(r), 0, 1).contiguous(), Rounded(x)), 1e-5));
  EXPECT_TRUE(AllClose(b.grad(), Sum(r, {0}), 1e-6));
}

// Batched, transposed Matmul (attention's Q K^T shape): forward and both gradients.
TEST_F(MixedPrecisionTest, BatchedTransposedMatmulForwardAndBackward) {
  const Tensor q = RandomInput({3, 7, 16}, 8), k = RandomInput({3, 9, 16}, 9);
  const Tensor r = RandomInput({3, 7, 9}, 10).detach();
  Tensor scores;
  {
    MixedPrecision scope(DType::kBF16);
    scores = Matmul(q, k, false, true);
  }
  Sum(Mul(scores, r)).backward();
  const Tensor rq = Rounded(q), rk = Rounded(k), rr = Rounded(r);
  for (int64_t batch = 0; batch < 3; ++batch) {
    auto slice = [&](const Tensor& t) { return Narrow(t, 0, batch, 1).contiguous().ToFloats(); };
    auto matrix = [&](const Tensor& t, int64_t rows, int64_t cols, bool transpose) {
      const Tensor m = Reshape(Narrow(t, 0, batch, 1).contiguous(), {rows, cols});
      return transpose ? Transpose(m, 0, 1).contiguous() : m;
    };
    EXPECT_TRUE(AllClose(Tensor::FromFloats(slice(scores), {7, 9}),
                         NaiveProduct(matrix(rq, 7, 16, false), matrix(rk, 9, 16, true)), 1e-5));
    // dQ = round(r) round(K), dK = round(r)^T round(Q).
    EXPECT_TRUE(AllClose(Tensor::FromFloats(slice(q.grad()), {7, 16}),
                         NaiveProduct(matrix(rr, 7, 9, false), matrix(rk, 9, 16, false)), 1e-5));
    EXPECT_TRUE(AllClose(Tensor::FromFloats(slice(k.grad()), {9, 16}),
                         NaiveProduct(matrix(rr, 7, 9, true), matrix(rq, 7, 16, false)), 1e-5));
  }
}

// The weight-gradient shape a^T b over a long K, which bf16 cuts into chunks (256 rows for
// a small output, 1024 for a large one) plus a tail: K = 600 is 2 chunks + 88 rows, and
// K = 2100 with a [300, 260] output is 2 chunks + 52 rows.
TEST_F(MixedPrecisionTest, LongReductionMatchesNaiveProductAcrossChunks) {
  struct Case {
    int64_t k, m, n;
    bool transpose_b;
  };
  for (const Case& c :
       {Case{600, 40, 24, false}, Case{600, 40, 24, true}, Case{2100, 300, 260, false}}) {
    const Tensor a = RandomInput({c.k, c.m}, 11).detach();
    const Tensor b = RandomInput(c.transpose_b ? Shape{c.n, c.k} : Shape{c.k, c.n}, 12).detach();
    Tensor product;
    {
      MixedPrecision scope(DType::kBF16);
      product = Matmul(a, b, /*transpose_a=*/true, c.transpose_b);
    }
    const Tensor b_rows = c.transpose_b ? Transpose(Rounded(b), 0, 1).contiguous() : Rounded(b);
    EXPECT_TRUE(
        AllClose(product, NaiveProduct(Transpose(Rounded(a), 0, 1).contiguous(), b_rows), 1e-4))
        << "K " << c.k << ", transpose_b " << c.transpose_b;
  }
}

}  // namespace
}  // namespace attnlab
