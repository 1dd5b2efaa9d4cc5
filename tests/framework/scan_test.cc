// cumsum: forward against a naive loop in double along every dim (first, middle, last,
// negative), strided inputs, gradients by finite differences, the backward as an
// explicit reverse cumulative sum, thread-count independence and the errors.
// The plain gradient checks (and 1-vs-2-thread checks) of these ops are cases in the
// table of op cases, op_cases.cc.
#include <algorithm>
#include <string>
#include <vector>

#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "gtest/gtest.h"
#include "tests/support/gradcheck.h"
#include "tests/support/thread_counts.h"

namespace attnlab {
namespace {

using testing::AllClose;
using testing::GradCheck;
using testing::RandomInput;

// out[..., i, ...] = sum_{j <= i} x[..., j, ...] along `dim` (non-negative), by indexing.
std::vector<float> NaiveCumSum(const Tensor& x, int64_t dim) {
  const std::vector<float> values = x.ToFloats();
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= x.size(d);
  for (int64_t d = dim + 1; d < x.rank(); ++d) inner *= x.size(d);
  const int64_t length = x.size(dim);
  std::vector<float> out(values.size());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t c = 0; c < inner; ++c) {
      double running = 0.0;
      for (int64_t i = 0; i < length; ++i) {
        const int64_t index = (o * length + i) * inner + c;
        running += values[index];
        out[index] = static_cast<float>(running);
      }
    }
  }
  return out;
}

struct CumSumCase {
  Shape shape;
  int64_t dim;
};

class CumSumTest : public ::testing::TestWithParam<CumSumCase> {};

TEST_P(CumSumTest, ForwardMatchesNaiveLoop) {
  const CumSumCase& c = GetParam();
  const Tensor x = RandomInput(c.shape, 1);
  const int64_t dim = c.dim < 0 ? c.dim + x.rank() : c.dim;
  const Tensor out = CumSum(x, c.dim);
  ASSERT_EQ(out.shape(), x.shape());
  EXPECT_TRUE(AllClose(out, NaiveCumSum(x, dim), 1e-5));
}

INSTANTIATE_TEST_SUITE_P(Shapes, CumSumTest,
                         ::testing::Values(CumSumCase{{7}, 0}, CumSumCase{{1}, 0},
                                           CumSumCase{{4, 5}, 0}, CumSumCase{{4, 5}, 1},
                                           CumSumCase{{2, 3, 4, 5}, 2}, CumSumCase{{2, 3, 4}, -1},
                                           CumSumCase{{2, 6, 3}, -2}));

TEST(CumSumTest, BackwardIsTheReverseCumulativeSum) {
  const Tensor x = RandomInput({2, 5, 3}, 3);
  const Tensor grad_output = RandomInput({2, 5, 3}, 4).detach();
  Sum(Mul(CumSum(x, 1), grad_output)).backward();
  // dL/dx[b, j, c] = sum_{i >= j} grad_output[b, i, c].
  const std::vector<float> g = grad_output.ToFloats();
  std::vector<float> expected(g.size(), 0.0f);
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t c = 0; c < 3; ++c) {
      double running = 0.0;
      for (int64_t j = 4; j >= 0; --j) {
        running += g[(b * 5 + j) * 3 + c];
        expected[(b * 5 + j) * 3 + c] = static_cast<float>(running);
      }
    }
  }
  EXPECT_TRUE(AllClose(x.grad(), expected, 1e-5));
}

TEST(CumSumTest, StridedInputFromTranspose) {
  const Tensor x = RandomInput({4, 6}, 5);
  const Tensor transposed = x.transpose(0, 1);  // [6, 4], strided
  EXPECT_TRUE(AllClose(CumSum(transposed, 0), NaiveCumSum(transposed.contiguous(), 0), 1e-5));
  EXPECT_TRUE(
      GradCheck([](const std::vector<Tensor>& in) { return CumSum(in[0].transpose(0, 1), 1); },
                {RandomInput({4, 6}, 6)}));
}

TEST(CumSumTest, ResultDoesNotDependOnThreadCount) {
  // Large enough to be split over threads: [3, 2000, 300] scanned over dim 1 and dim 2.
  const Tensor x = RandomInput({3, 2000, 300}, 9).detach();
  const testing::ThreadCountRestorer restore_threads;
  SetNumThreads(1);
  const std::vector<float> single_dim1 = CumSum(x, 1).ToFloats();
  const std::vector<float> single_dim2 = CumSum(x, 2).ToFloats();
  SetNumThreads(2);
  EXPECT_EQ(CumSum(x, 1).ToFloats(), single_dim1);
  EXPECT_EQ(CumSum(x, 2).ToFloats(), single_dim2);
}

TEST(CumSumTest, EmptyDimensionGivesEmptyOutput) {
  const Tensor out = CumSum(Tensor::Zeros({3, 0, 2}), 1);
  EXPECT_EQ(out.shape(), (Shape{3, 0, 2}));
}

TEST(CumSumTest, BadDimAndDtypeThrow) {
  EXPECT_THROW(CumSum(Tensor::Zeros({2, 3}), 2), Error);
  EXPECT_THROW(CumSum(Tensor::Zeros({2, 3}), -3), Error);
  EXPECT_THROW(CumSum(Tensor::Zeros({2}, DType::kI32), 0), Error);
  EXPECT_THROW(CumSum(Tensor::Scalar(1.0f), 0), Error);
}

}  // namespace
}  // namespace attnlab
