// Local (sliding-window) attention: keys outside the window get weight exactly 0, causal
// and non-causal, wherever the queries and keys start; a window that holds every key is
// scaled_dot bit for bit, and so is cross-attention; when decoding, the self-attention
// cache holds at most `window` keys between steps (window + 1 during a one-token step),
// and greedy decoding with that trimmed cache equals decoding by full recomputation.
// (The generic variant properties are tested for every variant in attention_test.cc.)
#include <algorithm>
#include <any>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "framework/autograd/grad_mode.h"
#include "framework/ops/ops.h"
#include "gtest/gtest.h"
#include "layers/attention/attention.h"
#include "layers/attention/multi_head.h"
#include "layers/decoding/greedy.h"
#include "layers/transformer/transformer.h"
#include "tests/layers/tiny_transformer.h"
#include "tests/support/gradcheck.h"
#include "tests/support/padding_mask.h"

namespace attnlab::nn {
namespace {

using attnlab::testing::AllClose;
using attnlab::testing::PaddingMask;
using attnlab::testing::RandomInput;
using testing::Ints;
using testing::MakeTransformer;
using testing::TinyTransformerOptions;

constexpr int64_t kBatch = 2, kHeads = 2, kModel = 8, kHeadDim = kModel / kHeads;

// The variants' options with local's window set to `window`.
AttentionVariantOptions WithWindow(int64_t window) {
  const AttentionVariantEntry* local = FindAttentionVariant("local");
  EXPECT_NE(local, nullptr);
  std::any options = local->default_options();
  for (const auto& field : local->option_fields) {
    if (field.name == "window") field.set(options, OptionValue(window));
  }
  return {{"local", options}};
}

// Built for self-attention.
std::shared_ptr<Attention> MakeLocal(int64_t window) {
  Generator generator(11);
  auto created = MakeAttention("local", AttentionShape{kHeads, kHeadDim, AttentionRole::kSelf},
                               generator, WithWindow(window));
  EXPECT_TRUE(created.ok()) << created.status();
  return *created;
}

std::shared_ptr<MultiHeadAttention> MakeMultiHead(const std::string& variant, int64_t window,
                                                  AttentionRole role = AttentionRole::kSelf) {
  AttentionOptions options;
  options.heads = kHeads;
  options.variant = variant;
  options.variant_options = WithWindow(window);
  Generator generator(7);
  auto created = MultiHeadAttention::Create(kModel, options, role, /*rotary=*/false, generator);
  EXPECT_TRUE(created.ok()) << created.status();
  (*created)->Eval();
  return *created;
}

// Query i at position i + query_offset, key j at j + key_offset: inside the window of
// local.cc's definition (and not after the query when causal)?
bool InWindow(int64_t i, int64_t j, int64_t query_offset, int64_t key_offset, int64_t window,
              bool causal) {
  const int64_t behind = (i + query_offset) - (j + key_offset);
  return causal ? 0 <= behind && behind <= window : std::llabs(behind) <= window;
}

TEST(LocalAttentionTest, KeysOutsideTheWindowGetZeroWeight) {
  constexpr int64_t kTime = 7, kWindow = 2;
  const std::vector<int64_t> lengths = {kTime, 5};
  const auto variant = MakeLocal(kWindow);
  for (const bool causal : {false, true}) {
    for (const auto& [query_offset, key_offset] :
         {std::pair<int64_t, int64_t>{0, 0}, {3, 1}, {1, 4}}) {
      AttentionInputs inputs;
      inputs.query = RandomInput({kBatch, kHeads, kTime, kHeadDim}, 40, -2.0f, 2.0f);
      inputs.key = RandomInput({kBatch, kHeads, kTime, kHeadDim}, 41, -2.0f, 2.0f);
      inputs.value = RandomInput({kBatch, kHeads, kTime, kHeadDim}, 42);
      inputs.key_padding_mask = PaddingMask(lengths, kTime);
      inputs.causal = causal;
      inputs.query_offset = query_offset;
      inputs.key_offset = key_offset;
      inputs.need_weights = true;
      const std::vector<float> w = variant->Forward(inputs).weights.ToFloats();
      for (int64_t b = 0; b < kBatch; ++b) {
        for (int64_t h = 0; h < kHeads; ++h) {
          for (int64_t i = 0; i < kTime; ++i) {
            double total = 0.0;
            bool any_visible = false;
            for (int64_t j = 0; j < kTime; ++j) {
              const float weight = w[((b * kHeads + h) * kTime + i) * kTime + j];
              const bool visible =
                  j < lengths[b] && InWindow(i, j, query_offset, key_offset, kWindow, causal);
              if (visible) {
                EXPECT_GT(weight, 0.0f) << "query " << i << ", key " << j;
              } else {
                EXPECT_EQ(weight, 0.0f) << "query " << i << ", key " << j << " outside";
              }
              any_visible = any_visible || visible;
              total += weight;
            }
            EXPECT_NEAR(total, any_visible ? 1.0 : 0.0, 1e-5) << "query " << i;
          }
        }
      }
    }
  }
}

// A window at least the sequence length (or length - 1, the largest distance) masks
// nothing: scaled_dot exactly, through the whole multi-head block (same seed, and neither
// variant has parameters). A smaller one changes the output, so the test can fail.
TEST(LocalAttentionTest, AWindowHoldingEveryKeyIsScaledDot) {
  constexpr int64_t kTime = 6;
  NoGradGuard no_grad;
  const Tensor x = RandomInput({kBatch, kTime, kModel}, 43).detach();
  const Tensor padding = PaddingMask({kTime, 4}, kTime);
  const auto scaled_dot = MakeMultiHead("scaled_dot", 1);
  for (const bool causal : {false, true}) {
    MultiHeadAttentionCall call;
    call.query = call.key = call.value = x;
    call.key_padding_mask = causal ? Tensor() : padding;
    call.causal = causal;
    call.need_weights = true;
    const MultiHeadAttentionOutput expected = scaled_dot->Forward(call);
    for (const int64_t window : {kTime, kTime - 1, int64_t{4096}}) {
      const MultiHeadAttentionOutput local = MakeMultiHead("local", window)->Forward(call);
      EXPECT_EQ(local.output.ToFloats(), expected.output.ToFloats()) << "window " << window;
      EXPECT_EQ(local.weights.ToFloats(), expected.weights.ToFloats()) << "window " << window;
    }
    EXPECT_FALSE(
        AllClose(MakeMultiHead("local", kTime - 2)->Forward(call).output, expected.output, 1e-4))
        << (causal ? "causal" : "non-causal");
  }
}

// Keys from another sequence (the encoder output) are not windowed, and the cache of such
// a block keeps every key.
TEST(LocalAttentionTest, CrossAttentionIsScaledDot) {
  const auto scaled_dot = MakeMultiHead("scaled_dot", 1, AttentionRole::kCross);
  const auto local = MakeMultiHead("local", 1, AttentionRole::kCross);
  EXPECT_FALSE(local->variant().CacheWindow().has_value());
  MultiHeadAttentionCall call;
  call.query = RandomInput({kBatch, 3, kModel}, 44);
  call.key = call.value = RandomInput({kBatch, 6, kModel}, 45);
  call.key_padding_mask = PaddingMask({6, 4}, 6);
  call.need_weights = true;
  const MultiHeadAttentionOutput out = local->Forward(call), expected = scaled_dot->Forward(call);
  EXPECT_EQ(out.output.ToFloats(), expected.output.ToFloats());
  EXPECT_EQ(out.weights.ToFloats(), expected.weights.ToFloats());
}

// One token at a time over 9 positions with window 2: between steps the cache holds the
// last 2 keys (key_offset advancing past the dropped ones), each step attends over at
// most 3, and every step equals its row of the full causal computation.
TEST(LocalAttentionTest, TheDecodingCacheKeepsOnlyTheWindow) {
  constexpr int64_t kTime = 9, kWindow = 2;
  const auto attention = MakeMultiHead("local", kWindow);
  NoGradGuard no_grad;
  const Tensor x = RandomInput({kBatch, kTime, kModel}, 46).detach();
  MultiHeadAttentionCall full_call;
  full_call.query = full_call.key = full_call.value = x;
  full_call.causal = true;
  full_call.need_weights = true;
  const MultiHeadAttentionOutput full = attention->Forward(full_call);

  KeyValueCache cache;
  for (int64_t t = 0; t < kTime; ++t) {
    MultiHeadAttentionCall step;
    step.query = step.key = step.value = Narrow(x, 1, t, 1).contiguous();
    step.causal = true;
    step.cache = &cache;
    step.need_weights = true;
    const MultiHeadAttentionOutput out = attention->Forward(step);
    const int64_t first_key = std::max<int64_t>(0, t - kWindow);
    ASSERT_EQ(out.weights.size(3), t + 1 - first_key) << "step " << t;
    EXPECT_LE(out.weights.size(3), kWindow + 1);
    EXPECT_TRUE(AllClose(
        out.weights,
        Narrow(Narrow(full.weights, 2, t, 1), 3, first_key, t + 1 - first_key).contiguous(), 1e-5))
        << "step " << t;
    EXPECT_TRUE(AllClose(out.output, Narrow(full.output, 1, t, 1).contiguous(), 1e-5))
        << "step " << t;
    EXPECT_EQ(cache.key.size(2), std::min(t + 1, kWindow)) << "after step " << t;
    EXPECT_EQ(cache.value.size(2), cache.key.size(2));
    EXPECT_EQ(cache.key_offset, t + 1 - cache.key.size(2));
  }
}

// The whole model: greedy decoding with the trimmed caches finds what recomputing the
// decoder over the whole prefix finds, and no layer's self-attention cache grows past
// the window while the cross-attention cache keeps the whole source.
TEST(LocalAttentionTest, GreedyDecodingWithTheTrimmedCacheEqualsFullRecomputation) {
  constexpr int64_t kWindow = 2, kMaxLen = 10;
  ModelOptions options = TinyTransformerOptions("sinusoidal", "local");
  options.attention.variant_options = WithWindow(kWindow);
  options.decoder_layers = 2;
  std::shared_ptr<Transformer> model = MakeTransformer(options, 5);
  // eos never wins, so every hypothesis runs to kMaxLen, far past the window.
  for (auto& [name, parameter] : model->NamedParameters()) {
    if (name == "generator.bias") parameter.data<float>()[model->special_tokens().eos_id] = -1e9f;
  }
  const Tensor src = Ints({3, 4, 5, 6, 3, 5, 3, 6, 0, 0, 6, 6, 4, 0, 0}, {3, 5});
  const DecodeResult cached = GreedyDecode(*model, src, kMaxLen);
  model->set_decoding_cache(false);
  const DecodeResult recomputed = GreedyDecode(*model, src, kMaxLen);
  model->set_decoding_cache(true);
  ASSERT_EQ(cached.tokens[0].size(), static_cast<size_t>(kMaxLen));
  EXPECT_EQ(cached.tokens, recomputed.tokens);
  for (size_t row = 0; row < cached.scores.size(); ++row) {
    EXPECT_NEAR(cached.scores[row], recomputed.scores[row], 1e-4) << "row " << row;
  }

  model->Eval();
  NoGradGuard no_grad;
  std::unique_ptr<DecoderState> state = model->StartDecoding(src);
  auto& decoding = static_cast<TransformerDecoderState&>(*state);
  for (int64_t step = 0; step < kMaxLen; ++step) {
    std::vector<int32_t> tokens;
    for (const auto& row : cached.tokens) tokens.push_back(step == 0 ? 1 : row[step - 1]);
    model->DecodeStep(*state, Ints(tokens, {3}));
    for (const DecoderLayerCache& layer : decoding.caches) {
      EXPECT_EQ(layer.self_attn.key.size(2), std::min(step + 1, kWindow)) << "step " << step;
      EXPECT_EQ(layer.cross_attn.key.size(2), src.size(1)) << "step " << step;
    }
  }
}

}  // namespace
}  // namespace attnlab::nn
