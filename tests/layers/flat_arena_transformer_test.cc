// A whole (tiny) Transformer in a FlatArena trains bit-identically to one without it:
// the arena (framework/tensor/flat_arena.h) needs nothing from the layers, since Adopt
// re-points the parameters' shared TensorImpls and backward writes into the arena.
#include <cstring>
#include <memory>
#include <vector>

#include "framework/optim/adam.h"
#include "framework/optim/clip.h"
#include "framework/tensor/flat_arena.h"
#include "gtest/gtest.h"
#include "tests/layers/tiny_transformer.h"

namespace attnlab::nn {
namespace {

using testing::MakeTransformer;
using testing::SequenceLoss;
using testing::TinySource;
using testing::TinyTargetInput;
using testing::TinyTargetOutput;
using testing::TinyTransformerOptions;

TEST(FlatArenaTransformer, TrainsBitIdenticallyWithTheArena) {
  std::shared_ptr<Transformer> model = MakeTransformer(TinyTransformerOptions(), 3);
  std::shared_ptr<Transformer> reference = MakeTransformer(TinyTransformerOptions(), 3);
  FlatArena arena = FlatArena::Adopt(model->NamedParameters());
  Adam optimizer(model->NamedParameters(), AdamOptions{0.9, 0.98, 1e-9});
  Adam reference_optimizer(reference->NamedParameters(), AdamOptions{0.9, 0.98, 1e-9});
  const Tensor src = TinySource(), tgt_in = TinyTargetInput(), tgt_out = TinyTargetOutput();
  for (int step = 0; step < 3; ++step) {
    SequenceLoss(model->Forward(src, tgt_in), tgt_out).backward();
    SequenceLoss(reference->Forward(src, tgt_in), tgt_out).backward();
    EXPECT_TRUE(arena.GradientsAreInArena());
    ClipGradNorm(model->NamedParameters(), 1.0);
    ClipGradNorm(reference->NamedParameters(), 1.0);
    optimizer.Step(1e-2);
    reference_optimizer.Step(1e-2);
    optimizer.ZeroGrad();
    reference_optimizer.ZeroGrad();
  }
  const NamedTensors parameters = model->NamedParameters();
  const NamedTensors expected = reference->NamedParameters();
  ASSERT_EQ(parameters.size(), expected.size());
  const float* base = arena.parameter_buffer().data<float>();
  for (size_t i = 0; i < parameters.size(); ++i) {
    EXPECT_EQ(parameters[i].second.data<float>(), base + arena.offsets()[i]) << parameters[i].first;
    const std::vector<float> values = parameters[i].second.ToFloats();
    const std::vector<float> expected_values = expected[i].second.ToFloats();
    EXPECT_EQ(std::memcmp(values.data(), expected_values.data(), values.size() * sizeof(float)), 0)
        << parameters[i].first;
  }
}

}  // namespace
}  // namespace attnlab::nn
