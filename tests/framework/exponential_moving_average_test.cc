// The exponential moving average of parameters against averages worked out by hand and
// against its closed form, the arena and per-parameter loops against each other, the
// swap, strict loading, and the allocation-free steady state.
#include "framework/optim/exponential_moving_average.h"

#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "framework/core/error.h"
#include "framework/tensor/allocator.h"
#include "framework/tensor/flat_arena.h"
#include "gtest/gtest.h"
#include "tests/support/bit_identical.h"

namespace attnlab {
namespace {

void SetValues(const Tensor& parameter, const std::vector<float>& values) {
  ASSERT_EQ(parameter.numel(), static_cast<int64_t>(values.size()));
  std::memcpy(parameter.data<float>(), values.data(), values.size() * sizeof(float));
}

bool SameBits(const Tensor& a, const Tensor& b) {
  return testing::BitIdentical(a.ToFloats(), b.ToFloats());
}

// Two parameters, a [2] and b [3]: each takes a 16-float slice of the buffer, mostly padding.
struct Parameters {
  Tensor a = Tensor::Zeros({2}).set_requires_grad(true);
  Tensor b = Tensor::Zeros({3}).set_requires_grad(true);
  NamedTensors Named() const { return {{"a", a}, {"b", b}}; }
};

// d = 0.5, a[0] takes the values 4, 8, 2 before updates 1, 2, 3:
//   after 1: 4                                                      (beta_1 = 0)
//   after 2: (0.5 * 0.5 * 4 + 0.5 * 8) / (1 - 0.25) = 5 / 0.75 = 20/3
//   after 3: (0.5 * 0.25 * 4 + 0.5 * 0.5 * 8 + 0.5 * 2) / (1 - 0.125) = 3.5 / 0.875 = 4
// and a[1] stays at 3 (an unmoving weight's average is exactly it).
TEST(ExponentialMovingAverage, BiasCorrectedAverageOfATrajectoryWorkedByHand) {
  Parameters parameters;
  SetValues(parameters.a, {-100.0f, 3.0f});  // the initial weights: not in any average
  ExponentialMovingAverage ema(parameters.Named(), 0.5);
  const Tensor& average = ema.average()[0].second;
  EXPECT_EQ(ema.average()[0].first, "a");
  EXPECT_EQ(average.ToFloats(), (std::vector<float>{-100.0f, 3.0f}));  // starts at the weights

  SetValues(parameters.a, {4.0f, 3.0f});
  ema.Update(1);
  EXPECT_EQ(average.ToFloats(), (std::vector<float>{4.0f, 3.0f}));
  SetValues(parameters.a, {8.0f, 3.0f});
  ema.Update(2);
  EXPECT_FLOAT_EQ(average.ToFloats()[0], 20.0f / 3.0f);
  EXPECT_EQ(average.ToFloats()[1], 3.0f);
  SetValues(parameters.a, {2.0f, 3.0f});
  ema.Update(3);
  EXPECT_FLOAT_EQ(average.ToFloats()[0], 4.0f);
  EXPECT_EQ(average.ToFloats()[1], 3.0f);
}

// Many updates with d = 0.9 against sum_i (1 - d) d^(t-i) w_i / (1 - d^t) in double.
TEST(ExponentialMovingAverage, FollowsItsClosedFormOverALongTrajectory) {
  Parameters parameters;
  const double d = 0.9;
  ExponentialMovingAverage ema(parameters.Named(), d);
  std::vector<std::vector<float>> trajectory;  // b's values before each update
  for (int t = 1; t <= 200; ++t) {
    const std::vector<float> values = {std::sin(0.1f * t), 1.0f + 0.01f * t, -0.5f * t};
    trajectory.push_back(values);
    SetValues(parameters.b, values);
    ema.Update(t);
    for (size_t element = 0; element < values.size(); ++element) {
      double sum = 0.0;
      for (int i = 1; i <= t; ++i) {
        sum += (1.0 - d) * std::pow(d, t - i) * trajectory[i - 1][element];
      }
      const double expected = sum / (1.0 - std::pow(d, t));
      ASSERT_NEAR(ema.average()[1].second.ToFloats()[element], expected,
                  2e-6 * std::max(1.0, std::abs(expected)))
          << "update " << t << ", element " << element;
    }
  }
}

TEST(ExponentialMovingAverage, DecayZeroIsTheWeightsThemselves) {
  Parameters parameters;
  ExponentialMovingAverage ema(parameters.Named(), 0.0);
  SetValues(parameters.b, {1.5f, -2.0f, 7.0f});
  ema.Update(1);
  SetValues(parameters.b, {0.25f, 9.0f, -3.0f});
  ema.Update(2);
  EXPECT_TRUE(SameBits(ema.average()[1].second, parameters.b));
}

TEST(ExponentialMovingAverage, ArenaLoopAndPerParameterLoopAgreeBitForBit) {
  Parameters loose, pooled;
  FlatArena arena = FlatArena::Adopt(pooled.Named());
  ExponentialMovingAverage over_parameters(loose.Named(), 0.99);
  ExponentialMovingAverage over_arena(pooled.Named(), 0.99, &arena);
  for (int t = 1; t <= 20; ++t) {
    const std::vector<float> a = {0.3f * t, 1.0f / t}, b = {std::cos(1.0f * t), -0.7f * t, 2.0f};
    SetValues(loose.a, a);
    SetValues(loose.b, b);
    SetValues(pooled.a, a);
    SetValues(pooled.b, b);
    over_parameters.Update(t);
    over_arena.Update(t);
  }
  for (size_t p = 0; p < 2; ++p) {
    EXPECT_TRUE(SameBits(over_parameters.average()[p].second, over_arena.average()[p].second))
        << over_parameters.average()[p].first;
  }
}

TEST(ExponentialMovingAverage, SwapExchangesAverageAndWeightsAndBackExactly) {
  for (const bool in_arena : {false, true}) {
    Parameters parameters;
    std::optional<FlatArena> arena;
    if (in_arena) arena.emplace(FlatArena::Adopt(parameters.Named()));
    SetValues(parameters.a, {1.0f, 2.0f});
    SetValues(parameters.b, {3.0f, 4.0f, 5.0f});
    ExponentialMovingAverage ema(parameters.Named(), 0.5, arena ? &*arena : nullptr);
    SetValues(parameters.a, {10.0f, 20.0f});
    SetValues(parameters.b, {30.0f, 40.0f, 50.0f});
    ema.Update(2);  // beta_2 = 1/3: 1/3 of the initial values, 2/3 of the new ones
    const std::vector<float> average_a = ema.average()[0].second.ToFloats();
    EXPECT_FLOAT_EQ(average_a[0], 7.0f);
    {
      const AverageSwappedIn swapped(ema);
      EXPECT_EQ(parameters.a.ToFloats(), average_a) << in_arena;
      EXPECT_EQ(ema.average()[0].second.ToFloats(), (std::vector<float>{10.0f, 20.0f}));
    }
    EXPECT_EQ(parameters.a.ToFloats(), (std::vector<float>{10.0f, 20.0f}));
    EXPECT_EQ(parameters.b.ToFloats(), (std::vector<float>{30.0f, 40.0f, 50.0f}));
    EXPECT_EQ(ema.average()[0].second.ToFloats(), average_a);
  }
}

TEST(ExponentialMovingAverage, LoadIsStrictAndChangesNothingOnError) {
  Parameters parameters;
  SetValues(parameters.a, {1.0f, 2.0f});
  ExponentialMovingAverage ema(parameters.Named(), 0.9);
  const absl::Status wrong = ema.Load({{"a", Tensor::Zeros({3})}, {"c", Tensor::Zeros({1})}});
  EXPECT_EQ(wrong.code(), absl::StatusCode::kInvalidArgument);
  for (const char* part : {"3 problems", "missing \"b\"", "unexpected \"c\"", "\"a\""}) {
    EXPECT_NE(wrong.message().find(part), std::string::npos) << wrong.message();
  }
  EXPECT_EQ(ema.average()[0].second.ToFloats(), (std::vector<float>{1.0f, 2.0f}));

  ASSERT_TRUE(ema.Load({{"a", Tensor::FromFloats(std::vector<float>{5.0f, 6.0f}, {2})},
                        {"b", Tensor::Full({3}, 7.0f)}})
                  .ok());
  EXPECT_EQ(ema.average()[0].second.ToFloats(), (std::vector<float>{5.0f, 6.0f}));
  EXPECT_EQ(ema.average()[1].second.ToFloats(), (std::vector<float>{7.0f, 7.0f, 7.0f}));
}

TEST(ExponentialMovingAverage, UpdatesAndSwapsAllocateNothing) {
  Parameters parameters;
  ExponentialMovingAverage ema(parameters.Named(), 0.999);
  const AllocatorStats before = CachingAllocator::Global().Stats();
  for (int t = 1; t <= 5; ++t) {
    ema.Update(t);
    ema.SwapWithParameters();
    ema.SwapWithParameters();
  }
  const AllocatorStats after = CachingAllocator::Global().Stats();
  EXPECT_EQ(after.allocations, before.allocations);
  EXPECT_EQ(after.system_allocations, before.system_allocations);
}

TEST(ExponentialMovingAverage, ADecayOfOneOrAStepZeroIsAProgrammingError) {
  Parameters parameters;
  EXPECT_THROW(ExponentialMovingAverage(parameters.Named(), 1.0), Error);
  ExponentialMovingAverage ema(parameters.Named(), 0.5);
  EXPECT_THROW(ema.Update(0), Error);
}

}  // namespace
}  // namespace attnlab
