// The Transformer's boxes and the whole model: gradient checks by finite differences
// (feed-forward, sublayer connection in both norm positions, encoder and decoder layers,
// the tiny model for every positional encoding and two attention variants, and with the
// relative-position and local variants), the invariants the paper implies (a causal
// decoder ignores later targets, incremental decoding equals the full forward, padded
// keys are ignored), the documented parameter names, weight sharing, option errors, and
// a copy task learned within a step budget.
#include "layers/transformer/transformer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <iostream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "framework/autograd/grad_mode.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"
#include "framework/random/generator.h"
#include "gtest/gtest.h"
#include "layers/decoding/beam_search.h"
#include "layers/decoding/greedy.h"
#include "layers/feed_forward.h"
#include "layers/linear.h"
#include "layers/positional/positional_encoding.h"
#include "layers/transformer/decoder_layer.h"
#include "layers/transformer/encoder_layer.h"
#include "layers/transformer/sublayer_connection.h"
#include "tests/layers/tiny_transformer.h"
#include "tests/support/gradcheck.h"
#include "tests/support/named_parameter.h"

namespace attnlab::nn {
namespace {

using attnlab::testing::AllClose;
using attnlab::testing::GradCheck;
using attnlab::testing::GradCheckOptions;
using attnlab::testing::HasParameter;
using attnlab::testing::NamedParameter;
using attnlab::testing::RandomInput;
using testing::Ints;
using testing::MakeTransformer;
using testing::SequenceLoss;
using testing::TinySource;
using testing::TinyTargetInput;
using testing::TinyTargetOutput;
using testing::TinyTransformerOptions;
using testing::TinyVocabularies;

std::vector<std::pair<std::string, Shape>> NamesAndShapes(const Module& module) {
  std::vector<std::pair<std::string, Shape>> out;
  for (const auto& [name, tensor] : module.NamedParameters())
    out.emplace_back(name, tensor.shape());
  return out;
}

// Rows [begin, begin + length) of dim 1, as floats.
std::vector<float> TimeSlice(const Tensor& x, int64_t begin, int64_t length) {
  return Narrow(x, 1, begin, length).ToFloats();
}

// ---- PositionwiseFeedForward -------------------------------------------------------------

TEST(PositionwiseFeedForwardTest, ParametersHavePyTorchNamesAndShapes) {
  Generator generator(1);
  PositionwiseFeedForward feed_forward(8, 16, 0.0f, FeedForwardActivation::kRelu, generator);
  const std::vector<std::pair<std::string, Shape>> expected = {{"linear1.weight", {16, 8}},
                                                               {"linear1.bias", {16}},
                                                               {"linear2.weight", {8, 16}},
                                                               {"linear2.bias", {8}}};
  EXPECT_EQ(NamesAndShapes(feed_forward), expected);
}

TEST(PositionwiseFeedForwardTest, ForwardIsLinearActivationLinear) {
  Generator generator(2);
  const Tensor x = RandomInput({2, 3, 8}, 3);
  for (FeedForwardActivation activation :
       {FeedForwardActivation::kRelu, FeedForwardActivation::kGelu}) {
    PositionwiseFeedForward feed_forward(8, 16, 0.0f, activation, generator);
    const Tensor hidden =
        attnlab::Linear(x, feed_forward.linear1().weight(), feed_forward.linear1().bias());
    const Tensor activated =
        activation == FeedForwardActivation::kRelu ? Relu(hidden) : GeluErf(hidden);
    const Tensor expected =
        attnlab::Linear(activated, feed_forward.linear2().weight(), feed_forward.linear2().bias());
    EXPECT_TRUE(AllClose(feed_forward.Forward(x), expected, 1e-6));
  }
}

TEST(PositionwiseFeedForwardTest, DropoutActsOnlyInTraining) {
  Generator generator(4);
  PositionwiseFeedForward feed_forward(8, 16, 0.5f, FeedForwardActivation::kRelu, generator);
  const Tensor x = RandomInput({2, 3, 8}, 5);
  feed_forward.Eval();
  const Tensor eval_output = feed_forward.Forward(x);
  feed_forward.Train();
  const std::vector<float> train_output = feed_forward.Forward(x).ToFloats();
  EXPECT_FALSE(AllClose(eval_output, train_output, 1e-3));
}

class FeedForwardGradientTest : public ::testing::TestWithParam<FeedForwardActivation> {};

TEST_P(FeedForwardGradientTest, MatchesFiniteDifferences) {
  Generator generator(6);
  PositionwiseFeedForward feed_forward(8, 16, 0.0f, GetParam(), generator);
  const Tensor x = RandomInput({2, 3, 8}, 38);
  const GradCheckOptions options;
  if (GetParam() == FeedForwardActivation::kRelu) {
    // A step moves a pre-activation by at most epsilon (|x| and |w_1| are below 1), so
    // with every pre-activation farther than that from 0 no difference crosses the kink
    // (the input seed was chosen for it).
    NoGradGuard no_grad;
    float nearest_to_kink = 1e9f;
    for (float value : feed_forward.linear1().Forward(x).ToFloats()) {
      nearest_to_kink = std::min(nearest_to_kink, std::abs(value));
    }
    ASSERT_GT(nearest_to_kink, 1.5 * options.epsilon) << "pick inputs away from the kink";
  }
  EXPECT_TRUE(
      GradCheck([&](const std::vector<Tensor>& inputs) { return feed_forward.Forward(inputs[0]); },
                {x, feed_forward.linear1().weight(), feed_forward.linear1().bias(),
                 feed_forward.linear2().weight(), feed_forward.linear2().bias()},
                options));
}

INSTANTIATE_TEST_SUITE_P(Activations, FeedForwardGradientTest,
                         ::testing::Values(FeedForwardActivation::kRelu,
                                           FeedForwardActivation::kGelu),
                         [](const auto& info) {
                           return std::string(FeedForwardActivationName(info.param));
                         });

TEST(PositionwiseFeedForwardTest, ParsesActivationNames) {
  EXPECT_EQ(*ParseFeedForwardActivation("relu"), FeedForwardActivation::kRelu);
  EXPECT_EQ(*ParseFeedForwardActivation("gelu"), FeedForwardActivation::kGelu);
  const absl::StatusOr<FeedForwardActivation> unknown = ParseFeedForwardActivation("swish");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("swish"), std::string::npos);
}

// ---- SublayerConnection ----------------------------------------------------------------

class SublayerConnectionTest : public ::testing::TestWithParam<NormPosition> {};

TEST_P(SublayerConnectionTest, ForwardFollowsItsNormPosition) {
  Generator generator(8);
  SublayerConnection connection(8, 0.0f, GetParam());
  Linear sublayer(8, 8, true, generator);
  const Tensor x = RandomInput({2, 3, 8}, 9);
  const Tensor gain = Tensor::Full({8}, 1.0f), shift = Tensor::Zeros({8});
  const Tensor expected = GetParam() == NormPosition::kPost
                              ? attnlab::LayerNorm(x + sublayer.Forward(x), gain, shift)   // paper
                              : x + sublayer.Forward(attnlab::LayerNorm(x, gain, shift));  // pre-LN
  const Tensor actual =
      connection.Forward(x, [&](const Tensor& input) { return sublayer.Forward(input); });
  EXPECT_TRUE(AllClose(actual, expected, 1e-5));
}

TEST_P(SublayerConnectionTest, GradientMatchesFiniteDifferences) {
  Generator generator(10);
  SublayerConnection connection(8, 0.0f, GetParam());
  Linear sublayer(8, 8, true, generator);
  // A non-trivial gain and shift, so that their gradients are checked away from (1, 0).
  Tensor gain = NamedParameter(connection, "norm.weight");
  Tensor shift = NamedParameter(connection, "norm.bias");
  {
    NoGradGuard no_grad;
    const std::vector<float> gain_values = RandomInput({8}, 11, 0.5f, 1.5f).ToFloats();
    const std::vector<float> shift_values = RandomInput({8}, 12).ToFloats();
    std::copy(gain_values.begin(), gain_values.end(), gain.data<float>());
    std::copy(shift_values.begin(), shift_values.end(), shift.data<float>());
  }
  EXPECT_TRUE(GradCheck(
      [&](const std::vector<Tensor>& inputs) {
        return connection.Forward(inputs[0],
                                  [&](const Tensor& input) { return sublayer.Forward(input); });
      },
      {RandomInput({2, 3, 8}, 13), gain, shift, sublayer.weight(), sublayer.bias()}));
}

INSTANTIATE_TEST_SUITE_P(NormPositions, SublayerConnectionTest,
                         ::testing::Values(NormPosition::kPost, NormPosition::kPre),
                         [](const auto& info) {
                           return std::string(NormPositionName(info.param));
                         });

TEST(NormPositionTest, ParsesNames) {
  EXPECT_EQ(*ParseNormPosition("post"), NormPosition::kPost);
  EXPECT_EQ(*ParseNormPosition("pre"), NormPosition::kPre);
  EXPECT_FALSE(ParseNormPosition("sandwich").ok());
}

// ---- EncoderLayer and DecoderLayer ---------------------------------------------------------

ModelOptions TinyLayerOptions(NormPosition norm_position) {
  ModelOptions options = TinyTransformerOptions();
  options.norm = norm_position;
  return options;
}

// f32 [2, 4]: the second row's last key is padding.
Tensor LayerPaddingMask() {
  return Tensor::FromFloats(std::vector<float>{0, 0, 0, 0, 0, 0, 0, 1}, {2, 4});
}

class TransformerLayerTest : public ::testing::TestWithParam<NormPosition> {};

TEST_P(TransformerLayerTest, EncoderLayerGradientMatchesFiniteDifferences) {
  Generator generator(20);
  std::shared_ptr<EncoderLayer> layer =
      *EncoderLayer::Create(TinyLayerOptions(GetParam()), /*rotary=*/false, generator);
  const Tensor mask = LayerPaddingMask();
  EXPECT_TRUE(
      GradCheck([&](const std::vector<Tensor>& inputs) { return layer->Forward(inputs[0], mask); },
                {RandomInput({2, 4, 8}, 21), NamedParameter(*layer, "self_attn.q_proj.weight"),
                 NamedParameter(*layer, "self_attn.out_proj.bias"),
                 NamedParameter(*layer, "self_attn_sublayer.norm.weight"),
                 NamedParameter(*layer, "feed_forward.linear1.weight")}));
}

TEST_P(TransformerLayerTest, EncoderLayerIgnoresPaddedPositions) {
  Generator generator(22);
  std::shared_ptr<EncoderLayer> layer =
      *EncoderLayer::Create(TinyLayerOptions(GetParam()), /*rotary=*/false, generator);
  NoGradGuard no_grad;
  const Tensor x = RandomInput({2, 4, 8}, 23);
  Tensor changed = x.Clone();
  for (int64_t channel = 0; channel < 8; ++channel) {
    changed.data<float>()[(1 * 4 + 3) * 8 + channel] += 5.0f;  // row 1, padded position 3
  }
  const Tensor before = layer->Forward(x, LayerPaddingMask());
  const Tensor after = layer->Forward(changed, LayerPaddingMask());
  EXPECT_TRUE(AllClose(Narrow(after, 1, 0, 3), Narrow(before, 1, 0, 3), 1e-6));
}

TEST_P(TransformerLayerTest, DecoderLayerGradientMatchesFiniteDifferences) {
  Generator generator(24);
  std::shared_ptr<DecoderLayer> layer =
      *DecoderLayer::Create(TinyLayerOptions(GetParam()), /*rotary=*/false, generator);
  const Tensor mask = LayerPaddingMask();
  EXPECT_TRUE(GradCheck(
      [&](const std::vector<Tensor>& inputs) { return layer->Forward(inputs[0], inputs[1], mask); },
      {RandomInput({2, 3, 8}, 25), RandomInput({2, 4, 8}, 26),
       NamedParameter(*layer, "self_attn.k_proj.weight"),
       NamedParameter(*layer, "cross_attn.q_proj.weight"),
       NamedParameter(*layer, "cross_attn.v_proj.weight"),
       NamedParameter(*layer, "cross_attn_sublayer.norm.bias"),
       NamedParameter(*layer, "feed_forward.linear2.weight")}));
}

TEST_P(TransformerLayerTest, DecoderLayerOutputAtTIgnoresLaterInputs) {
  Generator generator(27);
  std::shared_ptr<DecoderLayer> layer =
      *DecoderLayer::Create(TinyLayerOptions(GetParam()), /*rotary=*/false, generator);
  NoGradGuard no_grad;
  const Tensor x = RandomInput({2, 5, 8}, 28), memory = RandomInput({2, 4, 8}, 29);
  const Tensor later = RandomInput({2, 2, 8}, 30);
  const Tensor changed = Concat({Narrow(x, 1, 0, 3), later}, 1);
  const Tensor before = layer->Forward(x, memory, LayerPaddingMask());
  const Tensor after = layer->Forward(changed, memory, LayerPaddingMask());
  EXPECT_TRUE(AllClose(Narrow(after, 1, 0, 3), Narrow(before, 1, 0, 3), 1e-6));
  EXPECT_FALSE(AllClose(Narrow(after, 1, 3, 2), Narrow(before, 1, 3, 2), 1e-3));
}

INSTANTIATE_TEST_SUITE_P(NormPositions, TransformerLayerTest,
                         ::testing::Values(NormPosition::kPost, NormPosition::kPre),
                         [](const auto& info) {
                           return std::string(NormPositionName(info.param));
                         });

// ---- The whole model: every positional encoding, and the position-aware variants ----------

using ModelCase = std::tuple<std::string, std::string>;  // positional, attention

class TransformerModelTest : public ::testing::TestWithParam<ModelCase> {
 protected:
  ModelOptions Options() const {
    return TinyTransformerOptions(std::get<0>(GetParam()), std::get<1>(GetParam()));
  }
};

TEST_P(TransformerModelTest, LossGradientMatchesFiniteDifferences) {
  std::shared_ptr<Transformer> model = MakeTransformer(Options());
  const Tensor src = TinySource(), tgt_in = TinyTargetInput(), tgt_out = TinyTargetOutput();
  // A few parameters on every path: both embeddings (through each stack, and through
  // cross-attention), queries and keys where positions act (RoPE, relative variants),
  // and the target-side positions of the schemes that learn them.
  std::vector<Tensor> checked = {NamedParameter(*model, "src_embed.weight"),
                                 NamedParameter(*model, "tgt_embed.weight"),
                                 NamedParameter(*model, "encoder.layers.0.self_attn.q_proj.bias"),
                                 NamedParameter(*model, "decoder.layers.0.self_attn.k_proj.weight"),
                                 NamedParameter(*model, "decoder.layers.0.cross_attn.q_proj.bias"),
                                 NamedParameter(*model, "generator.bias")};
  for (const auto& [name, tensor] : model->NamedParameters()) {
    if (name.rfind("tgt_pos_encoding.", 0) == 0) checked.push_back(tensor);
  }
  EXPECT_TRUE(GradCheck(
      [&](const std::vector<Tensor>&) {
        return SequenceLoss(model->Forward(src, tgt_in), tgt_out);
      },
      checked));
}

TEST_P(TransformerModelTest, DecoderOutputAtTIgnoresLaterTargets) {
  std::shared_ptr<Transformer> model = MakeTransformer(Options());
  NoGradGuard no_grad;
  const Tensor src = TinySource();
  const Tensor tgt_in = Ints({1, 4, 3, 6, 5, 1, 5, 5, 2, 0}, {2, 5});
  const Tensor changed = Ints({1, 4, 5, 3, 3, 1, 5, 4, 4, 6}, {2, 5});  // from t = 2 on
  const Tensor before = model->Forward(src, tgt_in), after = model->Forward(src, changed);
  EXPECT_TRUE(AllClose(Narrow(after, 1, 0, 2), Narrow(before, 1, 0, 2), 1e-6));
  EXPECT_FALSE(AllClose(Narrow(after, 1, 2, 3), Narrow(before, 1, 2, 3), 1e-3));
}

TEST_P(TransformerModelTest, IncrementalDecodingEqualsFullForward) {
  std::shared_ptr<Transformer> model = MakeTransformer(Options());
  model->Eval();
  NoGradGuard no_grad;
  const Tensor src = TinySource();
  const Tensor tgt_in = Ints({1, 4, 3, 6, 5, 4, 1, 5, 5, 2, 3, 3}, {2, 6});
  const Tensor full = LogSoftmax(model->Forward(src, tgt_in));  // [2, 6, vocab]
  std::unique_ptr<DecoderState> state = model->StartDecoding(src);
  for (int64_t step = 0; step < 6; ++step) {
    const Tensor last_tokens = Contiguous(Reshape(Narrow(tgt_in, 1, step, 1), {2}));
    const Tensor incremental = model->DecodeStep(*state, last_tokens);  // [2, vocab]
    EXPECT_TRUE(AllClose(incremental, TimeSlice(full, step, 1), 2e-5)) << "step " << step;
  }
}

// Without the key/value cache each step recomputes the decoder over the whole prefix:
// the same log-probabilities, also after the rows are reordered (as beam search does).
TEST_P(TransformerModelTest, DecodingWithoutTheCacheEqualsDecodingWithIt) {
  std::shared_ptr<Transformer> model = MakeTransformer(Options());
  model->Eval();
  NoGradGuard no_grad;
  const Tensor src = TinySource();
  const Tensor tgt_in = Ints({1, 4, 3, 6, 5, 4, 1, 5, 5, 2, 3, 3}, {2, 6});
  std::unique_ptr<DecoderState> cached = model->StartDecoding(src);
  model->set_decoding_cache(false);
  std::unique_ptr<DecoderState> recomputed = model->StartDecoding(src);
  model->set_decoding_cache(true);
  const Tensor swap_rows = Ints({1, 0}, {2});
  for (int64_t step = 0; step < 6; ++step) {
    if (step == 3) {
      model->ReorderState(*cached, swap_rows);
      model->ReorderState(*recomputed, swap_rows);
    }
    const Tensor last_tokens = Contiguous(Reshape(Narrow(tgt_in, 1, step, 1), {2}));
    const Tensor with_cache = model->DecodeStep(*cached, last_tokens);  // [2, vocab]
    const Tensor without_cache = model->DecodeStep(*recomputed, last_tokens);
    EXPECT_TRUE(AllClose(without_cache, with_cache.ToFloats(), 2e-5)) << "step " << step;
  }
}

std::vector<ModelCase> AllModelCases() {
  std::vector<ModelCase> cases;
  for (const std::string& positional : PositionalEncodingNames()) {
    for (const char* attention : {"scaled_dot", "dot"}) cases.emplace_back(positional, attention);
  }
  // The variants that carry positions in attention: relative ones without absolute
  // positions (as their papers), local with its window of 1 (tiny_attention_options.h)
  // and the trimmed decoding cache.
  cases.emplace_back("none", "relative");
  cases.emplace_back("none", "t5_bias");
  cases.emplace_back("sinusoidal", "local");
  return cases;
}

INSTANTIATE_TEST_SUITE_P(PositionalAndAttention, TransformerModelTest,
                         ::testing::ValuesIn(AllModelCases()), [](const auto& info) {
                           return std::get<0>(info.param) + "_" + std::get<1>(info.param);
                         });

// ---- Names, sharing, options --------------------------------------------------------------

// The table of layers/transformer/README.md for the tiny post-LN model.
TEST(TransformerTest, ParameterNamesAndShapesAreAsDocumented) {
  std::shared_ptr<Transformer> model = MakeTransformer(TinyTransformerOptions());
  std::vector<std::pair<std::string, Shape>> expected = {{"src_embed.weight", {7, 8}},
                                                         {"tgt_embed.weight", {7, 8}}};
  const auto add_attention = [&](const std::string& prefix) {
    for (const char* projection : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
      expected.push_back({prefix + "." + projection + ".weight", {8, 8}});
      expected.push_back({prefix + "." + projection + ".bias", {8}});
    }
  };
  const auto add_norm = [&](const std::string& prefix) {
    expected.push_back({prefix + ".norm.weight", {8}});
    expected.push_back({prefix + ".norm.bias", {8}});
  };
  const auto add_feed_forward = [&](const std::string& prefix) {
    expected.push_back({prefix + ".feed_forward.linear1.weight", {16, 8}});
    expected.push_back({prefix + ".feed_forward.linear1.bias", {16}});
    expected.push_back({prefix + ".feed_forward.linear2.weight", {8, 16}});
    expected.push_back({prefix + ".feed_forward.linear2.bias", {8}});
    add_norm(prefix + ".feed_forward_sublayer");
  };
  add_attention("encoder.layers.0.self_attn");
  add_norm("encoder.layers.0.self_attn_sublayer");
  add_feed_forward("encoder.layers.0");
  add_attention("decoder.layers.0.self_attn");
  add_norm("decoder.layers.0.self_attn_sublayer");
  add_attention("decoder.layers.0.cross_attn");
  add_norm("decoder.layers.0.cross_attn_sublayer");
  add_feed_forward("decoder.layers.0");
  expected.push_back({"generator.weight", {7, 8}});
  expected.push_back({"generator.bias", {7}});
  EXPECT_EQ(NamesAndShapes(*model), expected);
  // 2 * 56 embeddings + 600 encoder layer + 904 decoder layer + 63 generator.
  EXPECT_EQ(model->ParameterCount(), 1679);
}

TEST(TransformerTest, LayersAreNumberedInTheirStacks) {
  ModelOptions options = TinyTransformerOptions();
  options.encoder_layers = 2;
  options.decoder_layers = 3;
  std::shared_ptr<Transformer> model = MakeTransformer(options);
  EXPECT_TRUE(HasParameter(*model, "encoder.layers.1.feed_forward.linear2.bias"));
  EXPECT_FALSE(HasParameter(*model, "encoder.layers.2.feed_forward.linear2.bias"));
  EXPECT_TRUE(HasParameter(*model, "decoder.layers.2.cross_attn.out_proj.weight"));
  EXPECT_EQ(model->encoder().num_layers(), 2);
  EXPECT_EQ(model->decoder().num_layers(), 3);
}

TEST(TransformerTest, LearnedPositionsAreParametersOfEachSide) {
  std::shared_ptr<Transformer> model = MakeTransformer(TinyTransformerOptions("learned"));
  EXPECT_EQ(NamedParameter(*model, "src_pos_encoding.weight").shape(), (Shape{16, 8}));
  EXPECT_EQ(NamedParameter(*model, "tgt_pos_encoding.weight").shape(), (Shape{16, 8}));
}

TEST(TransformerTest, PreLnAddsFinalNormsAndChangesTheOutput) {
  ModelOptions post_options = TinyTransformerOptions();
  ModelOptions pre_options = post_options;
  pre_options.norm = NormPosition::kPre;
  std::shared_ptr<Transformer> post = MakeTransformer(post_options, 3);
  std::shared_ptr<Transformer> pre = MakeTransformer(pre_options, 3);

  for (const char* name :
       {"encoder.norm.weight", "encoder.norm.bias", "decoder.norm.weight", "decoder.norm.bias"}) {
    EXPECT_TRUE(HasParameter(*pre, name)) << name;
    EXPECT_FALSE(HasParameter(*post, name)) << name;
  }
  EXPECT_TRUE(pre->encoder().has_final_norm() && pre->decoder().has_final_norm());
  EXPECT_FALSE(post->encoder().has_final_norm() || post->decoder().has_final_norm());
  EXPECT_EQ(pre->ParameterCount(), post->ParameterCount() + 4 * 8);
  // Same seed, same weights (the norms start at 1 and 0): only the placement differs.
  EXPECT_TRUE(AllClose(NamedParameter(*pre, "decoder.layers.0.cross_attn.q_proj.weight"),
                       NamedParameter(*post, "decoder.layers.0.cross_attn.q_proj.weight"), 0.0));
  NoGradGuard no_grad;
  EXPECT_FALSE(AllClose(pre->Forward(TinySource(), TinyTargetInput()),
                        post->Forward(TinySource(), TinyTargetInput()), 1e-3));
}

TEST(TransformerTest, SharedEmbeddingsAndTiedGeneratorAreOneTensor) {
  ModelOptions options = TinyTransformerOptions();
  options.share_embeddings = true;
  options.tie_generator = true;
  std::shared_ptr<Transformer> model = MakeTransformer(options);
  EXPECT_EQ(model->src_embed().weight().impl(), model->tgt_embed().weight().impl());
  EXPECT_EQ(model->generator().weight().impl(), model->tgt_embed().weight().impl());
  EXPECT_TRUE(model->generator().tied());
  EXPECT_TRUE(HasParameter(*model, "src_embed.weight"));
  EXPECT_FALSE(HasParameter(*model, "tgt_embed.weight"));
  EXPECT_FALSE(HasParameter(*model, "generator.weight"));
  EXPECT_TRUE(HasParameter(*model, "generator.bias"));
  EXPECT_EQ(model->ParameterCount(), 1679 - 2 * 56);

  // The one table collects the gradient of all three uses: the padding row gets none from
  // the embeddings but does from the generator, and the gradient check covers the sum.
  const Tensor table = NamedParameter(*model, "src_embed.weight");
  model->ZeroGrad();
  SequenceLoss(model->Forward(TinySource(), TinyTargetInput()), TinyTargetOutput()).backward();
  const std::vector<float> gradient = table.grad().ToFloats();
  float padding_row_norm = 0.0f;
  for (int64_t channel = 0; channel < 8; ++channel) padding_row_norm += std::abs(gradient[channel]);
  EXPECT_GT(padding_row_norm, 0.0f);
  EXPECT_TRUE(GradCheck(
      [&](const std::vector<Tensor>&) {
        return SequenceLoss(model->Forward(TinySource(), TinyTargetInput()), TinyTargetOutput());
      },
      {table}));
}

TEST(TransformerTest, TiedGeneratorWithSeparateEmbeddingsUsesTheTargetTable) {
  ModelOptions options = TinyTransformerOptions();
  options.tie_generator = true;
  Vocabularies vocabularies = TinyVocabularies();
  vocabularies.source_size = 9;
  std::shared_ptr<Transformer> model = Transformer::Create(options, vocabularies, 7).value();
  EXPECT_NE(model->src_embed().weight().impl(), model->tgt_embed().weight().impl());
  EXPECT_EQ(model->generator().weight().impl(), model->tgt_embed().weight().impl());
  EXPECT_EQ(model->src_embed().weight().shape(), (Shape{9, 8}));
}

TEST(TransformerTest, InvalidOptionsAreErrorsNamingTheOption) {
  struct Case {
    const char* option;
    std::function<void(ModelOptions&, Vocabularies&)> change;
  };
  const std::vector<Case> cases = {
      {"source_size", [](ModelOptions&, Vocabularies& v) { v.source_size = 0; }},
      {"target_size", [](ModelOptions&, Vocabularies& v) { v.target_size = -1; }},
      {"d_model", [](ModelOptions& o, Vocabularies&) { o.d_model = 0; }},
      {"attention", [](ModelOptions& o, Vocabularies&) { o.attention.heads = 3; }},
      {"d_ff", [](ModelOptions& o, Vocabularies&) { o.d_ff = 0; }},
      {"encoder_layers", [](ModelOptions& o, Vocabularies&) { o.encoder_layers = 0; }},
      {"decoder_layers", [](ModelOptions& o, Vocabularies&) { o.decoder_layers = 0; }},
      {"dropout", [](ModelOptions& o, Vocabularies&) { o.dropout = 1.0; }},
      {"attention_dropout", [](ModelOptions& o, Vocabularies&) { o.attention.dropout = -0.1; }},
      {"attention", [](ModelOptions& o, Vocabularies&) { o.attention.variant = "telepathic"; }},
      {"positional", [](ModelOptions& o, Vocabularies&) { o.positional = "astrological"; }},
      {"positional",
       [](ModelOptions& o, Vocabularies&) {  // RoPE with an odd head dimension
         o.positional = "rope";
         o.d_model = 6;
       }},
      {"max_len", [](ModelOptions& o, Vocabularies&) { o.max_len = 0; }},
      {"share_embeddings",
       [](ModelOptions& o, Vocabularies& v) {
         o.share_embeddings = true;
         v.source_size = 9;
       }},
      {"pad_id", [](ModelOptions&, Vocabularies& v) { v.special_tokens.pad_id = 7; }},
      {"bos_id", [](ModelOptions&, Vocabularies& v) { v.special_tokens.bos_id = -1; }},
      {"eos_id", [](ModelOptions&, Vocabularies& v) { v.special_tokens.eos_id = 70; }},
  };
  for (const Case& c : cases) {
    ModelOptions options = TinyTransformerOptions();
    Vocabularies vocabularies = TinyVocabularies();
    c.change(options, vocabularies);
    const absl::StatusOr<std::shared_ptr<Transformer>> model =
        Transformer::Create(options, vocabularies, 1);
    ASSERT_FALSE(model.ok()) << c.option;
    EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument) << c.option;
    const std::string message(model.status().message());
    EXPECT_NE(message.find(std::string("Transformer: ") + c.option + ":"), std::string::npos)
        << message;
  }
}

TEST(TransformerTest, SameSeedSameWeightsOtherSeedOtherWeights) {
  std::shared_ptr<Transformer> first = MakeTransformer(TinyTransformerOptions(), 11);
  std::shared_ptr<Transformer> second = MakeTransformer(TinyTransformerOptions(), 11);
  std::shared_ptr<Transformer> third = MakeTransformer(TinyTransformerOptions(), 12);
  NoGradGuard no_grad;
  const Tensor logits = first->Forward(TinySource(), TinyTargetInput());
  EXPECT_TRUE(AllClose(second->Forward(TinySource(), TinyTargetInput()), logits, 0.0));
  EXPECT_FALSE(AllClose(third->Forward(TinySource(), TinyTargetInput()), logits, 1e-3));
}

TEST(TransformerTest, DropoutActsOnlyInTrainingMode) {
  ModelOptions options = TinyTransformerOptions();
  std::shared_ptr<Transformer> plain = MakeTransformer(options, 9);
  options.dropout = 0.3;
  options.attention.dropout = 0.2;
  std::shared_ptr<Transformer> dropping = MakeTransformer(options, 9);
  NoGradGuard no_grad;
  // Dropout draws nothing at construction, so both models have the same weights.
  plain->Eval();
  dropping->Eval();
  const Tensor expected = plain->Forward(TinySource(), TinyTargetInput());
  EXPECT_TRUE(AllClose(dropping->Forward(TinySource(), TinyTargetInput()), expected, 0.0));
  dropping->Train();
  EXPECT_FALSE(AllClose(dropping->Forward(TinySource(), TinyTargetInput()), expected, 1e-3));
}

// ---- Masks, attention weights, decoding state --------------------------------------------

TEST(TransformerTest, SourcePaddingMaskIsOneAtPadTokens) {
  std::shared_ptr<Transformer> model = MakeTransformer(TinyTransformerOptions());
  const Tensor mask = model->SourcePaddingMask(TinySource());
  EXPECT_EQ(mask.dtype(), DType::kF32);
  EXPECT_TRUE(AllClose(mask, std::vector<float>{0, 0, 0, 0, 0, 0, 0, 0, 1, 1}, 0.0));
}

TEST(TransformerTest, SourcePaddingDoesNotChangeTheOutput) {
  std::shared_ptr<Transformer> model = MakeTransformer(TinyTransformerOptions());
  NoGradGuard no_grad;
  const Tensor tgt_in = Ints({1, 5, 5}, {1, 3});
  const Tensor unpadded = model->Forward(Ints({5, 3, 6}, {1, 3}), tgt_in);
  const Tensor padded = model->Forward(Ints({5, 3, 6, 0, 0}, {1, 5}), tgt_in);
  EXPECT_TRUE(AllClose(padded, unpadded, 1e-5));
}

TEST(TransformerTest, ForwardWithAttentionReturnsEveryLayersWeights) {
  ModelOptions options = TinyTransformerOptions();
  options.encoder_layers = 2;
  options.decoder_layers = 2;
  std::shared_ptr<Transformer> model = MakeTransformer(options);
  NoGradGuard no_grad;
  const TransformerOutput output = model->ForwardWithAttention(TinySource(), TinyTargetInput());
  EXPECT_TRUE(AllClose(output.logits, model->Forward(TinySource(), TinyTargetInput()), 0.0));
  const TransformerAttentionWeights& attention = output.attention;
  ASSERT_EQ(attention.encoder_self_attn.size(), 2u);
  ASSERT_EQ(attention.decoder_self_attn.size(), 2u);
  ASSERT_EQ(attention.cross_attn.size(), 2u);
  for (int layer = 0; layer < 2; ++layer) {
    EXPECT_EQ(attention.encoder_self_attn[layer].shape(), (Shape{2, 2, 5, 5}));
    EXPECT_EQ(attention.decoder_self_attn[layer].shape(), (Shape{2, 2, 4, 4}));
    const Tensor& cross = attention.cross_attn[layer];
    ASSERT_EQ(cross.shape(), (Shape{2, 2, 4, 5}));
    // Rows sum to one; the second source's two padded keys get no weight.
    EXPECT_TRUE(AllClose(Sum(cross, {-1}), Tensor::Full({2, 2, 4}, 1.0f), 1e-5));
    const std::vector<float> weights = cross.ToFloats();
    for (int64_t head = 0; head < 2; ++head) {
      for (int64_t query = 0; query < 4; ++query) {
        for (int64_t key = 3; key < 5; ++key) {
          EXPECT_EQ(weights[((1 * 2 + head) * 4 + query) * 5 + key], 0.0f);
        }
      }
    }
    // The decoder's self-attention is causal: nothing above the diagonal.
    const std::vector<float> self_weights = attention.decoder_self_attn[layer].ToFloats();
    for (int64_t row = 0; row < 2 * 2; ++row) {
      for (int64_t query = 0; query < 4; ++query) {
        for (int64_t key = query + 1; key < 4; ++key) {
          EXPECT_EQ(self_weights[(row * 4 + query) * 4 + key], 0.0f);
        }
      }
    }
  }
}

TEST(TransformerTest, ReorderStateMovesEveryCachedRow) {
  std::shared_ptr<Transformer> model = MakeTransformer(TinyTransformerOptions("rope"));
  model->Eval();
  NoGradGuard no_grad;
  const Tensor src = TinySource();
  const Tensor order = Ints({1, 0, 1}, {3});
  const Tensor reordered_src = IndexSelect(src, 0, order);
  // Reordering after one step must equal decoding the reordered sources from the start.
  std::unique_ptr<DecoderState> moved = model->StartDecoding(src);
  model->DecodeStep(*moved, Ints({1, 1}, {2}));
  model->ReorderState(*moved, order);
  std::unique_ptr<DecoderState> fresh = model->StartDecoding(reordered_src);
  model->DecodeStep(*fresh, Ints({1, 1, 1}, {3}));
  for (const std::vector<int32_t>& tokens : {std::vector<int32_t>{4, 5, 6}, {3, 3, 2}}) {
    const Tensor expected = model->DecodeStep(*fresh, Ints(tokens, {3}));
    EXPECT_TRUE(AllClose(model->DecodeStep(*moved, Ints(tokens, {3})), expected, 1e-6));
  }
  const auto& state = dynamic_cast<const TransformerDecoderState&>(*moved);
  EXPECT_EQ(state.steps, 3);
  EXPECT_EQ(state.memory.shape(), (Shape{3, 5, 8}));
  EXPECT_EQ(state.caches[0].self_attn.key.shape(), (Shape{3, 2, 3, 4}));
  EXPECT_EQ(state.caches[0].cross_attn.key.shape(), (Shape{3, 2, 5, 4}));
}

// ---- Training: the copy task ----------------------------------------------------------------

// The Annotated Transformer's first recipe, smaller: copy 6 random symbols. Vocabulary 10
// (pad 0, bos 1, eos 2, symbols 3..9), d_model 32, 4 heads, d_ff 64, 2 + 2 layers,
// post-LN, no dropout, batch 64, Adam (0.9, 0.98, 1e-9) at 5e-3 after a linear warmup of
// 20 steps, seeds 1 (weights) and 2 (data). Budget: the mean cross-entropy of the last
// 10 steps falls below 0.002 within 800 steps (trained past the point where the copies are
// right, so that decoding is not decided by a hair; a few seconds in Release
// on an idle machine); then greedy decoding and beam search copy at least 29 of 30 unseen
// sequences.
TEST(TransformerTrainingTest, LearnsToCopySequences) {
  constexpr int64_t kVocab = 10, kLength = 6, kBatch = 64, kMaxSteps = 800, kWarmup = 20;
  constexpr double kLearningRate = 5e-3, kLossThreshold = 0.002;
  ModelOptions options;
  options.d_model = 32;
  options.attention.heads = 4;
  options.d_ff = 64;
  options.encoder_layers = options.decoder_layers = 2;
  options.dropout = 0.0;
  options.attention.dropout = 0.0;
  options.max_len = 16;
  std::shared_ptr<Transformer> model =
      Transformer::Create(options, {kVocab, kVocab, SpecialTokens()}, 1).value();
  model->Train();
  AdamOptions adam_options;
  adam_options.beta2 = 0.98;
  adam_options.epsilon = 1e-9;
  Adam adam(model->NamedParameters(), adam_options);

  Generator data_generator(2);
  // A batch of copy examples: src [n, L]; tgt_in = bos + src [n, L + 1]; tgt_out = src + eos.
  const auto make_batch = [&](int64_t count) {
    const std::vector<int32_t> symbols =
        RandomInts({count, kLength}, 3, static_cast<int32_t>(kVocab), data_generator).ToInts();
    std::vector<int32_t> tgt_in, tgt_out;
    for (int64_t row = 0; row < count; ++row) {
      tgt_in.push_back(1);
      for (int64_t t = 0; t < kLength; ++t) {
        tgt_in.push_back(symbols[row * kLength + t]);
        tgt_out.push_back(symbols[row * kLength + t]);
      }
      tgt_out.push_back(2);
    }
    return std::make_tuple(Ints(symbols, {count, kLength}), Ints(tgt_in, {count, kLength + 1}),
                           Ints(tgt_out, {count, kLength + 1}));
  };

  const auto start = std::chrono::steady_clock::now();
  std::vector<double> losses;
  int64_t steps = 0;
  double recent_loss = 1e9;
  while (steps < kMaxSteps && recent_loss >= kLossThreshold) {
    const auto [src, tgt_in, tgt_out] = make_batch(kBatch);
    adam.ZeroGrad();
    const Tensor loss = SequenceLoss(model->Forward(src, tgt_in), tgt_out);
    loss.backward();
    ++steps;
    adam.Step(kLearningRate * std::min(1.0, static_cast<double>(steps) / kWarmup));
    losses.push_back(loss.item());
    if (losses.size() >= 10) {
      recent_loss = 0.0;
      for (size_t i = losses.size() - 10; i < losses.size(); ++i) recent_loss += losses[i] / 10;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(recent_loss, kLossThreshold)
      << "after " << steps << " steps, first loss " << losses.front();
  std::cout << "copy task: loss " << losses.front() << " -> " << recent_loss << " in " << steps
            << " steps, " << seconds << " s\n";

  const auto [src, tgt_in, tgt_out] = make_batch(30);
  const DecodeResult greedy = GreedyDecode(*model, src, kLength + 2);
  EXPECT_TRUE(model->is_training());  // decoding restores the mode
  const std::vector<int32_t> expected = src.ToInts();
  int64_t copied = 0;
  for (int64_t row = 0; row < 30; ++row) {
    const std::vector<int32_t> source(expected.begin() + row * kLength,
                                      expected.begin() + (row + 1) * kLength);
    copied += greedy.tokens[row] == source;
  }
  EXPECT_GE(copied, 29) << "greedy decoding copied " << copied << " of 30";
  BeamSearchOptions beam_options;
  beam_options.beam_size = 3;
  beam_options.max_len = kLength + 2;
  const DecodeResult beam = BeamSearch(*model, src, beam_options);
  int64_t beam_copied = 0;
  for (int64_t row = 0; row < 30; ++row) {
    beam_copied += beam.tokens[row] == std::vector<int32_t>(expected.begin() + row * kLength,
                                                            expected.begin() + (row + 1) * kLength);
  }
  EXPECT_GE(beam_copied, 29) << "beam search copied " << beam_copied << " of 30";
}

}  // namespace
}  // namespace attnlab::nn
