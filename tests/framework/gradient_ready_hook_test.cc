// autograd's GradientReadyHook: called once per leaf that needs a gradient, when no
// later op of the backward can add to that leaf's gradient.
#include <vector>

#include "framework/autograd/node.h"
#include "framework/ops/ops.h"
#include "gtest/gtest.h"

namespace attnlab {
namespace {

TEST(GradientReadyHook, FiresOnceForEachLeafAfterItsLastConsumer) {
  // loss = sum(tanh(x * w1) * w2) + sum(x * w1): w1 is read by two ops; b is read by none.
  const Tensor x = Tensor::FromFloats(std::vector<float>{0.5f, -1.0f}, {2});
  Tensor w1 = Tensor::FromFloats(std::vector<float>{2.0f, 3.0f}, {2}).set_requires_grad(true);
  Tensor w2 = Tensor::FromFloats(std::vector<float>{-1.0f, 1.5f}, {2}).set_requires_grad(true);
  Tensor b = Tensor::FromFloats(std::vector<float>{1.0f}, {1}).set_requires_grad(true);
  const Tensor xw1 = Mul(x, w1);
  const Tensor loss = Add(Sum(Mul(Tanh(xw1), w2)), Sum(xw1));

  std::vector<const TensorImpl*> ready;
  std::vector<std::vector<float>> gradient_when_ready;
  autograd::RunBackward(loss, Tensor::Scalar(1.0f), [&](TensorImpl& leaf) {
    ready.push_back(&leaf);
    gradient_when_ready.push_back(Tensor(leaf.grad).ToFloats());
  });
  ASSERT_EQ(ready.size(), 2u);     // w1 and w2; b is not in the graph
  EXPECT_EQ(ready[0], w2.impl());  // w2's only consumer runs before xw1's node
  EXPECT_EQ(ready[1], w1.impl());
  // When the hook ran, each gradient was already the final one.
  EXPECT_EQ(gradient_when_ready[0], w2.grad().ToFloats());
  EXPECT_EQ(gradient_when_ready[1], w1.grad().ToFloats());
  EXPECT_FALSE(b.grad().defined());
}

TEST(GradientReadyHook, FiresForALeafThatIsTheRoot) {
  Tensor w = Tensor::Scalar(2.0f).set_requires_grad(true);
  int calls = 0;
  autograd::RunBackward(w, Tensor::Scalar(1.0f), [&](TensorImpl& leaf) {
    EXPECT_EQ(&leaf, w.impl());
    ++calls;
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(w.grad().item(), 1.0f);
}

TEST(GradientReadyHook, LeafReadTwiceByOneOpFiresOnce) {
  Tensor w = Tensor::FromFloats(std::vector<float>{3.0f}, {1}).set_requires_grad(true);
  int calls = 0;
  autograd::RunBackward(Sum(Mul(w, w)), Tensor::Scalar(1.0f), [&](TensorImpl&) { ++calls; });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(w.grad().ToFloats(), std::vector<float>{6.0f});
}

}  // namespace
}  // namespace attnlab
