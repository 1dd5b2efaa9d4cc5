// Optimizers, clipping and schedules against steps computed by hand (the arithmetic is
// in the comments), plus state save/load and the allocation-free steady state.
//
// The common problem has three parameters, a = 1.0 ([]), b = [-2.0, 0.5] ([2]) and
// c = [4.0] ([1]), with gradients set directly (so each step's input is exact):
//   step 1: grad a = 0.5,  b = [1.0, -1.0], c = [2.0]
//   step 2: grad a = -0.5, b = [0.5, 0.25], c has no gradient (skipped)
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include "framework/io/safetensors.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"
#include "framework/optim/clip.h"
#include "framework/optim/schedule.h"
#include "framework/optim/sgd.h"
#include "framework/parallel/parallel_for.h"
#include "framework/tensor/allocator.h"
#include "gtest/gtest.h"
#include "tests/support/gradcheck.h"
#include "tests/support/thread_counts.h"

namespace attnlab {
namespace {

using testing::AllClose;

// Sets the accumulated gradient of a leaf, as a backward pass would leave it.
void SetGrad(const Tensor& parameter, const std::vector<float>& values) {
  parameter.impl()->grad = Tensor::FromFloats(values, parameter.shape()).impl_ptr();
}

struct Problem {
  Tensor a = Tensor::FromFloats(std::vector<float>{1.0f}, {}).set_requires_grad(true);
  Tensor b = Tensor::FromFloats(std::vector<float>{-2.0f, 0.5f}, {2}).set_requires_grad(true);
  Tensor c = Tensor::FromFloats(std::vector<float>{4.0f}, {1}).set_requires_grad(true);

  NamedTensors Named() const { return {{"a", a}, {"b", b}, {"c", c}}; }
  void SetStep1Grads() const {
    SetGrad(a, {0.5f});
    SetGrad(b, {1.0f, -1.0f});
    SetGrad(c, {2.0f});
  }
  void SetStep2Grads() {
    SetGrad(a, {-0.5f});
    SetGrad(b, {0.5f, 0.25f});
    c.zero_grad();
  }
};

int32_t StateStep(const NamedTensors& state, const std::string& name) {
  for (const auto& [entry_name, tensor] : state) {
    if (entry_name == name) return tensor.ToInts()[0];
  }
  ADD_FAILURE() << "no state entry " << name;
  return -1;
}

std::vector<float> StateValues(const NamedTensors& state, const std::string& name) {
  for (const auto& [entry_name, tensor] : state) {
    if (entry_name == name) return tensor.ToFloats();
  }
  ADD_FAILURE() << "no state entry " << name;
  return {};
}

// ---- SGD ---------------------------------------------------------------------------

TEST(SgdTest, MomentumTwoStepsByHand) {
  // lr 0.1, momentum 0.9: buf = g on a parameter's first step, then buf = 0.9 buf + g;
  // p -= 0.1 buf.
  //   a:  buf1 = 0.5,  p1 = 1 - 0.05 = 0.95;   buf2 = 0.45 - 0.5 = -0.05,  p2 = 0.955
  //   b0: buf1 = 1,    p1 = -2 - 0.1 = -2.1;   buf2 = 0.9 + 0.5 = 1.4,     p2 = -2.24
  //   b1: buf1 = -1,   p1 = 0.5 + 0.1 = 0.6;   buf2 = -0.9 + 0.25 = -0.65, p2 = 0.665
  //   c:  buf1 = 2,    p1 = 4 - 0.2 = 3.8;     no gradient: p2 = 3.8, buf2 = 2, step 1
  Problem problem;
  SgdOptions options;
  options.momentum = 0.9;
  Sgd sgd(problem.Named(), options);
  problem.SetStep1Grads();
  sgd.Step(0.1);
  EXPECT_TRUE(AllClose(problem.a, {0.95f}, 1e-6));
  EXPECT_TRUE(AllClose(problem.b, {-2.1f, 0.6f}, 1e-6));
  EXPECT_TRUE(AllClose(problem.c, {3.8f}, 1e-6));
  problem.SetStep2Grads();
  sgd.Step(0.1);
  EXPECT_TRUE(AllClose(problem.a, {0.955f}, 1e-6));
  EXPECT_TRUE(AllClose(problem.b, {-2.24f, 0.665f}, 1e-6));
  EXPECT_TRUE(AllClose(problem.c, {3.8f}, 1e-6));

  const NamedTensors state = sgd.NamedState();
  EXPECT_EQ(StateStep(state, "optim.step"), 2);
  EXPECT_EQ(StateStep(state, "optim.a.step"), 2);
  EXPECT_EQ(StateStep(state, "optim.c.step"), 1);
  EXPECT_TRUE(AllClose(Tensor::FromFloats(StateValues(state, "optim.b.momentum_buffer"), {2}),
                       {1.4f, -0.65f}, 1e-6));
  EXPECT_TRUE(AllClose(Tensor::FromFloats(StateValues(state, "optim.c.momentum_buffer"), {1}),
                       {2.0f}, 1e-6));
}

TEST(SgdTest, WeightDecayAndDampeningByHand) {
  // lr 0.1, momentum 0.9, dampening 0.5, weight decay 0.1; p0 = 2, grad 1 both steps.
  //   step 1: d = 1 + 0.1 * 2 = 1.2; buf = d = 1.2 (no dampening on the first step, as
  //           PyTorch); p1 = 2 - 0.12 = 1.88
  //   step 2: d = 1 + 0.1 * 1.88 = 1.188; buf = 0.9 * 1.2 + 0.5 * 1.188 = 1.674;
  //           p2 = 1.88 - 0.1674 = 1.7126
  Tensor p = Tensor::FromFloats(std::vector<float>{2.0f}, {1}).set_requires_grad(true);
  SgdOptions options;
  options.momentum = 0.9;
  options.dampening = 0.5;
  options.weight_decay = 0.1;
  Sgd sgd({{"p", p}}, options);
  SetGrad(p, {1.0f});
  sgd.Step(0.1);
  EXPECT_TRUE(AllClose(p, {1.88f}, 1e-6));
  sgd.Step(0.1);  // the gradient is still 1 (not zeroed)
  EXPECT_TRUE(AllClose(p, {1.7126f}, 1e-6));
}

TEST(SgdTest, NesterovAndPlainByHand) {
  // Nesterov, lr 0.1, momentum 0.9, grad 1 both steps, p0 = 1:
  //   step 1: buf = 1, d = 1 + 0.9 * 1 = 1.9, p1 = 0.81
  //   step 2: buf = 0.9 + 1 = 1.9, d = 1 + 0.9 * 1.9 = 2.71, p2 = 0.539
  Tensor p = Tensor::FromFloats(std::vector<float>{1.0f}, {1}).set_requires_grad(true);
  SgdOptions options;
  options.momentum = 0.9;
  options.nesterov = true;
  Sgd nesterov({{"p", p}}, options);
  SetGrad(p, {1.0f});
  nesterov.Step(0.1);
  EXPECT_TRUE(AllClose(p, {0.81f}, 1e-6));
  nesterov.Step(0.1);
  EXPECT_TRUE(AllClose(p, {0.539f}, 1e-6));

  // Plain SGD: p -= lr * g; 1 - 0.1 * 0.5 = 0.95. No moment in the state.
  Tensor q = Tensor::FromFloats(std::vector<float>{1.0f}, {1}).set_requires_grad(true);
  Sgd plain({{"q", q}});
  SetGrad(q, {0.5f});
  plain.Step(0.1);
  EXPECT_TRUE(AllClose(q, {0.95f}, 1e-6));
  EXPECT_EQ(plain.NamedState().size(), 2u);  // optim.step, optim.q.step
}

// ---- Adam / AdamW ------------------------------------------------------------------

TEST(AdamTest, TwoStepsByHand) {
  // lr 0.1, betas (0.9, 0.999), eps 1e-8. t is the parameter's own step count.
  //   m = 0.9 m + 0.1 g;  v = 0.999 v + 0.001 g^2
  //   p -= lr / (1 - 0.9^t) * m / (sqrt(v) / sqrt(1 - 0.999^t) + eps)
  // Step 1 (t = 1): m = 0.1 g, v = 0.001 g^2, so m_hat = g, sqrt(v_hat) = |g| and
  //   p1 = p0 - 0.1 * g / (|g| + 1e-8), i.e. one lr against the sign of g:
  //   a: 0.9, b: [-2.1, 0.6], c: 3.9
  // Step 2 (t = 2): 1 - 0.9^2 = 0.19, 1 - 0.999^2 = 0.001999
  //   a:  m = 0.045 - 0.05 = -0.005, v = 0.00024975 + 0.00025 = 0.00049975
  //       v_hat = 0.00049975 / 0.001999 = 0.25 -> denom 0.5
  //       p2 = 0.9 - 0.1 / 0.19 * (-0.005 / 0.5) = 0.9 + 0.0052631579 = 0.9052631579
  //   b0: m = 0.09 + 0.05 = 0.14, v = 0.000999 + 0.00025 = 0.001249
  //       denom = sqrt(0.001249 / 0.001999) = 0.7904508, m_hat = 0.14 / 0.19 = 0.7368421
  //       p2 = -2.1 - 0.1 * 0.7368421 / 0.7904508 = -2.1932180
  //   b1: m = -0.09 + 0.025 = -0.065, v = 0.000999 + 0.0000625 = 0.0010615
  //       denom = sqrt(0.0010615 / 0.001999) = 0.7287112, m_hat = -0.3421053
  //       p2 = 0.6 + 0.1 * 0.3421053 / 0.7287112 = 0.6469468
  //   c:  no gradient: unchanged at 3.9, its step count stays 1.
  // Step 3: c gets grad 2.0 again and is corrected with ITS t = 2 (not the global 3):
  //   m = 0.18 + 0.2 = 0.38, v = 0.003996 + 0.004 = 0.007996
  //   m_hat = 0.38 / 0.19 = 2, v_hat = 0.007996 / 0.001999 = 4 -> p3 = 3.9 - 0.1 = 3.8
  //   (with t = 3 it would be 3.9 - 0.1 * 1.4022 / 1.6334 = 3.8142).
  Problem problem;
  Adam adam(problem.Named());
  problem.SetStep1Grads();
  adam.Step(0.1);
  EXPECT_TRUE(AllClose(problem.a, {0.9f}, 1e-6));
  EXPECT_TRUE(AllClose(problem.b, {-2.1f, 0.6f}, 1e-6));
  EXPECT_TRUE(AllClose(problem.c, {3.9f}, 1e-6));
  problem.SetStep2Grads();
  adam.Step(0.1);
  EXPECT_TRUE(AllClose(problem.a, {0.9052631579f}, 1e-6));
  EXPECT_TRUE(AllClose(problem.b, {-2.1932180f, 0.6469468f}, 1e-6));
  EXPECT_TRUE(AllClose(problem.c, {3.9f}, 1e-6));

  const NamedTensors state = adam.NamedState();
  EXPECT_TRUE(AllClose(Tensor::FromFloats(StateValues(state, "optim.b.exp_avg"), {2}),
                       {0.14f, -0.065f}, 1e-6));
  EXPECT_TRUE(AllClose(Tensor::FromFloats(StateValues(state, "optim.b.exp_avg_sq"), {2}),
                       {0.001249f, 0.0010615f}, 1e-6));
  EXPECT_EQ(StateStep(state, "optim.c.step"), 1);

  problem.a.zero_grad();
  problem.b.zero_grad();
  SetGrad(problem.c, {2.0f});
  adam.Step(0.1);
  EXPECT_TRUE(AllClose(problem.c, {3.8f}, 1e-6));
  EXPECT_TRUE(AllClose(problem.a, {0.9052631579f}, 1e-6));
  EXPECT_EQ(adam.step_count(), 3);
}

TEST(AdamTest, WeightDecayIsAnL2PenaltyOnTheGradient) {
  // Adam (not W), weight decay 0.1: g' = g + 0.1 p, otherwise as above. For a:
  //   step 1: g' = 0.5 + 0.1 = 0.6 -> p1 = 1 - 0.1 * 0.6 / (0.6 + 1e-8) = 0.9
  //   step 2: g' = -0.5 + 0.09 = -0.41; m = 0.054 - 0.041 = 0.013;
  //           v = 0.00035964 + 0.0001681 = 0.00052774; denom = sqrt(v / 0.001999) = 0.5138113
  //           p2 = 0.9 - 0.1 * (0.013 / 0.19) / 0.5138113 = 0.8866836
  //   b0: p2 = -2.1883623, b1: p2 = 0.6406022 (same arithmetic)
  Problem problem;
  AdamOptions options;
  options.weight_decay = 0.1;
  Adam adam(problem.Named(), options);
  problem.SetStep1Grads();
  adam.Step(0.1);
  problem.SetStep2Grads();
  adam.Step(0.1);
  EXPECT_TRUE(AllClose(problem.a, {0.8866836f}, 1e-6));
  EXPECT_TRUE(AllClose(problem.b, {-2.1883623f, 0.6406022f}, 1e-6));
}

TEST(AdamWTest, DecoupledWeightDecayByHand) {
  // AdamW, lr 0.1, weight decay 0.1: first p *= 1 - 0.1 * 0.1 = 0.99, then the Adam
  // step of the raw gradient (identical to the Adam test's).
  //   a:  p1 = 0.99 - 0.1 = 0.89;          p2 = 0.89 * 0.99 + 0.0052631579 = 0.8863631579
  //   b0: p1 = -1.98 - 0.1 = -2.08;        p2 = -2.08 * 0.99 - 0.0932180 = -2.1524180
  //   b1: p1 = 0.495 + 0.1 = 0.595;        p2 = 0.595 * 0.99 + 0.0469468 = 0.6359968
  //   c:  p1 = 3.96 - 0.1 = 3.86;          no gradient at step 2, so no decay: 3.86
  Problem problem;
  Adam adamw(problem.Named(), AdamWOptions(0.1));
  problem.SetStep1Grads();
  adamw.Step(0.1);
  EXPECT_TRUE(AllClose(problem.a, {0.89f}, 1e-6));
  EXPECT_TRUE(AllClose(problem.b, {-2.08f, 0.595f}, 1e-6));
  EXPECT_TRUE(AllClose(problem.c, {3.86f}, 1e-6));
  problem.SetStep2Grads();
  adamw.Step(0.1);
  EXPECT_TRUE(AllClose(problem.a, {0.8863631579f}, 1e-6));
  EXPECT_TRUE(AllClose(problem.b, {-2.1524180f, 0.6359968f}, 1e-6));
  EXPECT_TRUE(AllClose(problem.c, {3.86f}, 1e-6));
}

TEST(AdamTest, EpsilonIsAddedAfterTheBiasCorrection) {
  // PyTorch: denom = sqrt(v) / sqrt(1 - beta2^t) + eps. With eps 0.5, step 1, g = 0.5:
  //   denom = 0.5 + 0.5 = 1, p1 = 1 - 0.1 * 0.5 / 1 = 0.95.
  // (eps inside the correction, sqrt(v) + eps then / sqrt(0.001), would give 0.9969.)
  Tensor p = Tensor::FromFloats(std::vector<float>{1.0f}, {1}).set_requires_grad(true);
  AdamOptions options;
  options.epsilon = 0.5;
  Adam adam({{"p", p}}, options);
  SetGrad(p, {0.5f});
  adam.Step(0.1);
  EXPECT_TRUE(AllClose(p, {0.95f}, 1e-6));
}

TEST(AdamTest, TransformerBetas) {
  // Vaswani et al.: betas (0.9, 0.98), eps 1e-9. a: g = 0.5 then -0.5:
  //   step 1: p1 = 1 - 0.1 = 0.9; step 2: v_hat = 0.0099 / 0.0396 = 0.25, m_hat =
  //   -0.005 / 0.19, p2 = 0.9 + 0.1 * (0.005 / 0.19) / 0.5 = 0.9052632.
  Tensor p = Tensor::FromFloats(std::vector<float>{1.0f}, {1}).set_requires_grad(true);
  AdamOptions options;
  options.beta2 = 0.98;
  options.epsilon = 1e-9;
  Adam adam({{"p", p}}, options);
  SetGrad(p, {0.5f});
  adam.Step(0.1);
  EXPECT_TRUE(AllClose(p, {0.9f}, 1e-6));
  SetGrad(p, {-0.5f});
  adam.Step(0.1);
  EXPECT_TRUE(AllClose(p, {0.9052632f}, 1e-6));
}

TEST(AdamTest, MinimizesAQuadraticThroughBackward) {
  // End to end with autograd: loss = sum((x - target)^2) converges to the target.
  Tensor x = Tensor::FromFloats(std::vector<float>{3.0f, -1.0f, 0.5f}, {3}).set_requires_grad(true);
  const Tensor target = Tensor::FromFloats(std::vector<float>{1.0f, 2.0f, -0.5f}, {3});
  Adam adam({{"x", x}});
  for (int step = 0; step < 500; ++step) {
    adam.ZeroGrad();
    const Tensor difference = Sub(x, target);
    Sum(Mul(difference, difference)).backward();
    adam.Step(0.05);
  }
  EXPECT_TRUE(AllClose(x, {1.0f, 2.0f, -0.5f}, 1e-2));
}

TEST(AdamTest, ParametersSpanningManyWorkChunks) {
  // A parameter larger than one unit of parallel work gets the same update everywhere.
  const int64_t n = 100000;
  Tensor p = Tensor::Full({n}, 1.0f).set_requires_grad(true);
  Adam adam({{"p", p}});
  SetGrad(p, std::vector<float>(n, 0.5f));
  adam.Step(0.1);
  EXPECT_TRUE(AllClose(p, std::vector<float>(n, 0.9f), 1e-6));
}

// ---- Shared optimizer behaviour ----------------------------------------------------

TEST(OptimizerTest, NamedStateNamesAndShapes) {
  Problem problem;
  Adam adam(problem.Named());
  const NamedTensors state = adam.NamedState();
  std::vector<std::string> names;
  for (const auto& [name, tensor] : state) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "optim.step", "optim.a.exp_avg", "optim.a.exp_avg_sq", "optim.a.step",
                       "optim.b.exp_avg", "optim.b.exp_avg_sq", "optim.b.step", "optim.c.exp_avg",
                       "optim.c.exp_avg_sq", "optim.c.step"}));
  EXPECT_EQ(state[0].second.Describe(), "i32[]");
  EXPECT_EQ(state[1].second.Describe(), "f32[]");
  EXPECT_EQ(state[4].second.Describe(), "f32[2]");
  EXPECT_EQ(state[7].second.Describe(), "f32[1]");
  for (const auto& [name, tensor] : state) {
    EXPECT_TRUE(tensor.is_contiguous()) << name;
    if (tensor.dtype() == DType::kF32) {
      EXPECT_EQ(tensor.ToFloats(), std::vector<float>(tensor.numel(), 0.0f)) << name;
    }
  }
}

TEST(OptimizerTest, ZeroGradForgetsGradients) {
  Problem problem;
  Sgd sgd(problem.Named());
  problem.SetStep1Grads();
  sgd.ZeroGrad();
  EXPECT_FALSE(problem.a.grad().defined());
  EXPECT_FALSE(problem.b.grad().defined());
  sgd.Step(0.1);  // nothing to update
  EXPECT_TRUE(AllClose(problem.a, {1.0f}));
  EXPECT_EQ(StateStep(sgd.NamedState(), "optim.a.step"), 0);
}

TEST(OptimizerTest, StepsAllocateNothingAfterTheFirst) {
  Problem problem;
  Adam adam(problem.Named());
  problem.SetStep1Grads();
  adam.Step(0.01);  // allocates the state
  const AllocatorStats before = CachingAllocator::Global().Stats();
  for (int i = 0; i < 5; ++i) {
    ClipGradNorm(problem.Named(), 1.0);
    adam.Step(0.01);
  }
  const AllocatorStats after = CachingAllocator::Global().Stats();
  EXPECT_EQ(after.allocations, before.allocations);
  EXPECT_EQ(after.system_allocations, before.system_allocations);
}

// Steps an optimizer on two copies of a problem; the second is rebuilt from a checkpoint
// (parameters and optimizer state through a safetensors file) after `steps_before`.
template <typename MakeOptimizer>
void ExpectResumeIsExact(MakeOptimizer make_optimizer, const std::string& label) {
  Problem original;
  std::unique_ptr<Optimizer> optimizer = make_optimizer(original.Named());
  original.SetStep1Grads();
  optimizer->Step(0.1);
  original.SetStep2Grads();  // c is skipped, so its step count differs from the others'
  optimizer->Step(0.05);

  NamedTensors checkpoint = original.Named();
  for (const auto& entry : optimizer->NamedState()) checkpoint.push_back(entry);
  const std::string path = ::testing::TempDir() + "/optim_resume_" + label + ".safetensors";
  ASSERT_TRUE(WriteSafetensors(path, checkpoint).ok());
  absl::StatusOr<SafetensorsContents> read = ReadSafetensors(path);
  ASSERT_TRUE(read.ok()) << read.status();
  std::remove(path.c_str());

  Problem resumed;  // fresh values, overwritten by the checkpoint
  NamedTensors parameters, state;
  for (const auto& entry : read->tensors) {
    (entry.first.rfind("optim.", 0) == 0 ? state : parameters).push_back(entry);
  }
  ASSERT_TRUE(LoadIntoNamed(resumed.Named(), parameters, /*strict=*/true).ok());
  std::unique_ptr<Optimizer> resumed_optimizer = make_optimizer(resumed.Named());
  const absl::Status loaded = resumed_optimizer->LoadState(state);
  ASSERT_TRUE(loaded.ok()) << loaded;
  EXPECT_EQ(resumed_optimizer->step_count(), 2);

  for (const Problem* problem : {&original, &resumed}) {
    SetGrad(problem->a, {0.25f});
    SetGrad(problem->b, {-0.75f, 2.0f});
    SetGrad(problem->c, {-1.0f});
  }
  for (int i = 0; i < 2; ++i) {
    optimizer->Step(0.02);
    resumed_optimizer->Step(0.02);
  }
  EXPECT_EQ(resumed.a.ToFloats(), original.a.ToFloats()) << label;
  EXPECT_EQ(resumed.b.ToFloats(), original.b.ToFloats()) << label;
  EXPECT_EQ(resumed.c.ToFloats(), original.c.ToFloats()) << label;
  // And the state itself is identical.
  const NamedTensors original_state = optimizer->NamedState();
  const NamedTensors resumed_state = resumed_optimizer->NamedState();
  ASSERT_EQ(original_state.size(), resumed_state.size());
  for (size_t i = 0; i < original_state.size(); ++i) {
    const Tensor& x = original_state[i].second;
    if (x.dtype() == DType::kF32) {
      EXPECT_EQ(x.ToFloats(), resumed_state[i].second.ToFloats()) << original_state[i].first;
    } else {
      EXPECT_EQ(x.ToInts(), resumed_state[i].second.ToInts()) << original_state[i].first;
    }
  }
}

TEST(OptimizerStateTest, SaveLoadRoundTripGivesIdenticalSteps) {
  ExpectResumeIsExact(
      [](NamedTensors parameters) -> std::unique_ptr<Optimizer> {
        SgdOptions options;
        options.momentum = 0.9;
        options.dampening = 0.1;
        return std::make_unique<Sgd>(std::move(parameters), options);
      },
      "sgd");
  ExpectResumeIsExact(
      [](NamedTensors parameters) -> std::unique_ptr<Optimizer> {
        return std::make_unique<Adam>(std::move(parameters));
      },
      "adam");
  ExpectResumeIsExact(
      [](NamedTensors parameters) -> std::unique_ptr<Optimizer> {
        return std::make_unique<Adam>(std::move(parameters), AdamWOptions(0.1));
      },
      "adamw");
}

TEST(OptimizerStateTest, LoadStateListsEveryProblemAndChangesNothing) {
  Problem problem;
  Adam adam(problem.Named());
  problem.SetStep1Grads();
  adam.Step(0.1);
  NamedTensors snapshot;
  for (const auto& [name, tensor] : adam.NamedState()) snapshot.emplace_back(name, tensor.Clone());

  NamedTensors bad;
  for (const auto& [name, tensor] : snapshot) {
    if (name == "optim.a.exp_avg") continue;  // missing
    if (name == "optim.b.exp_avg_sq") {
      bad.emplace_back(name, Tensor::Zeros({3}));  // wrong shape
    } else if (name == "optim.b.step") {
      bad.emplace_back(name, Tensor::FromInts(std::vector<int32_t>{-4}, {}));  // negative
    } else if (name == "optim.c.step") {
      bad.emplace_back(name, Tensor::Zeros({}));  // wrong dtype
    } else {
      bad.emplace_back(name,
                       tensor.dtype() == DType::kF32 ? Tensor::Full(tensor.shape(), 7.0f) : tensor);
    }
  }
  bad.emplace_back("optim.z.exp_avg", Tensor::Zeros({1}));  // unexpected

  const absl::Status status = adam.LoadState(bad);
  ASSERT_FALSE(status.ok());
  const std::string message(status.message());
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  for (const char* expected :
       {"5 problems", "missing \"optim.a.exp_avg\"", "unexpected \"optim.z.exp_avg\"",
        "\"optim.b.exp_avg_sq\": expected f32[2], got f32[3]",
        "\"optim.c.step\": expected i32[], got f32[]",
        "\"optim.b.step\": negative step count -4"}) {
    EXPECT_NE(message.find(expected), std::string::npos)
        << "no '" << expected << "' in: " << message;
  }
  // Nothing was copied.
  const NamedTensors after = adam.NamedState();
  for (size_t i = 0; i < after.size(); ++i) {
    if (after[i].second.dtype() == DType::kF32) {
      EXPECT_EQ(after[i].second.ToFloats(), snapshot[i].second.ToFloats()) << after[i].first;
    } else {
      EXPECT_EQ(after[i].second.ToInts(), snapshot[i].second.ToInts()) << after[i].first;
    }
  }
}

// ---- Clipping ----------------------------------------------------------------------

TEST(ClipGradNormTest, ScalesByMaxNormOverTotalNorm) {
  // Gradients a = 2, b = [1, -2], c = [4]: total norm sqrt(4 + 1 + 4 + 16) = 5.
  // max_norm 1: coefficient 1 / (5 + 1e-6), so a -> 0.39999992, b -> [0.19999996,
  // -0.39999992], c -> 0.79999984.
  Problem problem;
  SetGrad(problem.a, {2.0f});
  SetGrad(problem.b, {1.0f, -2.0f});
  SetGrad(problem.c, {4.0f});
  EXPECT_FLOAT_EQ(ClipGradNorm(problem.Named(), 1.0), 5.0f);
  EXPECT_TRUE(AllClose(problem.a.grad(), {0.39999992f}, 1e-7));
  EXPECT_TRUE(AllClose(problem.b.grad(), {0.19999996f, -0.39999992f}, 1e-7));
  EXPECT_TRUE(AllClose(problem.c.grad(), {0.79999984f}, 1e-7));
  // Now the norm is just under 1: below a limit of 2 it is returned and nothing changes.
  EXPECT_NEAR(ClipGradNorm(problem.Named(), 2.0), 1.0f, 1e-6);
  EXPECT_TRUE(AllClose(problem.a.grad(), {0.39999992f}, 1e-7));
}

TEST(ClipGradNormTest, BelowTheLimitAndWithoutGradients) {
  Problem problem;
  EXPECT_EQ(ClipGradNorm(problem.Named(), 1.0), 0.0f);  // no gradients at all
  SetGrad(problem.b, {3.0f, 4.0f});                     // a and c have none: skipped
  EXPECT_FLOAT_EQ(ClipGradNorm(problem.Named(), 10.0), 5.0f);
  EXPECT_TRUE(AllClose(problem.b.grad(), {3.0f, 4.0f}, 0.0));
}

TEST(ClipGradNormTest, NonFiniteNormPropagates) {
  Problem problem;
  SetGrad(problem.b, {std::numeric_limits<float>::quiet_NaN(), 1.0f});
  EXPECT_TRUE(std::isnan(ClipGradNorm(problem.Named(), 1.0)));
}

TEST(ClipGradNormTest, SameResultOnAnyThreadCount) {
  const int64_t n = 300001;
  std::vector<float> values(n);
  for (int64_t i = 0; i < n; ++i) values[i] = std::sin(0.37f * static_cast<float>(i)) * 3.0f;
  const testing::ThreadCountRestorer restore_threads;
  std::vector<float> norms;
  for (int t : {1, 2, 3}) {
    SetNumThreads(t);
    Tensor p = Tensor::Zeros({n}).set_requires_grad(true);
    SetGrad(p, values);
    norms.push_back(ClipGradNorm({{"p", p}}, 1.0));
  }
  EXPECT_EQ(norms[0], norms[1]);
  EXPECT_EQ(norms[0], norms[2]);
  double expected = 0.0;
  for (float v : values) expected += static_cast<double>(v) * v;
  EXPECT_NEAR(norms[0], std::sqrt(expected), 1e-3);
}

// ---- Schedules ---------------------------------------------------------------------

TEST(ScheduleTest, InverseSqrtWarmupFollowsThePaper) {
  // rate = d_model^-0.5 * min(step^-0.5, step * warmup^-1.5), d_model 512, warmup 4000.
  const InverseSqrtWarmup schedule(512, 4000);
  auto paper = [](double step) {
    return std::pow(512.0, -0.5) * std::min(std::pow(step, -0.5), step * std::pow(4000.0, -1.5));
  };
  for (int64_t step : {1, 2, 100, 3999, 4000, 4001, 16000, 100000}) {
    EXPECT_NEAR(schedule.Rate(step), paper(static_cast<double>(step)), 1e-15) << step;
  }
  // Step 1: 512^-0.5 * 4000^-1.5 = 1.7469281e-7; the peak at step 4000: 512^-0.5 *
  // 4000^-0.5 = 6.9877124e-4; at 4 * warmup half the peak.
  EXPECT_NEAR(schedule.Rate(1), 1.746928107e-7, 1e-15);
  EXPECT_NEAR(schedule.Rate(4000), 6.987712430e-4, 1e-12);
  EXPECT_NEAR(schedule.Rate(16000), 6.987712430e-4 / 2, 1e-12);
  EXPECT_LT(schedule.Rate(3999), schedule.Rate(4000));
  EXPECT_LT(schedule.Rate(4001), schedule.Rate(4000));
  // The factor scales the whole curve.
  EXPECT_NEAR(InverseSqrtWarmup(512, 4000, 2.0).Rate(123), 2.0 * schedule.Rate(123), 1e-15);
}

TEST(ScheduleTest, LinearWarmupCosine) {
  // peak 1e-3, warmup 100, total 1100, min 1e-5.
  const LinearWarmupCosine schedule(1e-3, 100, 1100, 1e-5);
  EXPECT_NEAR(schedule.Rate(1), 1e-5, 1e-15);       // peak / warmup
  EXPECT_NEAR(schedule.Rate(50), 5e-4, 1e-15);      // half way up
  EXPECT_NEAR(schedule.Rate(100), 1e-3, 1e-15);     // start of the cosine: the peak
  EXPECT_NEAR(schedule.Rate(600), 5.05e-4, 1e-15);  // middle: (peak + min) / 2
  // A quarter into the decay: min + (peak - min) * (1 + cos(pi / 4)) / 2.
  EXPECT_NEAR(schedule.Rate(350), 1e-5 + 0.99e-3 * (1 + std::sqrt(0.5)) / 2, 1e-15);
  EXPECT_NEAR(schedule.Rate(1100), 1e-5, 1e-15);  // end: the minimum
  EXPECT_NEAR(schedule.Rate(5000), 1e-5, 1e-15);  // and after
  // No warmup: the cosine starts at step 0, so step 1 is just below the peak.
  const LinearWarmupCosine no_warmup(1.0, 0, 10, 0.0);
  EXPECT_NEAR(no_warmup.Rate(1), (1 + std::cos(std::numbers::pi / 10)) / 2, 1e-12);
}

TEST(ScheduleTest, ConstantAndInvalidSteps) {
  const Constant constant(3e-4);
  EXPECT_EQ(constant.Rate(1), 3e-4);
  EXPECT_EQ(constant.Rate(1000000), 3e-4);
  EXPECT_THROW(constant.Rate(0), Error);
  EXPECT_THROW(InverseSqrtWarmup(512, 4000).Rate(0), Error);
  EXPECT_THROW(LinearWarmupCosine(1.0, 10, 5), Error);  // total must exceed warmup
}

}  // namespace
}  // namespace attnlab
