// The relative-position variants, relative (Shaw et al. 2018) and t5_bias (Raffel et al.
// 2020): forward values against naive loops written from the papers' equations, T5's
// bucket function against values worked out by hand from its definition, and what
// defines them: the scores depend on the distance p_j - p_i alone, clipped (relative) or
// bucketed (t5_bias), so keys of equal content beyond the clip or within one bucket get
// equal weights, while moving the queries alone changes the weights. For cross-attention
// both are exactly scaled_dot. (That shifting every position together changes nothing,
// and the generic variant properties, are tested for every variant in attention_test.cc.)
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "framework/ops/ops.h"
#include "gtest/gtest.h"
#include "layers/attention/attention.h"
#include "layers/attention/t5_bias.h"
#include "tests/layers/naive_attention.h"
#include "tests/layers/tiny_attention_options.h"
#include "tests/support/gradcheck.h"
#include "tests/support/named_parameter.h"
#include "tests/support/padding_mask.h"

namespace attnlab::nn {
namespace {

using attnlab::testing::AllClose;
using attnlab::testing::NamedParameter;
using attnlab::testing::PaddingMask;
using attnlab::testing::RandomInput;
using testing::Array4;
using testing::NaiveWeights;
using testing::TinyAttentionVariantOptions;

constexpr int64_t kBatch = 2, kHeads = 2, kTgt = 3, kSrc = 5, kHeadDim = 4;
// The tiny options (tiny_attention_options.h): relative clips at k = 2; t5_bias has 8
// buckets up to distance 6.
constexpr int64_t kClip = 2, kBuckets = 8, kMaxDistance = 6;

// Built for self-attention unless told otherwise.
std::shared_ptr<Attention> MakeVariant(const std::string& name, int64_t heads = kHeads,
                                       AttentionRole role = AttentionRole::kSelf) {
  Generator generator(11);
  auto created = MakeAttention(name, AttentionShape{heads, kHeadDim, role}, generator,
                               TinyAttentionVariantOptions());
  EXPECT_TRUE(created.ok()) << created.status();
  (*created)->Eval();
  return *created;
}

// Self-attention inputs with padded keys (lengths {kSrc, 3}).
AttentionInputs SelfAttentionInputs(bool causal, int64_t query_offset, int64_t key_offset) {
  AttentionInputs inputs;
  inputs.query = RandomInput({kBatch, kHeads, kTgt, kHeadDim}, 30, -2.0f, 2.0f);
  inputs.key = RandomInput({kBatch, kHeads, kSrc, kHeadDim}, 31, -2.0f, 2.0f);
  inputs.value = RandomInput({kBatch, kHeads, kSrc, kHeadDim}, 32);
  inputs.key_padding_mask = PaddingMask({kSrc, 3}, kSrc);
  inputs.causal = causal;
  inputs.query_offset = query_offset;
  inputs.key_offset = key_offset;
  inputs.need_weights = true;
  return inputs;
}

const std::vector<int64_t> kLengths = {kSrc, 3};

// (query_offset, key_offset) pairs: aligned, a decoding cache that dropped a key, and
// queries ahead of the keys' start.
const std::vector<std::pair<int64_t, int64_t>> kOffsets = {{0, 0}, {3, 1}, {2, 0}};

double Dot(const Array4& a, const Array4& b, int64_t batch, int64_t head, int64_t i, int64_t j,
           int64_t dim) {
  double total = 0.0;
  for (int64_t c = 0; c < dim; ++c) total += a(batch, head, i, c) * b(batch, head, j, c);
  return total;
}

// ---- relative (Shaw et al. 2018) ------------------------------------------------------

TEST(RelativeAttentionTest, WeightsAndContextFollowShawEquations) {
  const auto variant = MakeVariant("relative");
  const int64_t distances = 2 * kClip + 1;
  const Array4 key_embedding(
      Reshape(NamedParameter(*variant, "relative_key_embedding"), {1, 1, distances, kHeadDim}));
  const Array4 value_embedding(
      Reshape(NamedParameter(*variant, "relative_value_embedding"), {1, 1, distances, kHeadDim}));
  for (const bool causal : {false, true}) {
    for (const auto& [query_offset, key_offset] : kOffsets) {
      const AttentionInputs inputs = SelfAttentionInputs(causal, query_offset, key_offset);
      const Array4 q(inputs.query), k(inputs.key), v(inputs.value);
      // clip(p_j - p_i, k) + k: the row of w^K, w^V (eq. 5-6)
      auto row = [&](int64_t i, int64_t j) {
        return std::clamp((j + key_offset) - (i + query_offset), -kClip, kClip) + kClip;
      };
      // e_ij = q_i . (k_j + a^K_ij) / sqrt(d_k) (eq. 4)
      auto score = [&](int64_t b, int64_t h, int64_t i, int64_t j) {
        double total = 0.0;
        for (int64_t c = 0; c < kHeadDim; ++c) {
          total += q(b, h, i, c) * (k(b, h, j, c) + key_embedding(0, 0, row(i, j), c));
        }
        return total / std::sqrt(static_cast<double>(kHeadDim));
      };
      const std::vector<float> weights =
          NaiveWeights(score, kLengths, causal, query_offset, kHeads, kTgt, kSrc, key_offset);
      // z_i = sum_j alpha_ij (v_j + a^V_ij) (eq. 3)
      std::vector<float> context;
      for (int64_t b = 0; b < kBatch; ++b) {
        for (int64_t h = 0; h < kHeads; ++h) {
          for (int64_t i = 0; i < kTgt; ++i) {
            for (int64_t c = 0; c < kHeadDim; ++c) {
              double total = 0.0;
              for (int64_t j = 0; j < kSrc; ++j) {
                const double alpha = weights[((b * kHeads + h) * kTgt + i) * kSrc + j];
                total += alpha * (v(b, h, j, c) + value_embedding(0, 0, row(i, j), c));
              }
              context.push_back(static_cast<float>(total));
            }
          }
        }
      }
      const AttentionOutput out = variant->Forward(inputs);
      const std::string where = std::string(causal ? "causal" : "non-causal") + ", offsets " +
                                std::to_string(query_offset) + ", " + std::to_string(key_offset);
      EXPECT_TRUE(AllClose(out.weights, weights, 1e-5)) << where;
      EXPECT_TRUE(AllClose(out.context, context, 1e-5)) << where;
    }
  }
}

// One query, six keys of equal content: the scores differ only by q . w^K of the clipped
// distances, so every key at or beyond the clip (k = 2) gets the same weight, and the
// context is sum_r (weight of the keys at r) w^V_r.
TEST(RelativeAttentionTest, DistancesBeyondTheClipShareAnEmbedding) {
  const auto variant = MakeVariant("relative", /*heads=*/1);
  const std::vector<float> value_rows =
      NamedParameter(*variant, "relative_value_embedding").ToFloats();  // [2k+1, d]
  const Tensor key_row = RandomInput({1, 1, 1, kHeadDim}, 33, -2.0f, 2.0f);
  AttentionInputs inputs;
  inputs.query = RandomInput({1, 1, 1, kHeadDim}, 34, -2.0f, 2.0f);
  inputs.key = Concat({key_row, key_row, key_row, key_row, key_row, key_row}, 2);
  inputs.value = Tensor::Zeros({1, 1, 6, kHeadDim});
  inputs.need_weights = true;
  // Query at position 0: distances 0..5 clip to 0, 1, 2, 2, 2, 2 (rows k, k+1, 2k, ...).
  // Query at position 5: distances -5..0 clip to -2, -2, -2, -2, -1, 0.
  for (const auto& [query_offset, shared, rows] :
       {std::tuple{int64_t{0}, std::vector<int64_t>{2, 3, 4, 5},
                   std::vector<int64_t>{2, 3, 4, 4, 4, 4}},
        std::tuple{int64_t{5}, std::vector<int64_t>{0, 1, 2, 3},
                   std::vector<int64_t>{0, 0, 0, 0, 1, 2}}}) {
    inputs.query_offset = query_offset;
    const AttentionOutput out = variant->Forward(inputs);
    const std::vector<float> w = out.weights.ToFloats();
    for (const int64_t j : shared) {
      EXPECT_EQ(w[j], w[shared[0]]) << "key " << j << ", query at " << query_offset;
    }
    // Inside the clip each distance has its own embedding.
    const int64_t own = query_offset == 0 ? 0 : 5, next = query_offset == 0 ? 1 : 4;
    EXPECT_NE(w[own], w[next]);
    EXPECT_NE(w[next], w[shared[0]]);
    std::vector<float> context(kHeadDim, 0.0f);
    for (int64_t j = 0; j < 6; ++j) {
      for (int64_t c = 0; c < kHeadDim; ++c)
        context[c] += w[j] * value_rows[rows[j] * kHeadDim + c];
    }
    EXPECT_TRUE(AllClose(out.context, context, 1e-6)) << "query at " << query_offset;
  }
}

// ---- t5_bias (Raffel et al. 2020) -----------------------------------------------------

struct BucketCase {
  int64_t relative_position;  // key position - query position
  int64_t bucket;
};

// T5's own setting, 32 buckets up to distance 128, encoder (bidirectional): 16 buckets
// per direction, max_exact = 8. A distance n >= 8 behind the query gets 8 + floor(log(n /
// 8) / log(128 / 8) * 8) = 8 + floor(2 log2(n / 8)): bucket 8 + m from n >= 8 * 2^(m/2),
// i.e. from 8, 11.3, 16, 22.6, 32, 45.3, 64, 90.5: the first distances of buckets 8..15
// are 8, 12, 16, 23, 32, 46, 64, 91. Keys after the query use buckets 16 + the same.
TEST(T5RelativePositionBucketTest, BidirectionalFollowsT5Definition) {
  const BucketCase cases[] = {{0, 0},     {-1, 1},    {-7, 7},     {-8, 8},   {-11, 8},  {-12, 9},
                              {-15, 9},   {-16, 10},  {-22, 10},   {-23, 11}, {-31, 11}, {-32, 12},
                              {-45, 12},  {-46, 13},  {-63, 13},   {-64, 14}, {-90, 14}, {-91, 15},
                              {-127, 15}, {-128, 15}, {-5000, 15}, {1, 17},   {7, 23},   {8, 24},
                              {12, 25},   {90, 30},   {91, 31},    {5000, 31}};
  for (const BucketCase& c : cases) {
    EXPECT_EQ(T5RelativePositionBucket(c.relative_position, /*bidirectional=*/true, 32, 128),
              c.bucket)
        << "relative position " << c.relative_position;
  }
}

// Decoder (unidirectional), 32 buckets up to 128: max_exact = 16; n >= 16 gets 16 +
// floor(log(n / 16) / log(8) * 16) = 16 + floor(16/3 log2(n / 16)): bucket 16 + m from
// n >= 16 * 2^(3m / 16), i.e. 16, 18.3, 20.7, ..., 98.7 (m = 14), 112.4 (m = 15). Keys
// after the query (never seen under the causal mask) share bucket 0.
TEST(T5RelativePositionBucketTest, UnidirectionalFollowsT5Definition) {
  const BucketCase cases[] = {{0, 0},     {-15, 15},  {-16, 16},   {-18, 16}, {-19, 17},
                              {-20, 17},  {-21, 18},  {-98, 29},   {-99, 30}, {-112, 30},
                              {-113, 31}, {-128, 31}, {-1000, 31}, {1, 0},    {50, 0}};
  for (const BucketCase& c : cases) {
    EXPECT_EQ(T5RelativePositionBucket(c.relative_position, /*bidirectional=*/false, 32, 128),
              c.bucket)
        << "relative position " << c.relative_position;
  }
}

// The tests' tiny setting, 8 buckets up to 6. Bidirectional: max_exact = 2, log part
// 2 + floor(log(n / 2) / log(3) * 2): n = 2, 3 -> 2; n = 4, 5 -> 3; n >= 6 -> 3 (last).
// Unidirectional: max_exact = 4, 4 + floor(log(n / 4) / log(1.5) * 4): n = 4 -> 4,
// n = 5 -> 6 (log(1.25) / log(1.5) * 4 = 2.2); n >= 6 -> 7.
TEST(T5RelativePositionBucketTest, SmallSettingsFollowT5Definition) {
  const BucketCase bidirectional[] = {{-1, 1}, {-2, 2}, {-3, 2}, {-4, 3}, {-5, 3}, {-9, 3},
                                      {1, 5},  {2, 6},  {3, 6},  {4, 7},  {9, 7}};
  for (const BucketCase& c : bidirectional) {
    EXPECT_EQ(T5RelativePositionBucket(c.relative_position, true, 8, 6), c.bucket)
        << "relative position " << c.relative_position;
  }
  const BucketCase unidirectional[] = {{-3, 3}, {-4, 4}, {-5, 6}, {-6, 7}, {-9, 7}};
  for (const BucketCase& c : unidirectional) {
    EXPECT_EQ(T5RelativePositionBucket(c.relative_position, false, 8, 6), c.bucket)
        << "relative position " << c.relative_position;
  }
}

TEST(T5BiasAttentionTest, WeightsMatchScaledDotPlusBucketBias) {
  const auto variant = MakeVariant("t5_bias");
  const Array4 table(
      Reshape(NamedParameter(*variant, "relative_attention_bias"), {1, 1, kBuckets, kHeads}));
  for (const bool causal : {false, true}) {
    for (const auto& [query_offset, key_offset] : kOffsets) {
      const AttentionInputs inputs = SelfAttentionInputs(causal, query_offset, key_offset);
      const Array4 q(inputs.query), k(inputs.key);
      auto score = [&](int64_t b, int64_t h, int64_t i, int64_t j) {
        const int64_t bucket = T5RelativePositionBucket((j + key_offset) - (i + query_offset),
                                                        !causal, kBuckets, kMaxDistance);
        return Dot(q, k, b, h, i, j, kHeadDim) / std::sqrt(static_cast<double>(kHeadDim)) +
               table(0, 0, bucket, h);
      };
      EXPECT_TRUE(AllClose(
          variant->Forward(inputs).weights,
          NaiveWeights(score, kLengths, causal, query_offset, kHeads, kTgt, kSrc, key_offset),
          1e-5))
          << (causal ? "causal" : "non-causal") << ", offsets " << query_offset << ", "
          << key_offset;
    }
  }
}

// Zero queries: the weights are the softmax of the bias alone, so keys in one bucket get
// exactly equal weights, and neighbouring buckets (different learned values) do not.
TEST(T5BiasAttentionTest, KeysInOneBucketGetTheSameBias) {
  const auto variant = MakeVariant("t5_bias");
  AttentionInputs inputs;
  inputs.query = Tensor::Zeros({1, kHeads, 1, kHeadDim});
  inputs.key = RandomInput({1, kHeads, 12, kHeadDim}, 35);
  inputs.value = RandomInput({1, kHeads, 12, kHeadDim}, 36);
  inputs.query_offset = 7;  // one query at position 7, keys at 0..11
  inputs.need_weights = true;
  // Groups of keys sharing a bucket, in bucket order (see SmallSettingsFollowT5Definition).
  // Encoder: behind by 0 | 1 | 2, 3 | 4.. 7; ahead by 1 | 2, 3 | 4.
  const std::vector<std::vector<int64_t>> encoder = {{7}, {6},     {5, 4}, {3, 2, 1, 0},
                                                     {8}, {9, 10}, {11}};
  // Decoder (causal, keys 0..7 visible): behind by 0 | 1 | 2 | 3 | 4 | 5 | 6, 7.
  const std::vector<std::vector<int64_t>> decoder = {{7}, {6}, {5}, {4}, {3}, {2}, {1, 0}};
  for (const bool causal : {false, true}) {
    inputs.causal = causal;
    const std::vector<float> w = variant->Forward(inputs).weights.ToFloats();  // [1, h, 1, 12]
    for (int64_t h = 0; h < kHeads; ++h) {
      const float* head = w.data() + h * 12;
      const auto& groups = causal ? decoder : encoder;
      for (size_t g = 0; g < groups.size(); ++g) {
        for (const int64_t j : groups[g]) {
          EXPECT_EQ(head[j], head[groups[g][0]]) << "head " << h << ", key " << j;
        }
        if (g > 0) {
          EXPECT_NE(head[groups[g][0]], head[groups[g - 1][0]]) << "head " << h << ", group " << g;
        }
      }
    }
  }
}

// ---- Both ------------------------------------------------------------------------------

class RelativePositionVariantTest : public ::testing::TestWithParam<std::string> {};

// The positions enter only through p_j - p_i: moving the queries alone changes the
// weights (the generic ShiftingEveryPositionChangesNothing moves queries and keys).
TEST_P(RelativePositionVariantTest, MovingTheQueriesAloneChangesTheWeights) {
  const auto variant = MakeVariant(GetParam());
  for (const bool causal : {false, true}) {
    const Tensor aligned = variant->Forward(SelfAttentionInputs(causal, 2, 0)).weights;
    const Tensor moved = variant->Forward(SelfAttentionInputs(causal, 3, 0)).weights;
    EXPECT_FALSE(AllClose(moved, aligned, 1e-3)) << (causal ? "causal" : "non-causal");
  }
}

// Built for cross-attention (keys from another sequence): no position term and no
// position parameters at all, scaled_dot bit for bit.
TEST_P(RelativePositionVariantTest, CrossAttentionIsScaledDot) {
  const auto variant = MakeVariant(GetParam(), kHeads, AttentionRole::kCross);
  EXPECT_TRUE(variant->Parameters().empty());
  const auto scaled_dot = MakeVariant("scaled_dot");
  const AttentionInputs inputs = SelfAttentionInputs(false, 2, 0);
  const AttentionOutput out = variant->Forward(inputs), expected = scaled_dot->Forward(inputs);
  EXPECT_EQ(out.weights.ToFloats(), expected.weights.ToFloats());
  EXPECT_EQ(out.context.ToFloats(), expected.context.ToFloats());
}

INSTANTIATE_TEST_SUITE_P(Variants, RelativePositionVariantTest,
                         ::testing::Values("relative", "t5_bias"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace attnlab::nn
