// mse_loss: a hand-worked value and gradient, a naive double-precision reference on
// several shapes (including a strided view), gradient checks for both inputs, shape and
// dtype mismatches rejected, and the same loss on 1 and 2 threads.
// The plain gradient checks (and 1-vs-2-thread checks) of these ops are cases in the
// table of op cases, op_cases.cc.
#include <cmath>
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

// mean((p - t)^2) in double, from row-major copies.
double NaiveMse(const Tensor& prediction, const Tensor& target) {
  const std::vector<float> p = prediction.ToFloats(), t = target.ToFloats();
  double total = 0.0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double difference = static_cast<double>(p[i]) - t[i];
    total += difference * difference;
  }
  return p.empty() ? 0.0 : total / static_cast<double>(p.size());
}

TEST(MseLossTest, HandWorkedExample) {
  // p = [1, 2, 3, 4], t = [0, 2, 5, 1]: d = [1, 0, -2, 3], sum d^2 = 1 + 0 + 4 + 9 = 14,
  // mean = 3.5. dL/dp = 2 d / 4 = [0.5, 0, -1, 1.5]; dL/dt = -dL/dp.
  Tensor prediction = Tensor::FromFloats(std::vector<float>{1, 2, 3, 4}, {2, 2});
  Tensor target = Tensor::FromFloats(std::vector<float>{0, 2, 5, 1}, {2, 2});
  prediction.set_requires_grad(true);
  target.set_requires_grad(true);
  const Tensor loss = MseLoss(prediction, target);
  EXPECT_EQ(loss.shape(), Shape{});
  EXPECT_FLOAT_EQ(loss.item(), 3.5f);
  loss.backward();
  EXPECT_TRUE(AllClose(prediction.grad(), {0.5f, 0.0f, -1.0f, 1.5f}, 1e-7));
  EXPECT_TRUE(AllClose(target.grad(), {-0.5f, 0.0f, 1.0f, -1.5f}, 1e-7));
}

TEST(MseLossTest, ForwardMatchesNaiveLoop) {
  for (const Shape& shape : {Shape{7}, Shape{3, 5}, Shape{2, 3, 4}, Shape{1, 1}}) {
    const Tensor prediction = RandomInput(shape, 1, -2.0f, 2.0f);
    const Tensor target = RandomInput(shape, 2, -2.0f, 2.0f);
    EXPECT_NEAR(MseLoss(prediction, target).item(), NaiveMse(prediction, target), 1e-6)
        << prediction.Describe();
  }
}

TEST(MseLossTest, StridedInputsAreRead) {
  const Tensor wide = RandomInput({4, 9}, 3);
  const Tensor target = RandomInput({4, 3}, 4);
  const Tensor window = wide.narrow(1, 2, 3);  // a strided view
  EXPECT_NEAR(MseLoss(window, target).item(), NaiveMse(window.contiguous(), target), 1e-6);
  EXPECT_TRUE(
      GradCheck([](const std::vector<Tensor>& x) { return MseLoss(x[0].narrow(1, 2, 3), x[1]); },
                {RandomInput({4, 9}, 5), RandomInput({4, 3}, 6)}));
}

TEST(MseLossTest, TargetWithoutGradientGetsNone) {
  Tensor prediction = RandomInput({5}, 11);
  const Tensor target = RandomInput({5}, 12).detach();
  MseLoss(prediction, target).backward();
  EXPECT_TRUE(prediction.grad().defined());
  EXPECT_TRUE(GradCheck([&](const std::vector<Tensor>& x) { return MseLoss(x[0], target); },
                        {RandomInput({5}, 13)}));
}

TEST(MseLossTest, EmptyInputGivesZero) {
  EXPECT_EQ(MseLoss(Tensor::Zeros({0, 3}), Tensor::Zeros({0, 3})).item(), 0.0f);
}

TEST(MseLossTest, MismatchedShapesThrowWithBothShapes) {
  try {
    MseLoss(Tensor::Zeros({2, 3}), Tensor::Zeros({3, 2}));
    FAIL() << "expected attnlab::Error";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("mse_loss"), std::string::npos) << message;
    EXPECT_NE(message.find("f32[2, 3]"), std::string::npos) << message;
    EXPECT_NE(message.find("f32[3, 2]"), std::string::npos) << message;
  }
  EXPECT_THROW(MseLoss(Tensor::Zeros({2}), Tensor::Zeros({2}, DType::kI32)), Error);
}

TEST(MseLossTest, SameResultOnOneAndTwoThreads) {
  // Large enough for several chunks, so the two-thread run really splits the sum.
  const Tensor prediction = RandomInput({300, 200}, 14);
  const Tensor target = RandomInput({300, 200}, 15);
  const auto loss = [&] { return MseLoss(prediction, target).item(); };
  const float one_thread = testing::OnThreads(1, loss);
  const float two_threads = testing::OnThreads(2, loss);
  EXPECT_EQ(one_thread, two_threads);
  EXPECT_NEAR(one_thread, NaiveMse(prediction, target), 1e-6);
}

}  // namespace
}  // namespace attnlab
