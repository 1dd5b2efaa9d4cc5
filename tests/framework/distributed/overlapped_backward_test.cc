// The pieces of data-parallel training together: a FlatArena of a tiny model's
// parameters, GradientBuckets, autograd's gradient-ready hook starting each bucket's
// all-reduce during backward, and Wait() before the optimizer. The result must be the
// same, bit for bit, as all-reducing the whole gradient arena in one call after backward
// (each element is reduced in rank order either way). Each rank takes its own batch, as
// it would take its own shard.
#include <cstring>
#include <vector>

#include "framework/autograd/node.h"
#include "framework/distributed/gradient_buckets.h"
#include "framework/ops/ops.h"
#include "framework/random/generator.h"
#include "framework/tensor/flat_arena.h"
#include "gtest/gtest.h"
#include "tests/framework/distributed/shared_communicator.h"

namespace attnlab::distributed {
namespace {

using testing::SharedCommunicator;

// y = relu(x W1^T + b1) W2^T + b2, loss = mean(y^2); `unused` is read by no op. It is
// the first slot, so it lands in the last bucket: a bucket holding a parameter that
// backward never reaches can only start after backward, and so can every bucket after it.
struct TinyModel {
  TinyModel() {
    Generator generator(17);
    w1 = RandomUniform({24, 8}, -1.0f, 1.0f, generator).set_requires_grad(true);
    b1 = RandomUniform({24}, -0.5f, 0.5f, generator).set_requires_grad(true);
    w2 = RandomUniform({6, 24}, -1.0f, 1.0f, generator).set_requires_grad(true);
    b2 = RandomUniform({6}, -0.5f, 0.5f, generator).set_requires_grad(true);
    unused = RandomUniform({5}, -1.0f, 1.0f, generator).set_requires_grad(true);
  }
  NamedTensors Parameters() const {
    return {{"unused", unused}, {"w1", w1}, {"b1", b1}, {"w2", w2}, {"b2", b2}};
  }
  Tensor Loss(int rank) const {
    Generator generator(1000 + rank);
    const Tensor x = RandomUniform({3, 8}, -2.0f, 2.0f, generator);
    const Tensor y = Linear(Relu(Linear(x, w1, b1)), w2, b2);
    return Mean(Mul(y, y));
  }
  Tensor w1, b1, w2, b2, unused;
};

TEST(OverlappedBackward, BucketsStartedDuringBackwardEqualOneAllReduceAfterIt) {
  Communicator& communicator = SharedCommunicator();
  const int rank = communicator.rank();

  // Reference: backward, then one all-reduce of the whole gradient arena.
  TinyModel reference;
  FlatArena reference_arena = FlatArena::Adopt(reference.Parameters());
  reference.Loss(rank).backward();
  reference_arena.FillMissingGradients();
  ASSERT_TRUE(communicator.AllReduce(reference_arena.gradient_span(), ReduceOp::kMean).ok());

  // Overlapped: buckets of at least 20 elements, started from the hook as their
  // parameters' gradients become final. Slots (padded to 16): unused 16, w1 192, b1 32,
  // w2 144, b2 16; buckets {w2, b2}, {b1}, {w1}, {unused}.
  TinyModel model;
  FlatArena arena = FlatArena::Adopt(model.Parameters());
  GradientBuckets buckets(arena.offsets(), arena.numel(), 20);
  ASSERT_EQ(buckets.buckets().size(), 4u);
  const std::span<float> gradients = arena.gradient_span();
  auto start = [&](int bucket) {
    const GradientBuckets::Bucket& range = buckets.buckets()[bucket];
    communicator.StartAllReduce(gradients.subspan(range.begin, range.end - range.begin),
                                ReduceOp::kMean);
  };
  int started_during_backward = 0;
  buckets.Reset();
  autograd::RunBackward(model.Loss(rank), Tensor::Scalar(1.0f), [&](TensorImpl& leaf) {
    const int slot = arena.SlotOf(&leaf);
    if (slot < 0) return;
    arena.FillMissingGradient(slot);
    for (int bucket : buckets.MarkReady(slot)) {
      start(bucket);
      ++started_during_backward;
    }
  });
  arena.FillMissingGradients();  // `unused`, which backward never reached
  for (int bucket : buckets.Remaining()) start(bucket);
  ASSERT_TRUE(communicator.Wait().ok());

  EXPECT_EQ(started_during_backward, 3);  // all but {unused}
  EXPECT_EQ(
      std::memcmp(gradients.data(), reference_arena.gradient_span().data(), gradients.size_bytes()),
      0);
  EXPECT_EQ(model.unused.grad().ToFloats(), std::vector<float>(5, 0.0f));
}

}  // namespace
}  // namespace attnlab::distributed
