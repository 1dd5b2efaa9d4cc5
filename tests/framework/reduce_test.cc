// Reductions: sum and mean over one, several or all dims with keepdim both ways, max
// (gradient to the first maximal element), argmax and SumToShape, each against a naive
// loop, with gradient checks on tie-free inputs.
// The plain gradient checks (and 1-vs-2-thread checks) of these ops are cases in the
// table of op cases, op_cases.cc.
#include <algorithm>
#include <numeric>
#include <vector>

#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "gtest/gtest.h"
#include "tests/support/bit_identical.h"
#include "tests/support/gradcheck.h"
#include "tests/support/row_major.h"
#include "tests/support/thread_counts.h"

namespace attnlab {
namespace {

using testing::AllClose;
using testing::Coordinates;
using testing::GradCheck;
using testing::RandomInput;

struct NaiveResult {
  Shape shape;
  std::vector<float> values;
};

std::vector<bool> ReducedMask(int64_t rank, const std::vector<int64_t>& dims) {
  std::vector<bool> reduced(rank, dims.empty());
  for (int64_t dim : dims) reduced[dim < 0 ? dim + rank : dim] = true;
  return reduced;
}

// Sum (or mean) over `dims` by visiting every element and adding it to its output slot.
NaiveResult NaiveSum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, bool mean) {
  const std::vector<bool> reduced = ReducedMask(x.rank(), dims);
  NaiveResult result;
  int64_t reduced_count = 1;
  for (int64_t d = 0; d < x.rank(); ++d) {
    if (!reduced[d]) {
      result.shape.push_back(x.shape()[d]);
    } else if (keepdim) {
      result.shape.push_back(1);
    }
    if (reduced[d]) reduced_count *= x.shape()[d];
  }
  std::vector<double> totals(NumElements(result.shape), 0.0);
  const std::vector<float> values = x.ToFloats();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const Shape coords = Coordinates(x.shape(), i);
    int64_t out_offset = 0;
    for (int64_t d = 0; d < x.rank(); ++d) {
      if (!reduced[d]) out_offset = out_offset * x.shape()[d] + coords[d];
    }
    totals[out_offset] += values[i];
  }
  for (double total : totals) {
    result.values.push_back(static_cast<float>(mean ? total / reduced_count : total));
  }
  return result;
}

struct ReduceCase {
  Shape shape;
  std::vector<int64_t> dims;
};

class SumMeanTest : public ::testing::TestWithParam<ReduceCase> {};

TEST_P(SumMeanTest, ForwardMatchesNaiveLoop) {
  const ReduceCase& c = GetParam();
  const Tensor x = RandomInput(c.shape, 1);
  for (bool keepdim : {false, true}) {
    SCOPED_TRACE(keepdim ? "keepdim" : "no keepdim");
    const NaiveResult sum = NaiveSum(x, c.dims, keepdim, /*mean=*/false);
    const Tensor sum_out = Sum(x, c.dims, keepdim);
    EXPECT_EQ(sum_out.shape(), sum.shape);
    EXPECT_TRUE(AllClose(sum_out, sum.values, 1e-5));
    const NaiveResult mean = NaiveSum(x, c.dims, keepdim, /*mean=*/true);
    const Tensor mean_out = Mean(x, c.dims, keepdim);
    EXPECT_EQ(mean_out.shape(), mean.shape);
    EXPECT_TRUE(AllClose(mean_out, mean.values, 1e-5));
  }
}

INSTANTIATE_TEST_SUITE_P(Dims, SumMeanTest,
                         ::testing::Values(ReduceCase{{2, 3, 4}, {}},      // all dims
                                           ReduceCase{{2, 3, 4}, {0}},     // leading
                                           ReduceCase{{2, 3, 4}, {1}},     // middle
                                           ReduceCase{{2, 3, 4}, {2}},     // last (contiguous rows)
                                           ReduceCase{{2, 3, 4}, {-1}},    // negative
                                           ReduceCase{{2, 3, 4}, {0, 2}},  // several
                                           ReduceCase{{2, 3, 4}, {2, 0, 2}},  // unsorted, repeated
                                           ReduceCase{{2, 3, 4}, {0, 1, 2}},  // all, listed
                                           ReduceCase{{5}, {0}},
                                           ReduceCase{{1, 7, 1}, {1}},  // size-1 neighbours
                                           ReduceCase{{3, 1, 5}, {1}},  // size-1 reduced dim
                                           ReduceCase{{}, {}}));        // a scalar

TEST(SumTest, StridedInput) {
  const Tensor wide = RandomInput({4, 7, 3}, 4);
  const Tensor window = wide.narrow(1, 2, 4);
  const NaiveResult expected = NaiveSum(window, {1}, false, false);
  EXPECT_TRUE(AllClose(Sum(window, {1}), expected.values, 1e-5));
  EXPECT_TRUE(GradCheck(
      [](const std::vector<Tensor>& x) {
        return Sum(x[0].narrow(1, 2, 4), {0, 2});
      },
      {RandomInput({4, 7, 3}, 5)}));
}

TEST(SumTest, SameResultOnOneAndTwoThreads) {
  // Large enough for several chunks in both kernels (inner == 1 and inner > 1).
  const Tensor x = RandomInput({513, 300}, 6);
  const auto rows = [&] { return Sum(x, {1}).ToFloats(); };
  const auto columns = [&] { return Sum(x, {0}).ToFloats(); };
  EXPECT_TRUE(testing::BitIdentical(testing::OnThreads(1, rows), testing::OnThreads(2, rows)));
  EXPECT_TRUE(
      testing::BitIdentical(testing::OnThreads(1, columns), testing::OnThreads(2, columns)));
}

TEST(SumTest, BadDimIsAnError) {
  EXPECT_THROW(Sum(Tensor::Zeros({2, 3}), {2}), Error);
  EXPECT_THROW(Mean(Tensor::Zeros({2, 3}), {-3}), Error);
}

// ---- Max and argmax ------------------------------------------------------------------

// Max along `dim` and the index of its first occurrence, by a direct scan.
void NaiveMax(const Tensor& x, int64_t dim, std::vector<float>& values,
              std::vector<int32_t>& indices) {
  const std::vector<float> data = x.ToFloats();
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= x.shape()[d];
  for (int64_t d = dim + 1; d < x.rank(); ++d) inner *= x.shape()[d];
  const int64_t extent = x.shape()[dim];
  values.clear();
  indices.clear();
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      int32_t best = 0;
      for (int64_t r = 1; r < extent; ++r) {
        if (data[(o * extent + r) * inner + i] > data[(o * extent + best) * inner + i]) best = r;
      }
      values.push_back(data[(o * extent + best) * inner + i]);
      indices.push_back(best);
    }
  }
}

TEST(MaxTest, ForwardAndArgmaxMatchNaiveScan) {
  const Tensor x = RandomInput({3, 4, 5}, 10);
  for (int64_t dim = 0; dim < 3; ++dim) {
    SCOPED_TRACE(dim);
    std::vector<float> values;
    std::vector<int32_t> indices;
    NaiveMax(x, dim, values, indices);
    Shape reduced = x.shape(), kept = x.shape();
    reduced.erase(reduced.begin() + dim);
    kept[dim] = 1;
    EXPECT_EQ(Max(x, dim).shape(), reduced);
    EXPECT_EQ(Max(x, dim, /*keepdim=*/true).shape(), kept);
    EXPECT_TRUE(AllClose(Max(x, dim), values, 0.0));
    EXPECT_TRUE(AllClose(Max(x, dim - 3, true), values, 0.0));  // negative dim
    const Tensor argmax = Argmax(x, dim);
    EXPECT_EQ(argmax.dtype(), DType::kI32);
    EXPECT_EQ(argmax.shape(), reduced);
    EXPECT_EQ(argmax.ToInts(), indices);
    EXPECT_EQ(Argmax(x, dim, true).shape(), kept);
  }
}

TEST(MaxTest, TiesGoToTheFirstMaximalElement) {
  const std::vector<float> values = {1, 3, 3, 2, 5, 5, 1, 0};
  Tensor x = Tensor::FromFloats(values, {2, 4});
  x.set_requires_grad(true);
  const Tensor max = Max(x, 1);
  EXPECT_TRUE(AllClose(max, {3.0f, 5.0f}, 0.0));
  EXPECT_EQ(Argmax(x, 1).ToInts(), (std::vector<int32_t>{1, 0}));
  Sum(Mul(max, Tensor::FromFloats(std::vector<float>{2.0f, 7.0f}, {2}))).backward();
  EXPECT_TRUE(AllClose(x.grad(), {0, 2, 0, 0, 7, 0, 0, 0}, 0.0));
}

TEST(MaxTest, EmptyDimIsAnError) {
  EXPECT_THROW(Max(Tensor::Zeros({2, 0}), 1), Error);
  EXPECT_THROW(Argmax(Tensor::Zeros({2, 3}), 2), Error);
}

// ---- SumToShape ----------------------------------------------------------------------

TEST(SumToShapeTest, ReversesBroadcasting) {
  const Tensor x = RandomInput({2, 3, 4}, 20);
  // [2, 3, 4] -> [3, 1]: the leading dim is dropped, the last summed to size 1.
  const Tensor to_column = SumToShape(x, {3, 1});
  EXPECT_EQ(to_column.shape(), (Shape{3, 1}));
  EXPECT_TRUE(AllClose(to_column, NaiveSum(x, {0, 2}, false, false).values, 1e-5));
  const Tensor to_row = SumToShape(x, {4});
  EXPECT_EQ(to_row.shape(), (Shape{4}));
  EXPECT_TRUE(AllClose(to_row, NaiveSum(x, {0, 1}, false, false).values, 1e-5));
  const Tensor to_middle = SumToShape(x, {1, 3, 1});
  EXPECT_EQ(to_middle.shape(), (Shape{1, 3, 1}));
  EXPECT_TRUE(AllClose(to_middle, NaiveSum(x, {0, 2}, false, false).values, 1e-5));
  const Tensor to_scalar = SumToShape(x, {});
  EXPECT_EQ(to_scalar.shape(), Shape{});
  EXPECT_TRUE(AllClose(to_scalar, NaiveSum(x, {}, false, false).values, 1e-5));
  // Already the right shape: returned as is.
  EXPECT_EQ(SumToShape(x, {2, 3, 4}).impl(), x.impl());
}

TEST(SumToShapeTest, IncompatibleShapesAreErrors) {
  const Tensor x = Tensor::Zeros({2, 3});
  EXPECT_THROW(SumToShape(x, {4}), Error);
  EXPECT_THROW(SumToShape(x, {2, 2}), Error);
  EXPECT_THROW(SumToShape(x, {1, 2, 3}), Error);
}

}  // namespace
}  // namespace attnlab
