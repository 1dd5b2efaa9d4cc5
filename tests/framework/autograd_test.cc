// The autograd engine on small graphs with hand-computed gradients: accumulation into
// shared leaves, diamonds, views, grad mode, zero_grad, detach, repeated and invalid
// backward calls, and the release of saved buffers once backward has run.
#include <string>
#include <vector>

#include "framework/autograd/grad_mode.h"
#include "framework/autograd/node.h"
#include "framework/ops/ops.h"
#include "framework/tensor/allocator.h"
#include "framework/tensor/tensor.h"
#include "gtest/gtest.h"

namespace attnlab {
namespace {

// A leaf that requires grad, holding `values` in `shape`.
Tensor Leaf(const std::vector<float>& values, const Shape& shape) {
  Tensor leaf = Tensor::FromFloats(values, shape);
  leaf.set_requires_grad(true);
  return leaf;
}

Tensor Constant(const std::vector<float>& values, const Shape& shape) {
  return Tensor::FromFloats(values, shape);
}

size_t CurrentBytes() { return CachingAllocator::Global().Stats().current_bytes; }

TEST(AutogradTest, PolynomialGradientIsExact) {
  // d(x*x + 3x)/dx = 2x + 3 = 7 at x = 2.
  Tensor x = Leaf({2.0f}, {});
  const Tensor y = Add(Mul(x, x), MulScalar(x, 3.0f));
  EXPECT_EQ(y.item(), 10.0f);
  y.backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().shape(), Shape{});
  EXPECT_EQ(x.grad().item(), 7.0f);
}

TEST(AutogradTest, SharedParameterUsedTwiceAccumulatesBothUses) {
  // loss = sum(w * a) + sum(w * b), so dloss/dw = a + b.
  Tensor w = Leaf({1.0f, 2.0f}, {2});
  const Tensor a = Constant({3.0f, 4.0f}, {2});
  const Tensor b = Constant({5.0f, 6.0f}, {2});
  const Tensor loss = Add(Sum(Mul(w, a)), Sum(Mul(w, b)));
  EXPECT_EQ(loss.item(), 1 * 3 + 2 * 4 + 1 * 5 + 2 * 6);
  loss.backward();
  EXPECT_EQ(w.grad().ToFloats(), (std::vector<float>{8.0f, 10.0f}));
}

TEST(AutogradTest, SharedWeightInTwoMatmulsAccumulates) {
  // y = (x W) W with 1x1 matrices: y = x W^2, dy/dW = 2 x W = 12 at x = 2, W = 3;
  // dy/dx = W^2 = 9.
  Tensor x = Leaf({2.0f}, {1, 1});
  Tensor weight = Leaf({3.0f}, {1, 1});
  const Tensor y = Matmul(Matmul(x, weight), weight);
  EXPECT_EQ(y.item(), 18.0f);
  Sum(y).backward();
  EXPECT_EQ(weight.grad().item(), 12.0f);
  EXPECT_EQ(x.grad().item(), 9.0f);
}

TEST(AutogradTest, DiamondGraphRunsTheSharedNodeOnceWithBothGradients) {
  // h = w + 1 (an interior node), a = 2h, b = h*h, loss = sum(a + b).
  // dloss/dh = 2 + 2h; with w = [1, 2], h = [2, 3] and dloss/dw = [6, 8].
  Tensor w = Leaf({1.0f, 2.0f}, {2});
  const Tensor h = AddScalar(w, 1.0f);
  const Tensor a = MulScalar(h, 2.0f);
  const Tensor b = Mul(h, h);
  const Tensor loss = Sum(Add(a, b));
  EXPECT_EQ(loss.item(), (4 + 4) + (6 + 9));
  loss.backward();
  EXPECT_EQ(w.grad().ToFloats(), (std::vector<float>{6.0f, 8.0f}));
}

TEST(AutogradTest, GradientFlowsThroughReshapeAndNarrow) {
  // w: [2, 3] = 0..5; rows 1..2 of w.reshape({3, 2}) are elements 2..5 of w.
  Tensor w = Leaf({0, 1, 2, 3, 4, 5}, {2, 3});
  const Tensor window = w.reshape({3, 2}).narrow(0, 1, 2);
  const Tensor coefficients = Constant({1, 2, 3, 4}, {2, 2});
  const Tensor loss = Sum(Mul(window, coefficients));
  EXPECT_EQ(loss.item(), 2 * 1 + 3 * 2 + 4 * 3 + 5 * 4);
  loss.backward();
  EXPECT_EQ(w.grad().shape(), (Shape{2, 3}));
  EXPECT_EQ(w.grad().ToFloats(), (std::vector<float>{0, 0, 1, 2, 3, 4}));
}

TEST(AutogradTest, GradientFlowsThroughAStridedNarrow) {
  // Columns 1..2 of a [2, 3] leaf: a non-contiguous view.
  Tensor w = Leaf({0, 1, 2, 3, 4, 5}, {2, 3});
  const Tensor columns = w.narrow(1, 1, 2);
  ASSERT_FALSE(columns.is_contiguous());
  const Tensor loss = Sum(MulScalar(columns, 5.0f));
  EXPECT_EQ(loss.item(), 5.0f * (1 + 2 + 4 + 5));
  loss.backward();
  EXPECT_EQ(w.grad().ToFloats(), (std::vector<float>{0, 5, 5, 0, 5, 5}));
}

TEST(AutogradTest, GradientFlowsThroughTransposeIntoMatmul) {
  // loss = sum(w^T @ c) for w: [2, 2] = [[1, 2], [3, 4]], c = [[1], [10]]:
  // dloss/dw[i][j] = c[i] (row j of w^T is column j of w, and it meets c[i] as w[i][j]).
  Tensor w = Leaf({1, 2, 3, 4}, {2, 2});
  const Tensor c = Constant({1, 10}, {2, 1});
  const Tensor loss = Sum(Matmul(w.transpose(0, 1), c));
  EXPECT_EQ(loss.item(), (1 + 30) + (2 + 40));
  loss.backward();
  EXPECT_EQ(w.grad().ToFloats(), (std::vector<float>{1, 1, 10, 10}));
}

TEST(AutogradTest, NoGradGuardRecordsNothing) {
  Tensor x = Leaf({2.0f}, {});
  ASSERT_TRUE(GradMode::IsEnabled());
  {
    NoGradGuard no_grad;
    EXPECT_FALSE(GradMode::IsEnabled());
    const Tensor y = Add(Mul(x, x), MulScalar(x, 3.0f));
    EXPECT_EQ(y.item(), 10.0f);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
    const Tensor view = x.reshape({1});
    EXPECT_FALSE(view.requires_grad());
    EXPECT_EQ(view.grad_fn(), nullptr);
    {
      NoGradGuard nested;
      EXPECT_FALSE(GradMode::IsEnabled());
    }
    EXPECT_FALSE(GradMode::IsEnabled());  // the nested guard restores "off", not "on"
  }
  EXPECT_TRUE(GradMode::IsEnabled());
  const Tensor recorded = Mul(x, x);
  EXPECT_TRUE(recorded.requires_grad());
  ASSERT_NE(recorded.grad_fn(), nullptr);
  EXPECT_EQ(OpName(recorded.grad_fn()->op), "mul");
}

TEST(AutogradTest, BackwardOfAGraphBuiltWithoutGradThrows) {
  Tensor x = Leaf({2.0f}, {});
  Tensor y;
  {
    NoGradGuard no_grad;
    y = Mul(x, x);
  }
  try {
    y.backward();
    FAIL() << "expected attnlab::Error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("does not require grad"), std::string::npos)
        << error.what();
  }
}

TEST(AutogradTest, OpsOnTensorsWithoutGradRecordNothing) {
  const Tensor a = Constant({1.0f, 2.0f}, {2});
  const Tensor product = Mul(a, a);
  EXPECT_FALSE(product.requires_grad());
  EXPECT_EQ(product.grad_fn(), nullptr);
}

TEST(AutogradTest, ZeroGradForgetsTheAccumulatedGradient) {
  Tensor x = Leaf({2.0f}, {});
  Mul(x, x).backward();
  EXPECT_EQ(x.grad().item(), 4.0f);
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  MulScalar(x, 3.0f).backward();
  EXPECT_EQ(x.grad().item(), 3.0f);  // not 4 + 3
}

TEST(AutogradTest, DetachCutsTheGraph) {
  // y = detach(x) * x: only the second factor carries a gradient, dy/dx = x = 2.
  Tensor x = Leaf({2.0f}, {});
  const Tensor detached = x.detach();
  EXPECT_FALSE(detached.requires_grad());
  EXPECT_EQ(detached.raw_data(), x.raw_data());
  const Tensor y = Mul(detached, x);
  y.backward();
  EXPECT_EQ(x.grad().item(), 2.0f);

  // A detached interior result is a new leaf: nothing flows back past it.
  Tensor w = Leaf({3.0f}, {});
  const Tensor cut = MulScalar(w, 2.0f).detach();
  EXPECT_EQ(cut.grad_fn(), nullptr);
  EXPECT_FALSE(MulScalar(cut, 5.0f).requires_grad());
}

TEST(AutogradTest, GradientAccumulatesAcrossBackwardCallsOnTwoGraphs) {
  // First graph: 3x (gradient 3). Second graph: x*x (gradient 2x = 4). Sum: 7.
  Tensor x = Leaf({2.0f}, {});
  MulScalar(x, 3.0f).backward();
  EXPECT_EQ(x.grad().item(), 3.0f);
  Mul(x, x).backward();
  EXPECT_EQ(x.grad().item(), 7.0f);
}

TEST(AutogradTest, LeafGradientIsItsOwnStorage) {
  // The first gradient reaching a leaf is copied, so accumulating in place later cannot
  // write into a buffer some other tensor still uses.
  Tensor x = Leaf({1.0f, 2.0f}, {2});
  const Tensor loss = Sum(x);
  loss.backward();
  const Tensor first_grad = x.grad();
  EXPECT_EQ(first_grad.ToFloats(), (std::vector<float>{1.0f, 1.0f}));
  Sum(MulScalar(x, 2.0f)).backward();
  EXPECT_EQ(x.grad().ToFloats(), (std::vector<float>{3.0f, 3.0f}));
  EXPECT_EQ(x.grad().impl(), first_grad.impl());  // accumulated in place
}

TEST(AutogradTest, BackwardTwiceOnTheSameGraphThrowsAClearError) {
  Tensor x = Leaf({2.0f}, {});
  const Tensor y = Sum(Mul(x, x));
  y.backward();
  EXPECT_EQ(x.grad().item(), 4.0f);
  try {
    y.backward();
    FAIL() << "expected attnlab::Error";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("already used by an earlier backward()"), std::string::npos) << message;
    EXPECT_NE(message.find("'sum'"), std::string::npos) << message;
    EXPECT_NE(message.find("run the forward pass again"), std::string::npos) << message;
  }
  EXPECT_EQ(x.grad().item(), 4.0f);  // the failed call added nothing
}

TEST(AutogradTest, BackwardThroughAnAlreadyReleasedSubgraphThrows) {
  // z shares the interior node h with y; after y.backward() that node is released.
  Tensor x = Leaf({2.0f}, {});
  const Tensor h = Mul(x, x);
  Sum(h).backward();
  const Tensor z = Sum(MulScalar(h, 3.0f));
  EXPECT_THROW(z.backward(), Error);
}

TEST(AutogradTest, BackwardOnANonScalarThrows) {
  Tensor x = Leaf({1.0f, 2.0f, 3.0f}, {3});
  const Tensor y = MulScalar(x, 2.0f);
  try {
    y.backward();
    FAIL() << "expected attnlab::Error";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("f32[3]"), std::string::npos) << message;
    EXPECT_NE(message.find("one-element tensor"), std::string::npos) << message;
  }
  EXPECT_FALSE(x.grad().defined());
}

TEST(AutogradTest, BackwardOnALeafSeedsItsGradient) {
  Tensor x = Leaf({5.0f}, {1});
  x.backward();
  EXPECT_EQ(x.grad().ToFloats(), (std::vector<float>{1.0f}));
}

TEST(AutogradTest, SavedBuffersAreFreedByBackward) {
  // A small two-layer computation whose backward saves inputs of several ops.
  Tensor x = Leaf(std::vector<float>(64 * 32, 0.5f), {64, 32});
  Tensor weight = Leaf(std::vector<float>(16 * 32, 0.25f), {16, 32});
  Tensor bias = Leaf(std::vector<float>(16, 1.0f), {16});
  auto forward = [&] {
    const Tensor hidden = Linear(x, weight, bias);       // [64, 16], all 5
    const Tensor squared = Mul(hidden, hidden);          // saves hidden twice
    return Mean(Div(squared, AddScalar(hidden, 1.0f)));  // saves squared's divisor
  };
  // The first backward allocates each leaf's gradient; take the baseline after it.
  forward().backward();
  const size_t baseline = CurrentBytes();
  {
    const Tensor loss = forward();
    EXPECT_FLOAT_EQ(loss.item(), 25.0f / 6.0f);
    EXPECT_GT(CurrentBytes(), baseline + CachingAllocator::SizeClass(64 * 16 * 4));
    loss.backward();
    // Only the loss itself is still alive: every saved tensor and gradient is gone,
    // and the leaf gradients were accumulated in place.
    EXPECT_EQ(CurrentBytes(), baseline + CachingAllocator::SizeClass(sizeof(float)));
  }
  EXPECT_EQ(CurrentBytes(), baseline);
  // d(h^2 / (h + 1))/dh = (h^2 + 2h) / (h + 1)^2 = 35/36 at h = 5; the mean divides by
  // 64 * 16 and the bias sums 64 rows: 35/576 per backward, two backward calls.
  for (float value : bias.grad().ToFloats()) EXPECT_NEAR(value, 2.0 * 35.0 / 576.0, 1e-6);
}

TEST(AutogradTest, FirstBackwardLeavesOnlyTheLeafGradientsAllocated) {
  Tensor w = Leaf(std::vector<float>(1000, 2.0f), {1000});
  const size_t before = CurrentBytes();
  {
    const Tensor loss = Sum(Mul(AddScalar(w, 1.0f), w));
    loss.backward();
  }
  // d(sum((w + 1) * w))/dw = 2w + 1 = 5.
  EXPECT_EQ(w.grad().ToFloats(), std::vector<float>(1000, 5.0f));
  EXPECT_EQ(CurrentBytes(), before + CachingAllocator::SizeClass(1000 * sizeof(float)));
}

TEST(AutogradTest, DroppingAGraphWithoutBackwardFreesItsBuffers) {
  Tensor w = Leaf(std::vector<float>(1000, 2.0f), {1000});
  const size_t before = CurrentBytes();
  { const Tensor loss = Sum(Mul(AddScalar(w, 1.0f), w)); }
  EXPECT_EQ(CurrentBytes(), before);
  EXPECT_FALSE(w.grad().defined());
}

}  // namespace
}  // namespace attnlab
