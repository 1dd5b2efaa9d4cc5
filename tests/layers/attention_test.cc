// Attention variants and multi-head attention. Every registered variant (AttentionNames(),
// so a new variant is tested as soon as it is linked in), with its options scaled to the
// tiny sizes (tiny_attention_options.h), runs through MultiHeadAttention with and
// without rotary positions, and must satisfy what the papers imply: gradients match
// finite differences (inputs and every parameter; cross-, causal and padded
// self-attention), weight rows sum to one, padded keys get weight exactly 0, a fully
// padded row stays finite, causal outputs ignore the future, incremental decoding equals
// full recomputation (self- and cross-attention, also when the variant's CacheWindow()
// trims the cache), one head equals the variant called directly, the context is the
// weighted sum of the values, and shifting every query and key position by the same
// amount changes nothing. The variants added with their papers' formulas (general,
// additive, alibi, linear) are also checked against naive loops here; relative, t5_bias
// and local have files of their own.
#include "layers/attention/attention.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "framework/autograd/grad_mode.h"
#include "framework/autograd/node.h"
#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/ops/mixed_precision.h"
#include "framework/ops/op_kind.h"
#include "framework/ops/ops.h"
#include "framework/random/generator.h"
#include "gtest/gtest.h"
#include "layers/attention/multi_head.h"
#include "tests/layers/naive_attention.h"
#include "tests/layers/tiny_attention_options.h"
#include "tests/support/gradcheck.h"
#include "tests/support/named_parameter.h"
#include "tests/support/padding_mask.h"

namespace attnlab::nn {
namespace {

using attnlab::testing::AllClose;
using attnlab::testing::GradCheck;
using attnlab::testing::NamedParameter;
using attnlab::testing::PaddingMask;
using attnlab::testing::RandomInput;
using testing::Array4;
using testing::NaiveWeights;
using testing::TinyAttentionVariantOptions;

constexpr int64_t kBatch = 2, kHeads = 2, kModel = 8, kTgt = 3, kSrc = 4;
constexpr int64_t kHeadDim = kModel / kHeads;

// ---- Helpers -----------------------------------------------------------------------

std::shared_ptr<MultiHeadAttention> MakeMultiHead(const std::string& variant, AttentionRole role,
                                                  bool rotary, int64_t heads = kHeads) {
  AttentionOptions options;
  options.heads = heads;
  options.variant = variant;
  options.variant_options = TinyAttentionVariantOptions();
  Generator generator(7);
  auto created = MultiHeadAttention::Create(kModel, options, role, rotary, generator);
  EXPECT_TRUE(created.ok()) << created.status();
  (*created)->Eval();
  return *created;
}

std::shared_ptr<Attention> MakeVariant(const std::string& name, int64_t heads = kHeads,
                                       int64_t head_dim = kHeadDim,
                                       AttentionRole role = AttentionRole::kCross) {
  Generator generator(11);
  auto created = MakeAttention(name, AttentionShape{heads, head_dim, role}, generator,
                               TinyAttentionVariantOptions());
  EXPECT_TRUE(created.ok()) << created.status();
  (*created)->Eval();
  return *created;
}

// GradCheck of `function` with respect to `inputs` and every parameter of `module`. The
// parameters are appended to GradCheck's input list, which perturbs them in place (the
// list holds handles to the module's own tensors); `function` sees only the inputs and
// reads the parameters through the module.
::testing::AssertionResult GradCheckWithParameters(
    const Module& module, const std::vector<Tensor>& inputs,
    const std::function<Tensor(const std::vector<Tensor>&)>& function) {
  std::vector<Tensor> all = inputs;
  for (const Tensor& parameter : module.Parameters()) all.push_back(parameter);
  const size_t input_count = inputs.size();
  return GradCheck(
      [&](const std::vector<Tensor>& x) {
        return function(std::vector<Tensor>(x.begin(), x.begin() + input_count));
      },
      all);
}

bool AllFinite(const Tensor& t) {
  for (const float value : t.ToFloats()) {
    if (!std::isfinite(value)) return false;
  }
  return true;
}

// ---- Every variant through MultiHeadAttention, with and without rotary ------------

struct VariantCase {
  std::string variant;
  bool rotary;
};

// How ctest and gtest show a case (instead of its raw bytes).
void PrintTo(const VariantCase& c, std::ostream* out) {
  *out << c.variant << (c.rotary ? " with rotary positions" : "");
}

class AttentionVariantTest : public ::testing::TestWithParam<VariantCase> {
 protected:
  // Self-attention (queries, keys and values one sequence) or cross-attention.
  std::shared_ptr<MultiHeadAttention> MultiHead(AttentionRole role, int64_t heads = kHeads) const {
    return MakeMultiHead(GetParam().variant, role, GetParam().rotary, heads);
  }
};

TEST_P(AttentionVariantTest, CrossAttentionGradientsMatchFiniteDifferences) {
  const auto attention = MultiHead(AttentionRole::kCross);
  const Tensor padding = PaddingMask({kSrc, 2}, kSrc);
  EXPECT_TRUE(GradCheckWithParameters(
      *attention,
      {RandomInput({kBatch, kTgt, kModel}, 1), RandomInput({kBatch, kSrc, kModel}, 2),
       RandomInput({kBatch, kSrc, kModel}, 3)},
      [&](const std::vector<Tensor>& x) {
        MultiHeadAttentionCall call;
        call.query = x[0];
        call.key = x[1];
        call.value = x[2];
        call.key_padding_mask = padding;
        return attention->Forward(call).output;
      }));
}

// model.key_size (Table 3, row B of Vaswani et al. 2017): heads x key_size need not be
// d_model; the projections map d_model to 2 x 6 = 12 and back.
TEST_P(AttentionVariantTest, AKeySizeSetsTheProjectionWidths) {
  AttentionOptions options;
  options.heads = kHeads;
  options.key_size = 6;
  options.variant = GetParam().variant;
  options.variant_options = TinyAttentionVariantOptions();
  Generator generator(7);
  auto created = MultiHeadAttention::Create(kModel, options, AttentionRole::kCross,
                                            GetParam().rotary, generator);
  ASSERT_TRUE(created.ok()) << created.status();
  const auto attention = *created;
  attention->Eval();
  EXPECT_EQ(NamedParameter(*attention, "q_proj.weight").shape(), (Shape{12, kModel}));
  EXPECT_EQ(NamedParameter(*attention, "v_proj.weight").shape(), (Shape{12, kModel}));
  EXPECT_EQ(NamedParameter(*attention, "out_proj.weight").shape(), (Shape{kModel, 12}));
  const Tensor padding = PaddingMask({kSrc, 2}, kSrc);
  EXPECT_TRUE(GradCheckWithParameters(
      *attention, {RandomInput({kBatch, kTgt, kModel}, 1), RandomInput({kBatch, kSrc, kModel}, 2)},
      [&](const std::vector<Tensor>& x) {
        MultiHeadAttentionCall call;
        call.query = x[0];
        call.key = call.value = x[1];
        call.key_padding_mask = padding;
        const Tensor output = attention->Forward(call).output;
        EXPECT_EQ(output.shape(), (Shape{kBatch, kTgt, kModel}));
        return output;
      }));
}

TEST_P(AttentionVariantTest, CausalSelfAttentionGradientsMatchFiniteDifferences) {
  const auto attention = MultiHead(AttentionRole::kSelf);
  EXPECT_TRUE(GradCheckWithParameters(*attention, {RandomInput({kBatch, kSrc, kModel}, 4)},
                                      [&](const std::vector<Tensor>& x) {
                                        MultiHeadAttentionCall call;
                                        call.query = call.key = call.value = x[0];
                                        call.causal = true;
                                        return attention->Forward(call).output;
                                      }));
}

TEST_P(AttentionVariantTest, WeightRowsSumToOneAndPaddedKeysGetZeroWeight) {
  const auto attention = MultiHead(AttentionRole::kCross);
  const std::vector<int64_t> lengths = {kSrc, 2};
  MultiHeadAttentionCall call;
  call.query = RandomInput({kBatch, kTgt, kModel}, 5);
  call.key = call.value = RandomInput({kBatch, kSrc, kModel}, 6);
  call.key_padding_mask = PaddingMask(lengths, kSrc);
  call.need_weights = true;
  const Tensor weights = attention->Forward(call).weights;
  ASSERT_TRUE(weights.defined());
  ASSERT_EQ(weights.shape(), (Shape{kBatch, kHeads, kTgt, kSrc}));
  const std::vector<float> w = weights.ToFloats();
  for (int64_t row = 0; row < kBatch * kHeads * kTgt; ++row) {
    const int64_t b = row / (kHeads * kTgt);
    double total = 0.0;
    for (int64_t s = 0; s < kSrc; ++s) {
      const float weight = w[row * kSrc + s];
      EXPECT_GE(weight, 0.0f);
      if (s >= lengths[b]) {
        EXPECT_EQ(weight, 0.0f) << "padded key " << s << " of row " << row;
      }
      total += weight;
    }
    EXPECT_NEAR(total, 1.0, 1e-5) << "row " << row;
  }
}

TEST_P(AttentionVariantTest, CausalWeightsAreZeroOnFutureKeys) {
  const auto attention = MultiHead(AttentionRole::kSelf);
  MultiHeadAttentionCall call;
  call.query = call.key = call.value = RandomInput({kBatch, kSrc, kModel}, 7);
  call.causal = true;
  call.need_weights = true;
  const std::vector<float> w = attention->Forward(call).weights.ToFloats();
  for (int64_t row = 0; row < kBatch * kHeads * kSrc; ++row) {
    const int64_t t = row % kSrc;
    double total = 0.0;
    for (int64_t s = 0; s < kSrc; ++s) {
      if (s > t) {
        EXPECT_EQ(w[row * kSrc + s], 0.0f) << "future key " << s << " of query " << t;
      }
      total += w[row * kSrc + s];
    }
    EXPECT_NEAR(total, 1.0, 1e-5);
  }
}

TEST_P(AttentionVariantTest, FullyPaddedBatchRowGivesFiniteOutputAndGradients) {
  const auto attention = MultiHead(AttentionRole::kCross);
  const Tensor query = RandomInput({kBatch, kTgt, kModel}, 8);
  const Tensor memory = RandomInput({kBatch, kSrc, kModel}, 9);
  MultiHeadAttentionCall call;
  call.query = query;
  call.key = call.value = memory;
  call.key_padding_mask = PaddingMask({kSrc, 0}, kSrc);  // batch row 1: every key is padding
  call.need_weights = true;
  const MultiHeadAttentionOutput out = attention->Forward(call);
  EXPECT_TRUE(AllFinite(out.output));
  EXPECT_TRUE(AllFinite(out.weights));
  // The padded row's weights are all zero.
  const Tensor padded_row_weights = Narrow(out.weights, 0, 1, 1);
  EXPECT_TRUE(AllClose(padded_row_weights, std::vector<float>(kHeads * kTgt * kSrc, 0.0f), 0.0));
  Sum(out.output).backward();
  EXPECT_TRUE(AllFinite(query.grad()));
  EXPECT_TRUE(AllFinite(memory.grad()));
  for (const Tensor& parameter : attention->Parameters()) {
    if (parameter.grad().defined()) {
      EXPECT_TRUE(AllFinite(parameter.grad()));
    }
  }
}

TEST_P(AttentionVariantTest, CausalOutputAtTIgnoresInputsAfterT) {
  const auto attention = MultiHead(AttentionRole::kSelf);
  NoGradGuard no_grad;
  const Tensor x = RandomInput({kBatch, kSrc, kModel}, 10).detach();
  auto run = [&](const Tensor& input) {
    MultiHeadAttentionCall call;
    call.query = call.key = call.value = input;
    call.causal = true;
    return attention->Forward(call).output;
  };
  const Tensor reference = run(x);
  for (int64_t t = 0; t < kSrc; ++t) {
    // Changes the inputs from position `from` on.
    auto perturbed_from = [&](int64_t from) {
      Tensor changed = x.Clone();
      float* values = changed.data<float>();
      for (int64_t b = 0; b < kBatch; ++b) {
        for (int64_t s = from; s < kSrc; ++s) {
          for (int64_t c = 0; c < kModel; ++c)
            values[(b * kSrc + s) * kModel + c] += 0.5f + 0.1f * c;
        }
      }
      return run(changed);
    };
    if (t + 1 < kSrc) {
      EXPECT_TRUE(AllClose(Narrow(perturbed_from(t + 1), 1, 0, t + 1),
                           Narrow(reference, 1, 0, t + 1).contiguous(), 1e-6))
          << "output up to " << t << " moved when inputs after it changed";
    }
    // And the test can fail: changing position t itself does move output t.
    const std::vector<float> moved = Narrow(perturbed_from(t), 1, t, 1).ToFloats();
    const std::vector<float> before = Narrow(reference, 1, t, 1).ToFloats();
    double difference = 0.0;
    for (size_t i = 0; i < moved.size(); ++i) difference += std::abs(moved[i] - before[i]);
    EXPECT_GT(difference, 1e-4) << "output " << t << " ignores its own input";
  }
}

// With a CacheWindow() (local attention) the cache drops the keys no later query can
// see: each step's weights are then the full weights' rows over the keys still cached.
TEST_P(AttentionVariantTest, IncrementalSelfAttentionEqualsFullRecomputation) {
  const auto attention = MultiHead(AttentionRole::kSelf);
  NoGradGuard no_grad;
  const Tensor x = RandomInput({kBatch, kSrc, kModel}, 11).detach();
  MultiHeadAttentionCall full_call;
  full_call.query = full_call.key = full_call.value = x;
  full_call.causal = true;
  full_call.need_weights = true;
  const MultiHeadAttentionOutput full = attention->Forward(full_call);

  // A two-token prompt, then one token at a time.
  KeyValueCache cache;
  std::vector<Tensor> steps;
  int64_t position = 0;
  for (const int64_t length : {int64_t{2}, int64_t{1}, int64_t{1}}) {
    MultiHeadAttentionCall step;
    step.query = step.key = step.value = Narrow(x, 1, position, length).contiguous();
    step.causal = true;
    step.cache = &cache;
    step.need_weights = true;
    const int64_t first_key = cache.key_offset;
    const MultiHeadAttentionOutput out = attention->Forward(step);
    steps.push_back(out.output);
    const Tensor expected_weights = Narrow(Narrow(full.weights, 2, position, length), 3, first_key,
                                           position + length - first_key)
                                        .contiguous();
    EXPECT_TRUE(AllClose(out.weights, expected_weights, 1e-5)) << "step at " << position;
    position += length;
    EXPECT_EQ(cache.key_offset + cache.key.size(2), position);
  }
  const std::optional<int64_t> window = attention->variant().CacheWindow();
  EXPECT_EQ(cache.key.size(2), window.has_value() ? std::min(*window, kSrc) : kSrc);
  EXPECT_TRUE(AllClose(Concat(steps, 1), full.output, 1e-5));
}

// ---- The decoding cache ---------------------------------------------------------------

// Outside the graph, self-attention appends into buffers that double when full: the
// cache always equals everything appended so far, and the buffers are replaced only when
// full (16 positions, then twice the length that overflowed them).
TEST(KeyValueCacheTest, AppendsInPlaceAndGrowsByDoubling) {
  NoGradGuard no_grad;
  KeyValueCache cache;
  std::vector<Tensor> keys, values;
  std::vector<int64_t> capacities;
  for (int64_t step = 0; step < 40; ++step) {
    const int64_t added = step == 0 ? 3 : 1;  // a 3-token prompt, then one token a step
    keys.push_back(RandomInput({2, 3, added, 4}, 100 + step).detach());
    values.push_back(RandomInput({2, 3, added, 4}, 200 + step).detach());
    AppendToCache(cache, keys.back(), values.back());
    EXPECT_EQ(cache.key.ToFloats(), Concat(keys, 2).ToFloats()) << "step " << step;
    EXPECT_EQ(cache.value.ToFloats(), Concat(values, 2).ToFloats()) << "step " << step;
    EXPECT_EQ(cache.key.impl()->storage, cache.key_buffer.impl()->storage);
    if (capacities.empty() || capacities.back() != cache.key_buffer.size(2)) {
      capacities.push_back(cache.key_buffer.size(2));
    }
  }
  // 42 keys: grown when the 17th and the 35th arrived.
  EXPECT_EQ(capacities, (std::vector<int64_t>{16, 34, 70}));
}

// Beam search reorders the cache's rows; the next steps still append in place.
TEST(KeyValueCacheTest, ReorderPicksRowsAndKeepsAppendingInPlace) {
  NoGradGuard no_grad;
  KeyValueCache cache;
  const Tensor key = RandomInput({2, 1, 3, 4}, 300).detach();
  const Tensor value = RandomInput({2, 1, 3, 4}, 301).detach();
  AppendToCache(cache, key, value);
  const Tensor order = Tensor::FromInts(std::vector<int32_t>{1, 1, 0}, {3});
  ReorderCache(cache, order);
  EXPECT_EQ(cache.key.ToFloats(), IndexSelect(key, 0, order).ToFloats());
  const Tensor next_key = RandomInput({3, 1, 1, 4}, 302).detach();
  const Tensor next_value = RandomInput({3, 1, 1, 4}, 303).detach();
  AppendToCache(cache, next_key, next_value);
  EXPECT_EQ(cache.key.impl()->storage, cache.key_buffer.impl()->storage);
  EXPECT_EQ(cache.key.ToFloats(), Concat({IndexSelect(key, 0, order), next_key}, 2).ToFloats());
  EXPECT_EQ(cache.value.ToFloats(),
            Concat({IndexSelect(value, 0, order), next_value}, 2).ToFloats());
}

// With a gradient the cache concatenates instead (an in-place buffer is outside the
// graph): the incremental outputs' gradient equals the full causal forward's.
TEST(KeyValueCacheTest, WithAGradientTheCacheIsPartOfTheGraph) {
  const auto attention = MakeMultiHead("scaled_dot", AttentionRole::kSelf, /*rotary=*/false);
  const Tensor x = RandomInput({kBatch, 3, kModel}, 304);  // requires a gradient
  KeyValueCache cache;
  std::vector<Tensor> outputs;
  for (int64_t t = 0; t < 3; ++t) {
    MultiHeadAttentionCall step;
    step.query = step.key = step.value = Narrow(x, 1, t, 1);
    step.causal = true;
    step.cache = &cache;
    outputs.push_back(attention->Forward(step).output);
  }
  EXPECT_FALSE(cache.key_buffer.defined());
  Sum(Concat(outputs, 1)).backward();
  const Tensor incremental_gradient = x.grad().Clone();

  const Tensor x_full = x.detach().Clone();
  Tensor leaf = x_full;
  leaf.set_requires_grad(true);
  MultiHeadAttentionCall full;
  full.query = full.key = full.value = leaf;
  full.causal = true;
  Sum(attention->Forward(full).output).backward();
  EXPECT_TRUE(AllClose(incremental_gradient, leaf.grad().ToFloats(), 1e-5));
}

TEST_P(AttentionVariantTest, IncrementalCrossAttentionEqualsFullRecomputation) {
  const auto attention = MultiHead(AttentionRole::kCross);
  NoGradGuard no_grad;
  const Tensor query = RandomInput({kBatch, kTgt, kModel}, 12).detach();
  const Tensor memory = RandomInput({kBatch, kSrc, kModel}, 13).detach();
  const Tensor padding = PaddingMask({kSrc, 3}, kSrc);
  MultiHeadAttentionCall full_call;
  full_call.query = query;
  full_call.key = full_call.value = memory;
  full_call.key_padding_mask = padding;
  const Tensor full = attention->Forward(full_call).output;

  KeyValueCache cache;
  std::vector<Tensor> steps;
  for (int64_t t = 0; t < kTgt; ++t) {
    MultiHeadAttentionCall step;
    step.query = Narrow(query, 1, t, 1).contiguous();
    // Keys and values are projected on the first call only; later calls pass nothing.
    if (t == 0) step.key = step.value = memory;
    step.key_padding_mask = padding;
    step.cache = &cache;
    step.static_keys = true;
    steps.push_back(attention->Forward(step).output);
  }
  EXPECT_TRUE(AllClose(Concat(steps, 1), full, 1e-5));
}

TEST_P(AttentionVariantTest, OneHeadEqualsTheVariantCalledDirectly) {
  const auto attention = MultiHead(AttentionRole::kCross, /*heads=*/1);
  const Tensor query = RandomInput({kBatch, kTgt, kModel}, 14);
  const Tensor memory = RandomInput({kBatch, kSrc, kModel}, 15);
  const Tensor padding = PaddingMask({kSrc, 3}, kSrc);
  MultiHeadAttentionCall call;
  call.query = query;
  call.key = call.value = memory;
  call.key_padding_mask = padding;
  call.need_weights = true;
  const MultiHeadAttentionOutput through_module = attention->Forward(call);

  // [batch, time, d_model] -> projected -> [batch, 1, time, d_model]
  auto project = [&](const std::string& name, const Tensor& x) {
    const Tensor projected = attnlab::Linear(x, NamedParameter(*attention, name + ".weight"),
                                             NamedParameter(*attention, name + ".bias"));
    return Reshape(projected, {x.size(0), 1, x.size(1), kModel});
  };
  AttentionInputs inputs;
  inputs.query = project("q_proj", query);
  inputs.key = project("k_proj", memory);
  inputs.value = project("v_proj", memory);
  if (GetParam().rotary) {
    inputs.query = Rotary(inputs.query, 0);
    inputs.key = Rotary(inputs.key, 0);
  }
  inputs.key_padding_mask = padding;
  inputs.need_weights = true;
  const AttentionOutput direct = attention->variant().Forward(inputs);
  const Tensor output = attnlab::Linear(Reshape(direct.context, {kBatch, kTgt, kModel}),
                                        NamedParameter(*attention, "out_proj.weight"),
                                        NamedParameter(*attention, "out_proj.bias"));
  EXPECT_TRUE(AllClose(through_module.output, output, 1e-5));
  EXPECT_TRUE(AllClose(through_module.weights, direct.weights, 1e-6));
}

TEST_P(AttentionVariantTest, ContextIsTheWeightedSumOfValues) {
  const auto variant = MakeVariant(GetParam().variant);
  for (const bool causal : {false, true}) {
    AttentionInputs inputs;
    inputs.query = RandomInput({kBatch, kHeads, kSrc, kHeadDim}, 16);
    inputs.key = RandomInput({kBatch, kHeads, kSrc, kHeadDim}, 17);
    inputs.value = RandomInput({kBatch, kHeads, kSrc, kHeadDim}, 18);
    inputs.key_padding_mask = PaddingMask({kSrc, 3}, kSrc);
    inputs.causal = causal;
    inputs.need_weights = true;
    const AttentionOutput out = variant->Forward(inputs);
    EXPECT_TRUE(AllClose(out.context, Matmul(out.weights, inputs.value), 1e-5))
        << (causal ? "causal" : "non-causal");
  }
}

// The encoder's case: non-causal self-attention over padded sequences. The rows of the
// real (unpadded) queries sum to one and give padded keys weight 0; the rows of padded
// queries may be empty (local attention's window can hold padding only) and are ignored
// downstream.
TEST_P(AttentionVariantTest, PaddedSelfAttentionGradientsMatchFiniteDifferences) {
  const auto attention = MultiHead(AttentionRole::kSelf);
  const std::vector<int64_t> lengths = {kSrc, 2};
  const Tensor padding = PaddingMask(lengths, kSrc);
  EXPECT_TRUE(GradCheckWithParameters(*attention, {RandomInput({kBatch, kSrc, kModel}, 19)},
                                      [&](const std::vector<Tensor>& x) {
                                        MultiHeadAttentionCall call;
                                        call.query = call.key = call.value = x[0];
                                        call.key_padding_mask = padding;
                                        return attention->Forward(call).output;
                                      }));

  MultiHeadAttentionCall call;
  call.query = call.key = call.value = RandomInput({kBatch, kSrc, kModel}, 20);
  call.key_padding_mask = padding;
  call.need_weights = true;
  const std::vector<float> w = attention->Forward(call).weights.ToFloats();
  for (int64_t row = 0; row < kBatch * kHeads * kSrc; ++row) {
    const int64_t b = row / (kHeads * kSrc), query = row % kSrc;
    double total = 0.0;
    for (int64_t s = 0; s < kSrc; ++s) {
      if (s >= lengths[b]) {
        EXPECT_EQ(w[row * kSrc + s], 0.0f) << "padded key " << s << " of row " << row;
      }
      total += w[row * kSrc + s];
    }
    if (query < lengths[b]) {
      EXPECT_NEAR(total, 1.0, 1e-5) << "row " << row;
    }
  }
}

// Attention depends on positions only through query - key distances: moving every query
// and every key by the same amount (as a trimmed decoding cache does) changes nothing.
TEST_P(AttentionVariantTest, ShiftingEveryPositionChangesNothing) {
  const auto variant = MakeVariant(GetParam().variant, kHeads, kHeadDim, AttentionRole::kSelf);
  for (const bool causal : {false, true}) {
    AttentionInputs inputs;
    inputs.query = RandomInput({kBatch, kHeads, kSrc, kHeadDim}, 21, -2.0f, 2.0f);
    inputs.key = RandomInput({kBatch, kHeads, kSrc, kHeadDim}, 22, -2.0f, 2.0f);
    inputs.value = RandomInput({kBatch, kHeads, kSrc, kHeadDim}, 23);
    inputs.key_padding_mask = PaddingMask({kSrc, 3}, kSrc);
    inputs.causal = causal;
    inputs.need_weights = true;
    const AttentionOutput reference = variant->Forward(inputs);
    for (const int64_t shift : {1, 5, 40}) {
      inputs.query_offset = inputs.key_offset = shift;
      const AttentionOutput shifted = variant->Forward(inputs);
      EXPECT_TRUE(AllClose(shifted.weights, reference.weights, 1e-6))
          << "shift " << shift << (causal ? ", causal" : "");
      EXPECT_TRUE(AllClose(shifted.context, reference.context, 1e-6))
          << "shift " << shift << (causal ? ", causal" : "");
    }
  }
}

std::vector<VariantCase> AllVariantCases() {
  std::vector<VariantCase> cases;
  for (const std::string& name : AttentionNames()) {
    cases.push_back({name, false});
    cases.push_back({name, true});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Registered, AttentionVariantTest, ::testing::ValuesIn(AllVariantCases()),
                         [](const ::testing::TestParamInfo<VariantCase>& info) {
                           return info.param.variant + (info.param.rotary ? "_rotary" : "");
                         });

// ---- Registry ----------------------------------------------------------------------

TEST(AttentionRegistryTest, PaperVariantsAreRegistered) {
  const std::vector<std::string> names = AttentionNames();
  for (const char* expected : {"additive", "alibi", "dot", "general", "linear", "local", "relative",
                               "scaled_dot", "t5_bias"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected;
  }
}

TEST(AttentionRegistryTest, UnknownVariantIsAnErrorListingTheKnownOnes) {
  Generator generator(1);
  const auto made = MakeAttention("softmax_free", AttentionShape(), generator);
  ASSERT_FALSE(made.ok());
  EXPECT_NE(made.status().message().find("softmax_free"), std::string::npos);
  EXPECT_NE(made.status().message().find("additive"), std::string::npos) << made.status();
}

TEST(AttentionRegistryTest, VariantParametersAreNamedUnderTheAttentionModule) {
  const auto additive = MakeMultiHead("additive", AttentionRole::kSelf, false);
  EXPECT_EQ(NamedParameter(*additive, "attention.query_weight").shape(),
            (Shape{kHeadDim, kHeadDim}));
  EXPECT_EQ(NamedParameter(*additive, "attention.key_weight").shape(), (Shape{kHeadDim, kHeadDim}));
  EXPECT_EQ(NamedParameter(*additive, "attention.score_vector").shape(), (Shape{kHeadDim}));
  const auto general = MakeMultiHead("general", AttentionRole::kSelf, false);
  EXPECT_EQ(NamedParameter(*general, "attention.weight").shape(), (Shape{kHeadDim, kHeadDim}));
}

// ---- The new variants against naive loops --------------------------------------------

struct NaiveCase {
  AttentionInputs inputs;
  std::vector<int64_t> lengths = {kSrc, 3};
};

NaiveCase MakeNaiveCase(bool causal, int64_t offset) {
  NaiveCase c;
  c.inputs.query = RandomInput({kBatch, kHeads, kTgt, kHeadDim}, 20, -2.0f, 2.0f);
  c.inputs.key = RandomInput({kBatch, kHeads, kSrc, kHeadDim}, 21, -2.0f, 2.0f);
  c.inputs.value = RandomInput({kBatch, kHeads, kSrc, kHeadDim}, 22);
  c.inputs.key_padding_mask = PaddingMask(c.lengths, kSrc);
  c.inputs.causal = causal;
  c.inputs.query_offset = offset;
  c.inputs.need_weights = true;
  return c;
}

TEST(GeneralAttentionTest, WeightsMatchLuongGeneralScore) {
  const auto variant = MakeVariant("general");
  const Array4 w_a(Reshape(NamedParameter(*variant, "weight"), {1, 1, kHeadDim, kHeadDim}));
  for (const bool causal : {false, true}) {
    const NaiveCase c = MakeNaiveCase(causal, 1);
    const Array4 q(c.inputs.query), k(c.inputs.key);
    auto score = [&](int64_t b, int64_t h, int64_t i, int64_t j) {
      double total = 0.0;  // q_i^T W_a k_j
      for (int64_t a = 0; a < kHeadDim; ++a) {
        for (int64_t e = 0; e < kHeadDim; ++e)
          total += q(b, h, i, a) * w_a(0, 0, a, e) * k(b, h, j, e);
      }
      return total;
    };
    EXPECT_TRUE(AllClose(variant->Forward(c.inputs).weights,
                         NaiveWeights(score, c.lengths, causal, 1, kHeads, kTgt, kSrc), 1e-5));
  }
}

TEST(AdditiveAttentionTest, WeightsMatchBahdanauScore) {
  const auto variant = MakeVariant("additive");
  const Array4 w_q(Reshape(NamedParameter(*variant, "query_weight"), {1, 1, kHeadDim, kHeadDim}));
  const Array4 w_k(Reshape(NamedParameter(*variant, "key_weight"), {1, 1, kHeadDim, kHeadDim}));
  const Array4 v(Reshape(NamedParameter(*variant, "score_vector"), {1, 1, 1, kHeadDim}));
  const NaiveCase c = MakeNaiveCase(false, 0);
  const Array4 q(c.inputs.query), k(c.inputs.key);
  auto score = [&](int64_t b, int64_t h, int64_t i, int64_t j) {
    double total = 0.0;  // v^T tanh(W_q q_i + W_k k_j)
    for (int64_t e = 0; e < kHeadDim; ++e) {
      double hidden = 0.0;
      for (int64_t a = 0; a < kHeadDim; ++a) {
        hidden += w_q(0, 0, e, a) * q(b, h, i, a) + w_k(0, 0, e, a) * k(b, h, j, a);
      }
      total += v(0, 0, 0, e) * std::tanh(hidden);
    }
    return total;
  };
  EXPECT_TRUE(AllClose(variant->Forward(c.inputs).weights,
                       NaiveWeights(score, c.lengths, false, 0, kHeads, kTgt, kSrc), 1e-5));
}

TEST(AlibiAttentionTest, WeightsMatchScaledDotPlusLinearDistanceBias) {
  const auto variant = MakeVariant("alibi");
  const double slopes[kHeads] = {std::pow(2.0, -4.0), std::pow(2.0, -8.0)};  // 2^(-8(h+1)/2)
  for (const bool causal : {false, true}) {
    const int64_t offset = causal ? 1 : 0;
    const NaiveCase c = MakeNaiveCase(causal, offset);
    const Array4 q(c.inputs.query), k(c.inputs.key);
    auto score = [&](int64_t b, int64_t h, int64_t i, int64_t j) {
      double dot = 0.0;
      for (int64_t a = 0; a < kHeadDim; ++a) dot += q(b, h, i, a) * k(b, h, j, a);
      return dot / std::sqrt(static_cast<double>(kHeadDim)) -
             slopes[h] * std::abs(static_cast<double>(i + offset - j));
    };
    EXPECT_TRUE(AllClose(variant->Forward(c.inputs).weights,
                         NaiveWeights(score, c.lengths, causal, offset, kHeads, kTgt, kSrc), 1e-5));
  }
}

// With zero queries the scores are the bias alone, so w[h, 0, 0] / w[h, 0, 1] = e^(m_h).
std::vector<double> MeasuredAlibiSlopes(int64_t heads) {
  const auto variant = MakeVariant("alibi", heads, 2);
  AttentionInputs inputs;
  inputs.query = Tensor::Zeros({1, heads, 1, 2});
  inputs.key = inputs.value = Tensor::Zeros({1, heads, 2, 2});
  inputs.need_weights = true;
  const std::vector<float> w = variant->Forward(inputs).weights.ToFloats();
  std::vector<double> slopes;
  for (int64_t h = 0; h < heads; ++h) slopes.push_back(std::log(w[h * 2] / w[h * 2 + 1]));
  return slopes;
}

TEST(AlibiAttentionTest, SlopesFollowThePapersGeometricSequence) {
  const std::vector<double> eight = MeasuredAlibiSlopes(8);
  for (int64_t h = 0; h < 8; ++h) EXPECT_NEAR(eight[h], std::pow(2.0, -(h + 1.0)), 1e-5) << h;
  // Six heads (not a power of two): the four slopes of H = 4, then 2^-1 and 2^-3, the
  // first odd-position slopes of H = 8 (the authors' reference code).
  const std::vector<double> six = MeasuredAlibiSlopes(6);
  const double expected[6] = {0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125};
  for (int64_t h = 0; h < 6; ++h) EXPECT_NEAR(six[h], expected[h], 1e-5) << h;
}

// V'_i = sum_j phi(q_i).phi(k_j) v_j / sum_j phi(q_i).phi(k_j) over visible keys.
std::vector<float> NaiveLinearAttention(const NaiveCase& c) {
  const Array4 q(c.inputs.query), k(c.inputs.key), v(c.inputs.value);
  auto phi = [](double x) { return x > 0 ? x + 1.0 : std::exp(x); };  // elu(x) + 1
  std::vector<float> context;
  for (int64_t b = 0; b < kBatch; ++b) {
    for (int64_t h = 0; h < kHeads; ++h) {
      for (int64_t i = 0; i < kTgt; ++i) {
        std::vector<double> numerator(kHeadDim, 0.0);
        double denominator = 0.0;
        for (int64_t j = 0; j < kSrc; ++j) {
          if (j >= c.lengths[b] || (c.inputs.causal && j > i + c.inputs.query_offset)) continue;
          double similarity = 0.0;
          for (int64_t a = 0; a < kHeadDim; ++a)
            similarity += phi(q(b, h, i, a)) * phi(k(b, h, j, a));
          for (int64_t a = 0; a < kHeadDim; ++a) numerator[a] += similarity * v(b, h, j, a);
          denominator += similarity;
        }
        for (int64_t a = 0; a < kHeadDim; ++a) context.push_back(numerator[a] / denominator);
      }
    }
  }
  return context;
}

// From 128 keys on, f32 scaled_dot attention whose weights are not asked for runs as the
// fused ScaledDotProductAttention; asking for the weights takes the composite path. Both
// give the same context and gradients with the same dropout mask (and move the generator
// alike), with padding and a causal offset; under mixed precision it stays composite.
TEST(ScaledDotAttentionTest, LongKeysTakeTheFusedOpWithTheCompositeResult) {
  const int64_t batch = 2, heads = 2, tgt = 9, src = 130, dim = 16;
  const auto variant = MakeVariant("scaled_dot", heads, dim, AttentionRole::kSelf);
  variant->Train();
  Tensor query = RandomInput({batch, heads, tgt, dim}, 1);
  Tensor key = RandomInput({batch, heads, src, dim}, 2);
  Tensor value = RandomInput({batch, heads, src, dim}, 3);
  const Tensor upstream = RandomInput({batch, heads, tgt, dim}, 4).detach();
  for (Tensor* leaf : {&query, &key, &value}) leaf->set_requires_grad(true);
  struct Run {
    Tensor context, grad_query, grad_key, grad_value;
    uint64_t offset_after;
    OpKind op;
  };
  auto run = [&](bool causal, bool need_weights) {
    const AttentionInputs inputs{.query = query,
                                 .key = key,
                                 .value = value,
                                 .key_padding_mask = PaddingMask({130, 100}, src),
                                 .causal = causal,
                                 .query_offset = 121,
                                 .key_offset = 0,
                                 .dropout = 0.2f,
                                 .need_weights = need_weights};
    ManualSeed(5);
    const Tensor context = variant->Forward(inputs).context;
    Run result{context.detach(),     {}, {}, {}, DefaultGenerator().state().offset,
               context.grad_fn()->op};
    Sum(Mul(context, upstream)).backward();
    result.grad_query = query.grad().detach();
    result.grad_key = key.grad().detach();
    result.grad_value = value.grad().detach();
    for (Tensor* leaf : {&query, &key, &value}) leaf->zero_grad();
    return result;
  };
  for (const bool causal : {false, true}) {
    const Run fused = run(causal, false), composite = run(causal, true);
    EXPECT_EQ(fused.op, OpKind::kScaledDotProductAttention);
    EXPECT_NE(composite.op, OpKind::kScaledDotProductAttention);
    EXPECT_TRUE(AllClose(fused.context, composite.context, 1e-5)) << "causal " << causal;
    EXPECT_TRUE(AllClose(fused.grad_query, composite.grad_query, 1e-5)) << "causal " << causal;
    EXPECT_TRUE(AllClose(fused.grad_key, composite.grad_key, 1e-5)) << "causal " << causal;
    EXPECT_TRUE(AllClose(fused.grad_value, composite.grad_value, 1e-5)) << "causal " << causal;
    EXPECT_EQ(fused.offset_after, composite.offset_after);
  }
  if (dnnl_backend::HasNativeBF16()) {
    MixedPrecision bf16(DType::kBF16);
    EXPECT_NE(run(false, false).op, OpKind::kScaledDotProductAttention);
  }
}

TEST(LinearAttentionTest, ContextMatchesKernelizedAttention) {
  const auto variant = MakeVariant("linear");
  for (const auto& [causal, offset] :
       {std::pair{false, 0}, std::pair{true, 0}, std::pair{true, 1}}) {
    const NaiveCase c = MakeNaiveCase(causal, offset);
    EXPECT_TRUE(AllClose(variant->Forward(c.inputs).context, NaiveLinearAttention(c), 1e-5))
        << "causal " << causal << " offset " << offset;
  }
}

TEST(LinearAttentionTest, WeightsAreOnlyComputedWhenAsked) {
  const auto variant = MakeVariant("linear");
  NaiveCase c = MakeNaiveCase(true, 0);
  c.inputs.need_weights = false;
  EXPECT_FALSE(variant->Forward(c.inputs).weights.defined());
}

}  // namespace
}  // namespace attnlab::nn
