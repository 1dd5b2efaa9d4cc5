// AttentionPooling, for both scorings: scores against the formulas written out as loops,
// the pooled output is the weighted sum of the steps, weights sum to one, padded steps
// get weight exactly 0 (and do not move the output), a fully padded row is zero and
// finite, gradients (input and every parameter) match finite differences with and
// without a mask, and bad score names and shapes are rejected.
#include "layers/attention_pooling.h"

#include <cmath>
#include <string>
#include <vector>

#include "framework/autograd/grad_mode.h"
#include "framework/ops/ops.h"
#include "gtest/gtest.h"
#include "tests/support/gradcheck.h"
#include "tests/support/named_parameter.h"
#include "tests/support/padding_mask.h"

namespace attnlab::nn {
namespace {

using testing::AllClose;
using testing::GradCheck;
using testing::NamedParameter;
using testing::PaddingMask;
using testing::RandomInput;

constexpr int64_t kBatch = 3, kTime = 5, kDim = 4, kHidden = 6;

// e_t from the paper's formulas with explicit loops, in double: [batch * time].
std::vector<double> NaiveScores(const AttentionPooling& pooling, const Tensor& x) {
  const std::vector<float> input = x.ToFloats();
  const int64_t batch = x.size(0), time = x.size(1), dim = x.size(2);
  std::vector<double> scores(batch * time, 0.0);
  for (int64_t row = 0; row < batch * time; ++row) {
    const float* step = input.data() + row * dim;
    if (pooling.score() == PoolingScore::kDot) {
      const std::vector<float> query = NamedParameter(pooling, "query").ToFloats();
      for (int64_t d = 0; d < dim; ++d) scores[row] += static_cast<double>(query[d]) * step[d];
      scores[row] /= std::sqrt(static_cast<double>(dim));
      continue;
    }
    const std::vector<float> weight = NamedParameter(pooling, "projection.weight").ToFloats();
    const std::vector<float> bias = NamedParameter(pooling, "projection.bias").ToFloats();
    const std::vector<float> v = NamedParameter(pooling, "score_vector").ToFloats();
    for (size_t h = 0; h < v.size(); ++h) {
      double pre_activation = bias[h];
      for (int64_t d = 0; d < dim; ++d)
        pre_activation += static_cast<double>(weight[h * dim + d]) * step[d];
      scores[row] += v[h] * std::tanh(pre_activation);
    }
  }
  return scores;
}

class AttentionPoolingTest : public ::testing::TestWithParam<std::string> {
 protected:
  AttentionPooling Make(int64_t hidden_size = kHidden) const {
    Generator generator(21);
    return AttentionPooling(kDim, *ParsePoolingScore(GetParam()), generator, hidden_size);
  }
};

TEST_P(AttentionPoolingTest, ParametersAreNamedAsDocumented) {
  const AttentionPooling pooling = Make();
  std::vector<std::string> names;
  for (const auto& [name, tensor] : pooling.NamedParameters()) names.push_back(name);
  if (GetParam() == "additive") {
    EXPECT_EQ(names,
              (std::vector<std::string>{"score_vector", "projection.weight", "projection.bias"}));
    EXPECT_EQ(NamedParameter(pooling, "projection.weight").shape(), (Shape{kHidden, kDim}));
  } else {
    EXPECT_EQ(names, (std::vector<std::string>{"query"}));
  }
}

TEST_P(AttentionPoolingTest, ScoresMatchTheFormula) {
  const AttentionPooling pooling = Make();
  const Tensor x = RandomInput({kBatch, kTime, kDim}, 1);
  const std::vector<double> expected = NaiveScores(pooling, x);
  EXPECT_TRUE(
      AllClose(pooling.Scores(x), std::vector<float>(expected.begin(), expected.end()), 1e-5));
}

TEST_P(AttentionPoolingTest, WeightsAreSoftmaxOfScoresAndSumToOne) {
  const AttentionPooling pooling = Make();
  const Tensor x = RandomInput({kBatch, kTime, kDim}, 2);
  const AttentionPoolingOutput output = pooling.Forward(x);
  ASSERT_EQ(output.weights.shape(), (Shape{kBatch, kTime}));
  const std::vector<double> scores = NaiveScores(pooling, x);
  const std::vector<float> weights = output.weights.ToFloats();
  for (int64_t b = 0; b < kBatch; ++b) {
    double normaliser = 0.0, total = 0.0;
    for (int64_t t = 0; t < kTime; ++t) normaliser += std::exp(scores[b * kTime + t]);
    for (int64_t t = 0; t < kTime; ++t) {
      EXPECT_NEAR(weights[b * kTime + t], std::exp(scores[b * kTime + t]) / normaliser, 1e-6);
      total += weights[b * kTime + t];
    }
    EXPECT_NEAR(total, 1.0, 1e-6) << "row " << b;
  }
}

TEST_P(AttentionPoolingTest, PooledIsTheWeightedSumOfSteps) {
  const AttentionPooling pooling = Make();
  const Tensor x = RandomInput({kBatch, kTime, kDim}, 3);
  const AttentionPoolingOutput output = pooling.Forward(x);
  ASSERT_EQ(output.pooled.shape(), (Shape{kBatch, kDim}));
  const std::vector<float> input = x.ToFloats(), weights = output.weights.ToFloats();
  std::vector<float> expected(kBatch * kDim, 0.0f);
  for (int64_t b = 0; b < kBatch; ++b)
    for (int64_t t = 0; t < kTime; ++t)
      for (int64_t d = 0; d < kDim; ++d)
        expected[b * kDim + d] += weights[b * kTime + t] * input[(b * kTime + t) * kDim + d];
  EXPECT_TRUE(AllClose(output.pooled, expected, 1e-5));
}

TEST_P(AttentionPoolingTest, PaddedStepsGetZeroWeightAndDoNotMoveTheOutput) {
  const AttentionPooling pooling = Make();
  const std::vector<int64_t> lengths = {5, 3, 1};
  const Tensor mask = PaddingMask(lengths, kTime);
  Tensor x = RandomInput({kBatch, kTime, kDim}, 4).detach();
  const AttentionPoolingOutput output = pooling.Forward(x, mask);
  const std::vector<float> weights = output.weights.ToFloats();
  for (int64_t b = 0; b < kBatch; ++b) {
    double total = 0.0;
    for (int64_t t = 0; t < kTime; ++t) {
      if (t >= lengths[b]) {
        EXPECT_EQ(weights[b * kTime + t], 0.0f) << "row " << b << " step " << t;
      }
      total += weights[b * kTime + t];
    }
    EXPECT_NEAR(total, 1.0, 1e-6) << "row " << b;
  }
  EXPECT_NEAR(weights[2 * kTime], 1.0f, 1e-6);  // one real step takes all the weight

  // Changing the padded steps changes nothing.
  Tensor changed = x.Clone();
  float* data = changed.data<float>();
  for (int64_t b = 0; b < kBatch; ++b)
    for (int64_t t = lengths[b]; t < kTime; ++t)
      for (int64_t d = 0; d < kDim; ++d) data[(b * kTime + t) * kDim + d] = 100.0f;
  EXPECT_TRUE(AllClose(pooling.Forward(changed, mask).pooled, output.pooled, 1e-6));
}

TEST_P(AttentionPoolingTest, FullyPaddedRowIsZeroAndFinite) {
  const AttentionPooling pooling = Make();
  const Tensor x = RandomInput({2, kTime, kDim}, 5);
  const AttentionPoolingOutput output = pooling.Forward(x, PaddingMask({0, 2}, kTime));
  const std::vector<float> weights = output.weights.ToFloats();
  const std::vector<float> pooled = output.pooled.ToFloats();
  for (int64_t t = 0; t < kTime; ++t) EXPECT_EQ(weights[t], 0.0f);
  for (int64_t d = 0; d < kDim; ++d) EXPECT_EQ(pooled[d], 0.0f);
  Sum(output.pooled).backward();
  for (const float gradient : x.grad().ToFloats()) EXPECT_TRUE(std::isfinite(gradient));
}

TEST_P(AttentionPoolingTest, GradientsMatchFiniteDifferences) {
  const AttentionPooling pooling = Make();
  const Tensor mask = PaddingMask({5, 2, 4}, kTime);
  // The pooled output and the weights, both checked through one function.
  auto pooled_and_weights = [&](const Tensor& x, const Tensor& key_padding_mask) {
    const AttentionPoolingOutput output = pooling.Forward(x, key_padding_mask);
    return Concat({output.pooled, output.weights}, 1);  // [batch, dim + time]
  };
  for (const Tensor& key_padding_mask : {Tensor(), mask}) {
    EXPECT_TRUE(GradCheck(
        [&](const std::vector<Tensor>& x) { return pooled_and_weights(x[0], key_padding_mask); },
        {RandomInput({kBatch, kTime, kDim}, 6)}))
        << "input gradient, mask " << key_padding_mask.defined();
    // Every parameter, perturbed in place through its handle.
    for (const auto& [name, parameter] : pooling.NamedParameters()) {
      const Tensor x = RandomInput({kBatch, kTime, kDim}, 7).detach();
      EXPECT_TRUE(GradCheck(
          [&](const std::vector<Tensor>&) { return pooled_and_weights(x, key_padding_mask); },
          {parameter}))
          << name << ", mask " << key_padding_mask.defined();
    }
  }
}

TEST_P(AttentionPoolingTest, WrongInputWidthThrows) {
  const AttentionPooling pooling = Make();
  EXPECT_THROW(pooling.Forward(Tensor::Zeros({2, 3, kDim + 1})), Error);
  EXPECT_THROW(pooling.Forward(Tensor::Zeros({2, kDim})), Error);
  EXPECT_THROW(pooling.Forward(Tensor::Zeros({2, 3, kDim}), Tensor::Zeros({2, 4})), Error);
}

INSTANTIATE_TEST_SUITE_P(Scores, AttentionPoolingTest, ::testing::Values("additive", "dot"));

TEST(AttentionPoolingScoreTest, NamesRoundTripAndUnknownNamesAreErrors) {
  for (const PoolingScore score : {PoolingScore::kAdditive, PoolingScore::kDot}) {
    EXPECT_EQ(*ParsePoolingScore(PoolingScoreName(score)), score);
  }
  const absl::StatusOr<PoolingScore> unknown = ParsePoolingScore("general");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("additive, dot"), std::string::npos)
      << unknown.status();
}

TEST(AttentionPoolingScoreTest, AdditiveHiddenSizeDefaultsToDim) {
  Generator generator(3);
  const AttentionPooling pooling(kDim, PoolingScore::kAdditive, generator);
  EXPECT_EQ(NamedParameter(pooling, "projection.weight").shape(), (Shape{kDim, kDim}));
}

}  // namespace
}  // namespace attnlab::nn
