// Greedy decoding and beam search: on a scripted model whose next-token distribution is a
// fixed function of the source and the prefix (so the right answers are worked by hand),
// and on the tiny Transformer (beam size 1 equals greedy; greedy equals the argmax of a
// full forward pass).
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "framework/autograd/grad_mode.h"
#include "framework/ops/ops.h"
#include "gtest/gtest.h"
#include "layers/decoding/beam_search.h"
#include "layers/decoding/greedy.h"
#include "layers/decoding/seq2seq_model.h"
#include "layers/positional/positional_encoding.h"
#include "layers/transformer/transformer.h"
#include "tests/layers/tiny_transformer.h"
#include "tests/support/gradcheck.h"

namespace attnlab::nn {
namespace {

using testing::Ints;
using testing::MakeTransformer;
using testing::TinyTransformerOptions;

constexpr int32_t kPad = 0, kBos = 1, kEos = 2, kA = 3, kB = 4;
constexpr int64_t kScriptedVocab = 5;

// Next-token probabilities over {pad, bos, eos, a, b} as a function of the source's
// first token and the prefix decoded so far.
//   source a ("trap"): greedy takes a (0.5), but b (0.4) then eos (0.9) is better:
//     [] -> a 0.5, b 0.4, eos 0.1;  [a] -> a 0.34, b 0.33, eos 0.33;  [b] -> eos 0.9
//   source b ("short"): [] -> eos 0.8, a 0.2
//   any longer prefix: eos 0.9, a 0.05, b 0.05
//   source kLong ("long"): the answer is a a a a (then eos), each step 0.95, while
//     improbable hypotheses end early: eos 0.03 at every a-only prefix shorter than 4,
//     and any prefix with a b ends (eos 0.99).
constexpr int32_t kLong = 9;  // a source id the script knows; never a target token
std::vector<double> ScriptedProbabilities(int32_t source, const std::vector<int32_t>& prefix) {
  std::vector<double> p(kScriptedVocab, 0.0);
  if (source == kLong) {
    const bool has_b = std::find(prefix.begin(), prefix.end(), kB) != prefix.end();
    if (has_b) {
      p[kEos] = 0.99, p[kA] = 0.005, p[kB] = 0.005;
    } else if (prefix.size() < 4) {
      p[kA] = 0.95, p[kEos] = 0.03, p[kB] = 0.02;
    } else {
      p[kEos] = 0.95, p[kA] = 0.03, p[kB] = 0.02;
    }
  } else if (source == kA && prefix.empty()) {
    p[kA] = 0.5, p[kB] = 0.4, p[kEos] = 0.1;
  } else if (source == kA && prefix == std::vector<int32_t>{kA}) {
    p[kA] = 0.34, p[kB] = 0.33, p[kEos] = 0.33;
  } else if (source == kA && prefix == std::vector<int32_t>{kB}) {
    p[kEos] = 0.9, p[kA] = 0.05, p[kB] = 0.05;
  } else if (source == kB && prefix.empty()) {
    p[kEos] = 0.8, p[kA] = 0.2;
  } else {
    p[kEos] = 0.9, p[kA] = 0.05, p[kB] = 0.05;
  }
  return p;
}

struct ScriptedState : DecoderState {
  std::vector<int32_t> sources;                // per row
  std::vector<std::vector<int32_t>> prefixes;  // per row, tokens fed after bos
  bool started = false;
};

class ScriptedModel : public Seq2SeqModel {
 public:
  Tensor Forward(const Tensor&, const Tensor&) override { return Tensor(); }

  std::unique_ptr<DecoderState> StartDecoding(const Tensor& src) override {
    auto state = std::make_unique<ScriptedState>();
    const std::vector<int32_t> ids = src.ToInts();
    for (int64_t row = 0; row < src.size(0); ++row)
      state->sources.push_back(ids[row * src.size(1)]);
    state->prefixes.resize(src.size(0));
    return state;
  }

  Tensor DecodeStep(DecoderState& state, const Tensor& last_tokens) override {
    ++steps_;
    grad_enabled_during_steps_ |= GradMode::IsEnabled();
    training_during_steps_ |= is_training();
    auto& scripted = static_cast<ScriptedState&>(state);
    const std::vector<int32_t> tokens = last_tokens.ToInts();
    EXPECT_EQ(tokens.size(), scripted.sources.size());
    std::vector<float> log_probs;
    for (size_t row = 0; row < tokens.size(); ++row) {
      if (scripted.started)
        scripted.prefixes[row].push_back(tokens[row]);
      else
        EXPECT_EQ(tokens[row], kBos);
      for (double p : ScriptedProbabilities(scripted.sources[row], scripted.prefixes[row])) {
        log_probs.push_back(static_cast<float>(std::log(p)));  // log 0 = -inf
      }
    }
    scripted.started = true;
    return Tensor::FromFloats(log_probs, {static_cast<int64_t>(tokens.size()), kScriptedVocab});
  }

  void ReorderState(DecoderState& state, const Tensor& indices) override {
    auto& scripted = static_cast<ScriptedState&>(state);
    ScriptedState old = scripted;
    scripted.sources.clear();
    scripted.prefixes.clear();
    for (int32_t index : indices.ToInts()) {
      scripted.sources.push_back(old.sources.at(index));
      scripted.prefixes.push_back(old.prefixes.at(index));
    }
  }

  const SpecialTokens& special_tokens() const override { return special_tokens_; }
  int64_t target_vocab_size() const override { return kScriptedVocab; }

  int64_t steps() const { return steps_; }
  bool grad_enabled_during_steps() const { return grad_enabled_during_steps_; }
  bool training_during_steps() const { return training_during_steps_; }

 private:
  SpecialTokens special_tokens_{kPad, kBos, kEos};
  int64_t steps_ = 0;
  bool grad_enabled_during_steps_ = false;
  bool training_during_steps_ = false;
};

float LogOf(double p) { return static_cast<float>(std::log(p)); }

TEST(GreedyDecodeTest, TakesTheMostProbableTokenAndStopsAtEos) {
  ScriptedModel model;
  const DecodeResult result = GreedyDecode(model, Ints({kA, kB}, {2, 1}), 50);
  ASSERT_EQ(result.tokens.size(), 2u);
  // Source a: a (0.5), a (0.34), eos (0.9). Source b: eos at once.
  EXPECT_EQ(result.tokens[0], (std::vector<int32_t>{kA, kA}));
  EXPECT_EQ(result.tokens[1], std::vector<int32_t>{});
  EXPECT_NEAR(result.scores[0], LogOf(0.5) + LogOf(0.34) + LogOf(0.9), 1e-5);
  EXPECT_NEAR(result.scores[1], LogOf(0.8), 1e-6);
  EXPECT_EQ(model.steps(), 3);  // stops when every row has ended, not at max_len
}

TEST(GreedyDecodeTest, RunsWithoutGradInEvalModeAndRestoresTraining) {
  ScriptedModel model;
  model.Train();
  GreedyDecode(model, Ints({kA}, {1, 1}), 5);
  EXPECT_FALSE(model.grad_enabled_during_steps());
  EXPECT_FALSE(model.training_during_steps());
  EXPECT_TRUE(model.is_training());
  EXPECT_TRUE(GradMode::IsEnabled());
}

TEST(GreedyDecodeTest, MaxLenCutsHypothesesWithoutEos) {
  ScriptedModel model;
  const DecodeResult result = GreedyDecode(model, Ints({kA}, {1, 1}), 1);
  EXPECT_EQ(result.tokens[0], std::vector<int32_t>{kA});
  EXPECT_NEAR(result.scores[0], LogOf(0.5), 1e-6);
  EXPECT_EQ(GreedyDecode(model, Ints({kA}, {1, 1}), 0).tokens[0], std::vector<int32_t>{});
}

TEST(BeamSearchTest, LengthPenaltyIsGnmts) {
  EXPECT_FLOAT_EQ(LengthPenalty(1, 0.6f), 1.0f);
  EXPECT_FLOAT_EQ(LengthPenalty(7, 0.6f), std::pow(2.0f, 0.6f));
  EXPECT_FLOAT_EQ(LengthPenalty(13, 1.0f), 3.0f);
  EXPECT_FLOAT_EQ(LengthPenalty(40, 0.0f), 1.0f);
}

TEST(BeamSearchTest, FindsTheHypothesisGreedyMisses) {
  ScriptedModel model;
  BeamSearchOptions options;
  options.beam_size = 2;
  options.max_len = 50;
  options.length_penalty = 0.0f;
  const DecodeResult result = BeamSearch(model, Ints({kA, kB}, {2, 1}), options);
  // Source a: b eos = 0.4 * 0.9 = 0.36 beats greedy's a a eos = 0.153.
  EXPECT_EQ(result.tokens[0], std::vector<int32_t>{kB});
  EXPECT_NEAR(result.scores[0], LogOf(0.4) + LogOf(0.9), 1e-5);
  // Source b: eos at once (0.8) beats a eos (0.18).
  EXPECT_EQ(result.tokens[1], std::vector<int32_t>{});
  EXPECT_NEAR(result.scores[1], LogOf(0.8), 1e-6);
  // Worked by hand: after step 2, b eos (0.36) has finished and the best live beam of
  // source a, a a (0.5 x 0.34 = 0.17), can only fall, so both sources are done.
  EXPECT_EQ(model.steps(), 2);
  EXPECT_FALSE(model.grad_enabled_during_steps());
  EXPECT_FALSE(model.training_during_steps());
}

TEST(BeamSearchTest, ImprobableEarlyEndingsDoNotCutOffTheBestBeam) {
  // Beam 2 on the long source: "" (eos, 0.03) finishes at step 1 and "b" eos (0.0198) at
  // step 2, two finished hypotheses while "a a" (0.9025) is alive. Stopping at beam_size
  // finished hypotheses would return the empty one; the best is a a a a eos = 0.95^5.
  ScriptedModel model;
  BeamSearchOptions options;
  options.beam_size = 2;
  options.max_len = 10;
  options.length_penalty = 0.0f;
  const DecodeResult result = BeamSearch(model, Ints({kLong}, {1, 1}), options);
  EXPECT_EQ(result.tokens[0], (std::vector<int32_t>{kA, kA, kA, kA}));
  EXPECT_NEAR(result.scores[0], 5 * LogOf(0.95), 1e-5);
}

TEST(BeamSearchTest, LengthPenaltyDividesTheScore) {
  ScriptedModel model;
  BeamSearchOptions options;
  options.beam_size = 2;
  options.max_len = 50;
  options.length_penalty = 1.0f;
  const DecodeResult result = BeamSearch(model, Ints({kA}, {1, 1}), options);
  // b eos: length 2, lp = 7/6; a a eos: length 3, lp = 8/6 -> still b eos.
  EXPECT_EQ(result.tokens[0], std::vector<int32_t>{kB});
  EXPECT_NEAR(result.scores[0], (LogOf(0.4) + LogOf(0.9)) / (7.0f / 6.0f), 1e-5);
}

TEST(BeamSearchTest, MaxLenFinishesTheLiveBeams) {
  ScriptedModel model;
  BeamSearchOptions options;
  options.beam_size = 2;
  options.max_len = 1;
  options.length_penalty = 0.0f;
  const DecodeResult result = BeamSearch(model, Ints({kA}, {1, 1}), options);
  EXPECT_EQ(result.tokens[0], std::vector<int32_t>{kA});
  EXPECT_NEAR(result.scores[0], LogOf(0.5), 1e-6);
}

TEST(BeamSearchTest, BeamSizeOneEqualsGreedyOnTheScriptedModel) {
  ScriptedModel greedy_model, beam_model;
  const Tensor src = Ints({kA, kB, kA}, {3, 1});
  const DecodeResult greedy = GreedyDecode(greedy_model, src, 10);
  BeamSearchOptions options;
  options.beam_size = 1;
  options.max_len = 10;
  options.length_penalty = 0.0f;
  const DecodeResult beam = BeamSearch(beam_model, src, options);
  EXPECT_EQ(beam.tokens, greedy.tokens);
  EXPECT_EQ(beam.scores, greedy.scores);
}

TEST(BeamSearchNBestTest, ListsTheBestFinishedHypothesesWorkedByHand) {
  ScriptedModel model;
  BeamSearchOptions options;
  options.beam_size = 3;
  options.max_len = 50;
  options.length_penalty = 0.0f;
  options.nbest = 3;
  const std::vector<std::vector<ScoredHypothesis>> lists =
      BeamSearchNBest(model, Ints({kA}, {1, 1}), options);
  ASSERT_EQ(lists.size(), 1u);
  const std::vector<ScoredHypothesis>& list = lists[0];
  // Step 1 finishes "" (eos 0.1); step 2 "b" (0.4 x 0.9 = 0.36) and "a" (0.5 x 0.33 =
  // 0.165; it ties with a b and wins on the lower token id), while a a (0.17) lives on;
  // step 3 finishes a a (0.153), a b (0.1485) and b a (0.018), and the third best, 0.153,
  // beats every live beam (at most 0.0085), so the search stops there.
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].tokens, std::vector<int32_t>{kB});
  EXPECT_EQ(list[1].tokens, std::vector<int32_t>{kA});
  EXPECT_EQ(list[2].tokens, (std::vector<int32_t>{kA, kA}));
  EXPECT_NEAR(list[0].log_prob, LogOf(0.4) + LogOf(0.9), 1e-5);
  EXPECT_NEAR(list[1].log_prob, LogOf(0.5) + LogOf(0.33), 1e-5);
  EXPECT_NEAR(list[2].log_prob, LogOf(0.5) + LogOf(0.34) + LogOf(0.9), 1e-5);
  for (const ScoredHypothesis& hypothesis : list) {
    EXPECT_TRUE(hypothesis.ended_with_eos);
    EXPECT_EQ(hypothesis.score, hypothesis.log_prob);  // alpha 0
  }
  EXPECT_EQ(model.steps(), 3);
  // The 1-best stops at step 2 (see FindsTheHypothesisGreedyMisses) with the same answer.
  options.nbest = 1;
  ScriptedModel one_best_model;
  const DecodeResult one_best = BeamSearch(one_best_model, Ints({kA}, {1, 1}), options);
  EXPECT_EQ(one_best.tokens[0], list[0].tokens);
  EXPECT_EQ(one_best.scores[0], list[0].score);
  EXPECT_EQ(one_best_model.steps(), 2);
}

TEST(BeamSearchNBestTest, SearchesOnUntilTheListIsFull) {
  // Source b: eos at once (0.8) beats the only live beam, a (0.2), so the 1-best stops
  // after one step; the 2-best list also needs a eos (0.2 x 0.9 = 0.18).
  ScriptedModel model;
  BeamSearchOptions options;
  options.beam_size = 2;
  options.max_len = 50;
  options.length_penalty = 0.0f;
  options.nbest = 2;
  const std::vector<ScoredHypothesis> list = BeamSearchNBest(model, Ints({kB}, {1, 1}), options)[0];
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].tokens, std::vector<int32_t>{});
  EXPECT_EQ(list[1].tokens, std::vector<int32_t>{kA});
  EXPECT_NEAR(list[0].log_prob, LogOf(0.8), 1e-6);
  EXPECT_NEAR(list[1].log_prob, LogOf(0.2) + LogOf(0.9), 1e-5);
  EXPECT_EQ(model.steps(), 2);
  options.nbest = 1;
  ScriptedModel one_best_model;
  const DecodeResult one_best = BeamSearch(one_best_model, Ints({kB}, {1, 1}), options);
  EXPECT_EQ(one_best.tokens[0], std::vector<int32_t>{});
  EXPECT_EQ(one_best_model.steps(), 1);
}

TEST(BeamSearchNBestTest, HypothesesCutAtMaxLenHaveNoEos) {
  ScriptedModel model;
  BeamSearchOptions options;
  options.beam_size = 3;
  options.max_len = 1;
  options.length_penalty = 0.0f;
  options.nbest = 3;
  const std::vector<ScoredHypothesis> list = BeamSearchNBest(model, Ints({kA}, {1, 1}), options)[0];
  // One step: a (0.5) and b (0.4) are cut there, "" ends with eos (0.1).
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].tokens, std::vector<int32_t>{kA});
  EXPECT_FALSE(list[0].ended_with_eos);
  EXPECT_NEAR(list[0].log_prob, LogOf(0.5), 1e-6);
  EXPECT_EQ(list[1].tokens, std::vector<int32_t>{kB});
  EXPECT_FALSE(list[1].ended_with_eos);
  EXPECT_EQ(list[2].tokens, std::vector<int32_t>{});
  EXPECT_TRUE(list[2].ended_with_eos);
  EXPECT_NEAR(list[2].log_prob, LogOf(0.1), 1e-6);
  options.max_len = 0;
  EXPECT_TRUE(BeamSearchNBest(model, Ints({kA}, {1, 1}), options)[0].empty());
}

// ---- On the tiny Transformer -------------------------------------------------------------

// Sources of the tiny vocabulary (0 pad, 1 bos, 2 eos, 3..6 symbols), some padded.
Tensor TinySources() {
  return Ints({3, 4, 5, 6, 3, 5, 3, 6, 0, 0, 6, 6, 4, 0, 0, 4, 3, 3, 5, 6}, {4, 5});
}

class TransformerDecodingTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TransformerDecodingTest, BeamSizeOneEqualsGreedy) {
  std::shared_ptr<Transformer> model = MakeTransformer(TinyTransformerOptions(GetParam()), 5);
  const Tensor src = TinySources();
  const DecodeResult greedy = GreedyDecode(*model, src, 12);
  for (float alpha : {0.0f, 0.6f}) {
    BeamSearchOptions options;
    options.beam_size = 1;
    options.max_len = 12;
    options.length_penalty = alpha;
    const DecodeResult beam = BeamSearch(*model, src, options);
    EXPECT_EQ(beam.tokens, greedy.tokens) << "alpha " << alpha;
    if (alpha == 0.0f) {
      EXPECT_EQ(beam.scores, greedy.scores);
    }
  }
}

// Asked for more tokens than the positional table holds, decoding stops at its end rather
// than failing there (cmudict's longest words asked for 2 x 29 + 10 = 68 tokens of a
// max_len 64 model, and the run died in its final test).
TEST(TransformerDecodingTest, StopsAtTheEndOfThePositionalTable) {
  ModelOptions options = TinyTransformerOptions();
  options.max_len = 6;
  std::shared_ptr<Transformer> model = MakeTransformer(options, 5);
  // eos never wins, so only the limit can end a hypothesis.
  for (auto& [name, parameter] : model->NamedParameters()) {
    if (name == "generator.bias") parameter.data<float>()[model->special_tokens().eos_id] = -1e9f;
  }
  const Tensor src = Ints({3, 4, 5, 6, 3}, {1, 5});
  const DecodeResult greedy = GreedyDecode(*model, src, 100);
  EXPECT_EQ(greedy.tokens[0].size(), 6u);
  BeamSearchOptions beam_options;
  beam_options.beam_size = 3;
  beam_options.max_len = 100;
  const DecodeResult beam = BeamSearch(*model, src, beam_options);
  EXPECT_EQ(beam.tokens[0].size(), 6u);
}

// Re-runs the model on bos + `tokens` (+ eos when the hypothesis ended before max_len):
// the log-probabilities [length, vocab] of each next token, and its targets.
struct Rescored {
  std::vector<float> log_probs;
  std::vector<int32_t> argmax;   // per position, over the tokens a decoder may emit
  std::vector<int32_t> targets;  // tokens, then eos if it ended
  double total = 0.0;            // sum of the targets' log-probabilities
};

Rescored Rescore(Transformer& model, const Tensor& src, int64_t row,
                 const std::vector<int32_t>& tokens, int64_t max_len) {
  NoGradGuard no_grad;
  model.Eval();
  Rescored rescored;
  rescored.targets = tokens;
  if (static_cast<int64_t>(tokens.size()) < max_len) rescored.targets.push_back(kEos);
  std::vector<int32_t> tgt_in = {kBos};
  tgt_in.insert(tgt_in.end(), rescored.targets.begin(), rescored.targets.end() - 1);
  const int64_t length = static_cast<int64_t>(tgt_in.size());
  const Tensor log_probs =
      LogSoftmax(model.Forward(Narrow(src, 0, row, 1).contiguous(), Ints(tgt_in, {1, length})));
  rescored.log_probs = log_probs.ToFloats();  // [1, length, vocab]
  for (int64_t t = 0; t < length; ++t) {
    // The most probable token a decoder may emit (not pad or bos).
    int32_t best = kEos;
    for (int32_t token = kEos; token < testing::kTinyVocab; ++token) {
      const float* row = rescored.log_probs.data() + t * testing::kTinyVocab;
      if (row[token] > row[best]) best = token;
    }
    rescored.argmax.push_back(best);
    rescored.total += rescored.log_probs[t * testing::kTinyVocab + rescored.targets[t]];
  }
  return rescored;
}

TEST_P(TransformerDecodingTest, GreedyMatchesTheArgmaxOfAFullForward) {
  std::shared_ptr<Transformer> model = MakeTransformer(TinyTransformerOptions(GetParam()), 6);
  const Tensor src = TinySources();
  constexpr int64_t kMaxLen = 8;
  const DecodeResult greedy = GreedyDecode(*model, src, kMaxLen);
  for (int64_t row = 0; row < src.size(0); ++row) {
    const Rescored rescored = Rescore(*model, src, row, greedy.tokens[row], kMaxLen);
    EXPECT_EQ(rescored.argmax, rescored.targets) << "row " << row;
    EXPECT_NEAR(greedy.scores[row], rescored.total, 1e-4) << "row " << row;
  }
}

TEST_P(TransformerDecodingTest, BeamScoresAreLengthNormalizedLogProbabilities) {
  std::shared_ptr<Transformer> model = MakeTransformer(TinyTransformerOptions(GetParam()), 8);
  const Tensor src = TinySources();
  BeamSearchOptions options;
  options.beam_size = 4;
  options.max_len = 6;
  options.length_penalty = 0.6f;
  const DecodeResult beam = BeamSearch(*model, src, options);
  ASSERT_EQ(beam.tokens.size(), 4u);
  for (int64_t row = 0; row < 4; ++row) {
    for (int32_t token : beam.tokens[row]) {
      EXPECT_NE(token, kEos);
      EXPECT_NE(token, kBos);
    }
    const Rescored rescored = Rescore(*model, src, row, beam.tokens[row], options.max_len);
    const int64_t length = static_cast<int64_t>(rescored.targets.size());
    EXPECT_NEAR(beam.scores[row], rescored.total / LengthPenalty(length, 0.6f), 1e-4)
        << "row " << row;
  }
}

// Full recomputation (no key/value cache) finds the same hypotheses as the cache.
TEST_P(TransformerDecodingTest, DecodingWithoutTheCacheFindsTheSameHypotheses) {
  std::shared_ptr<Transformer> model = MakeTransformer(TinyTransformerOptions(GetParam()), 9);
  const Tensor src = TinySources();
  BeamSearchOptions options;
  options.beam_size = 3;
  options.max_len = 7;
  const DecodeResult greedy = GreedyDecode(*model, src, options.max_len);
  const DecodeResult beam = BeamSearch(*model, src, options);
  model->set_decoding_cache(false);
  const DecodeResult greedy_recomputed = GreedyDecode(*model, src, options.max_len);
  const DecodeResult beam_recomputed = BeamSearch(*model, src, options);
  EXPECT_EQ(greedy_recomputed.tokens, greedy.tokens);
  EXPECT_EQ(beam_recomputed.tokens, beam.tokens);
  for (size_t row = 0; row < beam.scores.size(); ++row) {
    EXPECT_NEAR(greedy_recomputed.scores[row], greedy.scores[row], 1e-4) << "row " << row;
    EXPECT_NEAR(beam_recomputed.scores[row], beam.scores[row], 1e-4) << "row " << row;
  }
}

INSTANTIATE_TEST_SUITE_P(Positional, TransformerDecodingTest,
                         ::testing::ValuesIn(PositionalEncodingNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace attnlab::nn
