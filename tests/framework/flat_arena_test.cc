// FlatArena: parameters become views of one buffer (values kept bit for bit), backward
// writes gradients into the gradient arena, and training with the arena is bit-identical
// to training without it (Adam, SGD with momentum, clipping, gradient accumulation, a
// parameter that backward does not reach).
//
// The model is a tiny two-layer network, y = tanh(x W1^T + b1) W2^T + b2, with loss
// mean(y^2); `unused` is a parameter no op reads.
#include "framework/tensor/flat_arena.h"

#include <cstring>
#include <memory>
#include <vector>

#include "framework/ops/ops.h"
#include "framework/optim/adam.h"
#include "framework/optim/clip.h"
#include "framework/optim/sgd.h"
#include "framework/random/generator.h"
#include "gtest/gtest.h"

namespace attnlab {
namespace {

struct TinyModel {
  // Same seed, same values: two models to compare bit for bit.
  explicit TinyModel(uint64_t seed) {
    Generator generator(seed);
    w1 = RandomUniform({5, 3}, -1.0f, 1.0f, generator).set_requires_grad(true);  // [out, in]
    b1 = RandomUniform({5}, -0.5f, 0.5f, generator).set_requires_grad(true);
    w2 = RandomUniform({2, 5}, -1.0f, 1.0f, generator).set_requires_grad(true);
    b2 = RandomUniform({2}, -0.5f, 0.5f, generator).set_requires_grad(true);
    unused = RandomUniform({7}, -1.0f, 1.0f, generator).set_requires_grad(true);
  }
  NamedTensors Parameters() const {
    return {{"w1", w1}, {"b1", b1}, {"w2", w2}, {"b2", b2}, {"unused", unused}};
  }
  // x: [batch, 3] -> loss []
  Tensor Loss(const Tensor& x) const {
    const Tensor hidden = Tanh(Linear(x, w1, b1));  // [batch, 5]
    const Tensor y = Linear(hidden, w2, b2);        // [batch, 2]
    return Mean(Mul(y, y));
  }
  Tensor w1, b1, w2, b2, unused;
};

Tensor Batch(uint64_t seed) {
  Generator generator(seed);
  return RandomUniform({4, 3}, -2.0f, 2.0f, generator);
}

// Bitwise equality of two tensors' values (f32, or i32 for optimizer step counts).
bool SameBits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  if (a.dtype() == DType::kI32) return a.ToInts() == b.ToInts();
  const std::vector<float> x = a.ToFloats(), y = b.ToFloats();
  return std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

void ExpectSameParameters(const NamedTensors& a, const NamedTensors& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(SameBits(a[i].second, b[i].second)) << a[i].first;
  }
}

TEST(FlatArena, ParametersBecomeViewsOfOneBufferWithTheirValues) {
  TinyModel model(1);
  const TinyModel reference(1);
  const Tensor w1_handle = model.w1;  // another handle to the same parameter
  FlatArena arena = FlatArena::Adopt(model.Parameters());

  // Slots start on 64-byte boundaries: 15, 5, 10, 2 and 7 elements take 16 each.
  EXPECT_EQ(arena.offsets(), (std::vector<int64_t>{0, 16, 32, 48, 64}));
  EXPECT_EQ(arena.numel(), 80);
  float* base = arena.parameter_buffer().data<float>();
  const NamedTensors& parameters = arena.parameters();
  for (size_t i = 0; i < parameters.size(); ++i) {
    EXPECT_EQ(parameters[i].second.data<float>(), base + arena.offsets()[i]) << parameters[i].first;
  }
  EXPECT_EQ(w1_handle.data<float>(), base);  // every handle sees the move
  ExpectSameParameters(model.Parameters(), reference.Parameters());
  EXPECT_TRUE(model.w1.requires_grad());

  // Writing the buffer writes the parameters, and the reverse.
  arena.parameter_span()[16 + 2] = 42.0f;
  EXPECT_EQ(model.b1.ToFloats()[2], 42.0f);
  model.w2.data<float>()[0] = -3.0f;
  EXPECT_EQ(arena.parameter_span()[32], -3.0f);
  // Padding stays zero.
  EXPECT_EQ(arena.parameter_span()[15], 0.0f);
  EXPECT_EQ(arena.parameter_span()[79], 0.0f);
}

TEST(FlatArena, BackwardWritesGradientsIntoTheArena) {
  TinyModel model(2);
  TinyModel reference(2);
  FlatArena arena = FlatArena::Adopt(model.Parameters());
  model.Loss(Batch(7)).backward();
  reference.Loss(Batch(7)).backward();

  float* gradient_base = arena.gradient_buffer().data<float>();
  const NamedTensors parameters = model.Parameters();
  const NamedTensors expected = reference.Parameters();
  for (size_t i = 0; i < 4; ++i) {  // every parameter but `unused`
    const Tensor gradient = parameters[i].second.grad();
    ASSERT_TRUE(gradient.defined()) << parameters[i].first;
    EXPECT_EQ(gradient.data<float>(), gradient_base + arena.offsets()[i]) << parameters[i].first;
    EXPECT_TRUE(SameBits(gradient, expected[i].second.grad())) << parameters[i].first;
    EXPECT_TRUE(SameBits(arena.GradientViews()[i].second, gradient)) << parameters[i].first;
  }
  EXPECT_FALSE(model.unused.grad().defined());  // set-to-none: backward did not reach it
  EXPECT_TRUE(arena.GradientsAreInArena());
}

TEST(FlatArena, GradientAccumulationAddsInPlace) {
  TinyModel model(3);
  TinyModel reference(3);
  FlatArena arena = FlatArena::Adopt(model.Parameters());
  for (uint64_t micro_batch = 0; micro_batch < 3; ++micro_batch) {
    model.Loss(Batch(10 + micro_batch)).backward();
    reference.Loss(Batch(10 + micro_batch)).backward();
  }
  EXPECT_EQ(model.w1.grad().data<float>(), arena.gradient_buffer().data<float>());
  EXPECT_TRUE(SameBits(model.w1.grad(), reference.w1.grad()));
  EXPECT_TRUE(SameBits(model.b2.grad(), reference.b2.grad()));
}

TEST(FlatArena, ZeroGradClearsTheArenaAndFillMissingGradientsZeroesStaleSlots) {
  TinyModel model(4);
  FlatArena arena = FlatArena::Adopt(model.Parameters());
  // A stale value in `unused`'s slot, as an earlier step could leave it.
  arena.gradient_span()[arena.offsets()[4]] = 9.0f;
  model.Loss(Batch(1)).backward();
  arena.FillMissingGradients();
  ASSERT_TRUE(model.unused.grad().defined());
  EXPECT_EQ(model.unused.grad().ToFloats(), std::vector<float>(7, 0.0f));
  EXPECT_NE(model.w1.grad().ToFloats(), std::vector<float>(15, 0.0f));  // untouched

  arena.ZeroGrad();
  for (const auto& [name, parameter] : model.Parameters()) {
    EXPECT_FALSE(parameter.grad().defined()) << name;
  }
  for (float value : arena.gradient_span()) ASSERT_EQ(value, 0.0f);
}

TEST(FlatArena, GradientReplacedOutsideTheArenaIsCaught) {
  TinyModel model(5);
  FlatArena arena = FlatArena::Adopt(model.Parameters());
  model.b1.impl()->grad = Tensor::Zeros({5}).impl_ptr();
  EXPECT_FALSE(arena.GradientsAreInArena());
  EXPECT_THROW(arena.FillMissingGradients(), Error);
}

TEST(FlatArena, AdoptRejectsWhatItCannotMove) {
  TinyModel model(6);
  EXPECT_THROW(FlatArena::Adopt({{"a", model.w1}, {"b", model.w1}}), Error);  // twice
  const Tensor view = model.w1.narrow(0, 0, 2);                               // shares w1's storage
  EXPECT_THROW(FlatArena::Adopt({{"w1", model.w1}, {"part", view.detach()}}), Error);
  EXPECT_THROW(FlatArena::Adopt({{"product", Mul(model.b1, model.b1)}}), Error);  // not a leaf
  FlatArena arena = FlatArena::Adopt({{"b2", model.b2}});
  EXPECT_THROW(FlatArena::Adopt({{"b2", model.b2}}), Error);  // already adopted
}

// Steps of an optimizer on a model with and without the arena: parameters, optimizer
// state and the clipped norms agree bit for bit.
template <typename MakeOptimizer>
void ExpectTrainingUnchangedByArena(MakeOptimizer make_optimizer) {
  TinyModel model(8);
  TinyModel reference(8);
  FlatArena arena = FlatArena::Adopt(model.Parameters());
  std::unique_ptr<Optimizer> optimizer = make_optimizer(model.Parameters());
  std::unique_ptr<Optimizer> reference_optimizer = make_optimizer(reference.Parameters());
  for (uint64_t step = 0; step < 4; ++step) {
    for (uint64_t micro_batch = 0; micro_batch < 2; ++micro_batch) {
      model.Loss(Batch(100 + 2 * step + micro_batch)).backward();
      reference.Loss(Batch(100 + 2 * step + micro_batch)).backward();
    }
    ASSERT_EQ(model.w1.grad().data<float>(), arena.gradient_buffer().data<float>());
    const float norm = ClipGradNorm(model.Parameters(), 0.5);
    const float reference_norm = ClipGradNorm(reference.Parameters(), 0.5);
    EXPECT_EQ(std::memcmp(&norm, &reference_norm, sizeof(float)), 0) << "step " << step;
    optimizer->Step(0.05);
    reference_optimizer->Step(0.05);
    optimizer->ZeroGrad();  // set-to-none; the next backward writes into the arena again
    reference_optimizer->ZeroGrad();
  }
  ExpectSameParameters(model.Parameters(), reference.Parameters());
  ExpectSameParameters(optimizer->NamedState(), reference_optimizer->NamedState());
  EXPECT_EQ(model.w2.data<float>(), arena.parameter_buffer().data<float>() + 32);
}

TEST(FlatArena, AdamTrainsBitIdenticallyWithTheArena) {
  ExpectTrainingUnchangedByArena([](NamedTensors parameters) -> std::unique_ptr<Optimizer> {
    return std::make_unique<Adam>(std::move(parameters), AdamWOptions(0.01));
  });
}

TEST(FlatArena, SgdWithMomentumTrainsBitIdenticallyWithTheArena) {
  ExpectTrainingUnchangedByArena([](NamedTensors parameters) -> std::unique_ptr<Optimizer> {
    SgdOptions options;
    options.momentum = 0.9;
    options.weight_decay = 1e-3;
    return std::make_unique<Sgd>(std::move(parameters), options);
  });
}

}  // namespace
}  // namespace attnlab
