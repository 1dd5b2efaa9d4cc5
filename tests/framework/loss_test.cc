// Cross-entropy: hand-worked values with and without label smoothing, a naive
// log-softmax reference, ignore_index rows left out of the mean, bad targets rejected,
// and the same loss on 1 and 2 threads.
// The plain gradient checks (and 1-vs-2-thread checks) of these ops are cases in the
// table of op cases, op_cases.cc.
#include <cmath>
#include <string>
#include <vector>

#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "framework/tensor/allocator.h"
#include "gtest/gtest.h"
#include "tests/support/bit_identical.h"
#include "tests/support/gradcheck.h"
#include "tests/support/thread_counts.h"

namespace attnlab {
namespace {

using testing::AllClose;
using testing::RandomInput;

Tensor Ints(const std::vector<int32_t>& values, const Shape& shape) {
  return Tensor::FromInts(values, shape);
}

// Mean over counted rows of -sum_v q[v] * log_softmax(x)[v], all in double.
double NaiveCrossEntropy(const Tensor& logits, const std::vector<int32_t>& targets,
                         double smoothing, int32_t ignore_index) {
  const std::vector<float> x = logits.ToFloats();
  const int64_t vocab = logits.size(1);
  double total = 0.0;
  int64_t counted = 0;
  for (size_t row = 0; row < targets.size(); ++row) {
    if (targets[row] == ignore_index) continue;
    double exp_total = 0.0;
    for (int64_t v = 0; v < vocab; ++v) exp_total += std::exp(x[row * vocab + v]);
    const double lse = std::log(exp_total);
    for (int64_t v = 0; v < vocab; ++v) {
      const double q = smoothing / vocab + (v == targets[row] ? 1.0 - smoothing : 0.0);
      total -= q * (x[row * vocab + v] - lse);
    }
    ++counted;
  }
  return counted > 0 ? total / counted : 0.0;
}

// logits = [[1, 2, 3],
//           [1, 1, 1]], targets = [2, 0].
// Row 0: lse = log(e + e^2 + e^3) = 3 + log(1 + e^-1 + e^-2) = 3 + log(1.5032147)
//        = 3.4076060; log p = [-2.4076060, -1.4076060, -0.4076060].
// Row 1: lse = log(3e) = 1 + log 3 = 2.0986123; log p = [-1.0986123] * 3.
const std::vector<float> kHandLogits = {1, 2, 3, 1, 1, 1};
const std::vector<int32_t> kHandTargets = {2, 0};

TEST(CrossEntropyTest, HandWorkedExampleWithoutSmoothing) {
  // loss0 = -log p0[2] = 0.4076060, loss1 = -log p1[0] = 1.0986123,
  // mean = (0.4076060 + 1.0986123) / 2 = 0.7531091.
  const Tensor loss =
      CrossEntropy(Tensor::FromFloats(kHandLogits, {2, 3}), Ints(kHandTargets, {2}));
  EXPECT_EQ(loss.shape(), Shape{});
  EXPECT_NEAR(loss.item(), 0.7531091, 1e-6);
}

TEST(CrossEntropyTest, HandWorkedExampleWithSmoothing) {
  // eps = 0.1, V = 3: q = 0.9 * onehot + 0.1 / 3, so loss = lse - 0.9 x[t] - 0.1 mean(x).
  // loss0 = 3.4076060 - 0.9 * 3 - 0.1 * 2 = 0.5076060
  //       (= 0.0333333 * (2.4076060 + 1.4076060 + 0.4076060) + 0.9 * 0.4076060),
  // loss1 = 2.0986123 - 0.9 * 1 - 0.1 * 1 = 1.0986123 (uniform logits: q does not matter),
  // mean = (0.5076060 + 1.0986123) / 2 = 0.8031091.
  const Tensor loss = CrossEntropy(Tensor::FromFloats(kHandLogits, {2, 3}), Ints(kHandTargets, {2}),
                                   /*label_smoothing=*/0.1f);
  EXPECT_NEAR(loss.item(), 0.8031091, 1e-6);
}

TEST(CrossEntropyTest, HandWorkedGradient) {
  // d(mean)/d(logits[row]) = (softmax(row) - q) / 2. Row 0 softmax = exp(log p0) =
  // [0.0900306, 0.2447285, 0.6652410]; row 1 softmax = [1/3, 1/3, 1/3].
  Tensor logits = Tensor::FromFloats(kHandLogits, {2, 3});
  logits.set_requires_grad(true);
  CrossEntropy(logits, Ints(kHandTargets, {2})).backward();
  EXPECT_TRUE(AllClose(logits.grad(),
                       {0.0900306f / 2, 0.2447285f / 2, (0.6652410f - 1) / 2, (1.0f / 3 - 1) / 2,
                        1.0f / 6, 1.0f / 6},
                       1e-6));
}

// When the caller keeps no handle on the logits (the trainer's case), backward writes
// their gradient over their buffer instead of allocating a second one; when it keeps one,
// the logits it holds are left as they were. Both give the same gradient.
TEST(CrossEntropyTest, GradientOverwritesLogitsOnlyWhenNobodyElseHoldsThem) {
  const Tensor weight = RandomInput({64, 256}, 3);
  std::vector<int32_t> targets(64);
  for (int32_t row = 0; row < 64; ++row) targets[row] = (row * 37) % 256;
  const int64_t logits_bytes = 64 * 256 * sizeof(float);
  auto gradient = [&](bool keep_logits, int64_t* backward_allocated) {
    Tensor leaf = weight.Clone();
    leaf.set_requires_grad(true);
    Tensor logits = MulScalar(leaf, 2.0f);  // a fresh buffer
    const std::vector<float> before = logits.ToFloats();
    Tensor loss = CrossEntropy(logits, Ints(targets, {64}), 0.1f);
    if (!keep_logits) logits = Tensor();
    const uint64_t allocated = CachingAllocator::Global().Stats().allocated_bytes;
    loss.backward();
    *backward_allocated =
        static_cast<int64_t>(CachingAllocator::Global().Stats().allocated_bytes - allocated);
    if (keep_logits) {
      EXPECT_EQ(logits.ToFloats(), before);
    }
    return leaf.grad().ToFloats();
  };
  int64_t allocated_kept = 0, allocated_dropped = 0;
  const std::vector<float> kept = gradient(/*keep_logits=*/true, &allocated_kept);
  const std::vector<float> dropped = gradient(/*keep_logits=*/false, &allocated_dropped);
  EXPECT_EQ(kept, dropped);
  EXPECT_EQ(allocated_kept - allocated_dropped, logits_bytes);
}

// A leaf's gradient is never written over its values: the caller holds the leaf.
TEST(CrossEntropyTest, LeafLogitsKeepTheirValues) {
  Tensor logits = Tensor::FromFloats(kHandLogits, {2, 3});
  logits.set_requires_grad(true);
  CrossEntropy(logits, Ints(kHandTargets, {2})).backward();
  EXPECT_EQ(logits.ToFloats(), kHandLogits);
}

TEST(CrossEntropyTest, MatchesNaiveLogSoftmax) {
  const Tensor logits = RandomInput({6, 11}, 1, -3.0f, 3.0f);
  const std::vector<int32_t> targets = {0, 10, 5, 5, 3, 7};
  for (float smoothing : {0.0f, 0.1f, 0.5f, 1.0f}) {
    EXPECT_NEAR(CrossEntropy(logits, Ints(targets, {6}), smoothing).item(),
                NaiveCrossEntropy(logits, targets, smoothing, -100), 1e-5)
        << "smoothing " << smoothing;
  }
  // Large logits do not overflow (max subtraction).
  const Tensor large = Tensor::FromFloats(std::vector<float>{1000, 1001, 1002, 0, 0, 0}, {2, 3});
  EXPECT_NEAR(CrossEntropy(large, Ints(kHandTargets, {2})).item(), 0.7531091, 1e-4);
  // A strided logits view.
  const Tensor wide = RandomInput({6, 15}, 2);
  const Tensor window = wide.narrow(1, 2, 11);
  EXPECT_NEAR(CrossEntropy(window, Ints(targets, {6}), 0.1f).item(),
              NaiveCrossEntropy(window.contiguous(), targets, 0.1, -100), 1e-5);
}

TEST(CrossEntropyTest, IgnoredRowsAreLeftOutOfTheMean) {
  const Tensor logits = RandomInput({4, 5}, 3);
  const std::vector<int32_t> targets = {1, -100, 4, -100};
  const Tensor loss = CrossEntropy(logits, Ints(targets, {4}), 0.1f);
  EXPECT_NEAR(loss.item(), NaiveCrossEntropy(logits, targets, 0.1, -100), 1e-6);
  // Equal to the loss of the two counted rows alone.
  const Tensor kept = IndexSelect(logits.detach(), 0, Ints({0, 2}, {2}));
  EXPECT_NEAR(loss.item(), CrossEntropy(kept, Ints({1, 4}, {2}), 0.1f).item(), 1e-6);
  // Ignored rows get zero gradient.
  Tensor leaf = logits.detach().Clone();
  leaf.set_requires_grad(true);
  CrossEntropy(leaf, Ints(targets, {4}), 0.1f).backward();
  const std::vector<float> grad = leaf.grad().ToFloats();
  for (int64_t v = 0; v < 5; ++v) {
    EXPECT_EQ(grad[1 * 5 + v], 0.0f);
    EXPECT_EQ(grad[3 * 5 + v], 0.0f);
  }
  // A custom ignore_index that is also a valid class id.
  const std::vector<int32_t> with_class_ignored = {1, 3, 4, 3};
  EXPECT_NEAR(CrossEntropy(logits, Ints(with_class_ignored, {4}), 0.0f, 3).item(),
              NaiveCrossEntropy(logits, with_class_ignored, 0.0, 3), 1e-6);
}

TEST(CrossEntropyTest, EveryRowIgnoredGivesZeroAndZeroGradient) {
  Tensor logits = RandomInput({3, 4}, 4);
  const Tensor loss = CrossEntropy(logits, Ints({-100, -100, -100}, {3}), 0.1f);
  EXPECT_EQ(loss.item(), 0.0f);
  loss.backward();
  EXPECT_TRUE(AllClose(logits.grad(), std::vector<float>(12, 0.0f), 0.0));
}

TEST(CrossEntropyTest, BadTargetsAreErrors) {
  const Tensor logits = Tensor::Zeros({2, 3});
  for (int32_t bad : {3, -1, -101}) {
    try {
      CrossEntropy(logits, Ints({0, bad}, {2}));
      ADD_FAILURE() << "expected attnlab::Error for target " << bad;
    } catch (const Error& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find("target " + std::to_string(bad)), std::string::npos) << message;
      EXPECT_NE(message.find("[0, 3)"), std::string::npos) << message;
    }
  }
  EXPECT_THROW(CrossEntropy(logits, Ints({0, 1, 2}, {3})), Error);                 // N differs
  EXPECT_THROW(CrossEntropy(logits, Tensor::Zeros({2})), Error);                   // not i32
  EXPECT_THROW(CrossEntropy(Tensor::Zeros({2, 3, 1}), Ints({0, 1}, {2})), Error);  // not 2-D
  EXPECT_THROW(CrossEntropy(logits, Ints({0, 1}, {2}), -0.1f), Error);             // smoothing
}

TEST(CrossEntropyTest, SameLossAndGradientOnOneAndTwoThreads) {
  std::vector<int32_t> targets;
  for (int32_t row = 0; row < 3000; ++row) targets.push_back(row % 7 == 0 ? -100 : (row * 31) % 50);
  const Tensor target_tensor = Ints(targets, {3000});
  // The loss, then the logits' gradient.
  const auto loss_and_gradient = [&] {
    Tensor logits = RandomInput({3000, 50}, 7, -4.0f, 4.0f);
    const Tensor out = CrossEntropy(logits, target_tensor, 0.1f);
    out.backward();
    std::vector<float> values = {out.item()};
    const std::vector<float> grad = logits.grad().ToFloats();
    values.insert(values.end(), grad.begin(), grad.end());
    return values;
  };
  EXPECT_TRUE(testing::BitIdentical(testing::OnThreads(1, loss_and_gradient),
                                    testing::OnThreads(2, loss_and_gradient)));
}

}  // namespace
}  // namespace attnlab
