// Teacher-forced scoring of given targets (layers/decoding/sequence_scoring.h) and beam
// search's n-best lists, on the tiny Transformer (every positional encoding) and the tiny
// RNN seq2seq (GRU and LSTM, Bahdanau and Luong): a target's score is the sum of
// log_softmax(logits) at its tokens, worked out here from the logits of a forward pass
// over that row alone; an n-best list is sorted, holds different hypotheses, starts with
// the 1-best, and each entry's log_prob is what teacher forcing gives its tokens.
#include "layers/decoding/sequence_scoring.h"

#include <cmath>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "framework/autograd/grad_mode.h"
#include "framework/ops/ops.h"
#include "gtest/gtest.h"
#include "layers/decoding/beam_search.h"
#include "layers/positional/positional_encoding.h"
#include "layers/rnn/rnn_seq2seq.h"
#include "tests/layers/tiny_transformer.h"

namespace attnlab::nn {
namespace {

using testing::Ints;
using testing::kTinyVocab;

constexpr int32_t kBos = 1, kEos = 2;

// "transformer_<positional>" or "rnn_<cell>_<style>", vocabularies of kTinyVocab tokens.
std::shared_ptr<Seq2SeqModel> MakeModel(const std::string& name, uint64_t seed) {
  const std::string transformer = "transformer_";
  if (name.rfind(transformer, 0) == 0) {
    return testing::MakeTransformer(
        testing::TinyTransformerOptions(name.substr(transformer.size())), seed);
  }
  ModelOptions options;
  options.type = "rnn";
  options.d_model = 3;
  options.hidden_size = 4;
  options.rnn_cell = name.find("lstm") != std::string::npos ? "lstm" : "gru";
  options.attention_style = name.find("luong") != std::string::npos ? "luong" : "bahdanau";
  options.attention.variant = options.attention_style == "luong" ? "general" : "additive";
  options.dropout = 0.0;
  absl::StatusOr<std::shared_ptr<RnnSeq2Seq>> model =
      RnnSeq2Seq::Create(options, testing::TinyVocabularies(), seed);
  EXPECT_TRUE(model.ok()) << model.status();
  return *model;
}

std::vector<std::string> ModelNames() {
  std::vector<std::string> names;
  for (const std::string& positional : PositionalEncodingNames()) {
    names.push_back("transformer_" + positional);
  }
  for (const char* rnn : {"rnn_gru_bahdanau", "rnn_lstm_luong"}) names.push_back(rnn);
  return names;
}

// Three sources of the tiny vocabulary (0 pad, 1 bos, 2 eos, 3..6 symbols), two padded.
Tensor Sources() { return Ints({3, 4, 5, 6, 3, 5, 3, 6, 0, 0, 6, 4, 0, 0, 0}, {3, 5}); }

// By hand: the decoder reads bos + target[:-1] for source `row` alone, and each target
// token's log-probability is its logit minus log(sum(exp(logits))) at its position.
double HandScore(Seq2SeqModel& model, const Tensor& src, int64_t row,
                 const std::vector<int32_t>& target) {
  if (target.empty()) return 0.0;
  NoGradGuard no_grad;
  model.Eval();
  std::vector<int32_t> tgt_in = {kBos};
  tgt_in.insert(tgt_in.end(), target.begin(), target.end() - 1);
  const int64_t length = static_cast<int64_t>(target.size());
  const std::vector<float> logits =
      model.Forward(Narrow(src, 0, row, 1).contiguous(), Ints(tgt_in, {1, length})).ToFloats();
  double total = 0.0;
  for (int64_t t = 0; t < length; ++t) {
    const float* position = logits.data() + t * kTinyVocab;
    double normalizer = 0.0;
    for (int64_t token = 0; token < kTinyVocab; ++token) normalizer += std::exp(position[token]);
    total += position[target[t]] - std::log(normalizer);
  }
  return total;
}

class SequenceScoringTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SequenceScoringTest, ScoreIsTheSumOfLogSoftmaxAtTheTargetTokens) {
  std::shared_ptr<Seq2SeqModel> model = MakeModel(GetParam(), 11);
  const Tensor src = Sources();
  // Rows of different lengths (padded inside, never scored), one without eos, one empty.
  const std::vector<std::vector<int32_t>> targets = {{4, 3, 6, 2}, {5, kEos}, {}};
  model->Train();
  const std::vector<TargetScore> scores = ScoreTargets(*model, src, targets);
  EXPECT_TRUE(model->is_training());  // evaluation mode only while scoring
  ASSERT_EQ(scores.size(), 3u);
  for (int64_t row = 0; row < 3; ++row) {
    EXPECT_NEAR(scores[row].log_prob, HandScore(*model, src, row, targets[row]), 1e-4)
        << "row " << row;
    EXPECT_EQ(scores[row].tokens, static_cast<int64_t>(targets[row].size()));
  }
  EXPECT_EQ(scores[2].log_prob, 0.0);
  EXPECT_NEAR(scores[0].mean_log_prob(), scores[0].log_prob / 4.0, 1e-12);
  EXPECT_EQ(scores[2].mean_log_prob(), 0.0);
}

TEST_P(SequenceScoringTest, NBestListIsSortedDistinctAndScoredAsTeacherForcingScoresIt) {
  std::shared_ptr<Seq2SeqModel> model = MakeModel(GetParam(), 12);
  const Tensor src = Sources();
  BeamSearchOptions options;
  options.beam_size = 4;
  options.max_len = 6;
  options.length_penalty = 0.6f;
  options.nbest = 4;
  const std::vector<std::vector<ScoredHypothesis>> lists = BeamSearchNBest(*model, src, options);
  options.nbest = 1;
  const DecodeResult one_best = BeamSearch(*model, src, options);
  ASSERT_EQ(lists.size(), 3u);
  for (size_t row = 0; row < lists.size(); ++row) {
    const std::vector<ScoredHypothesis>& list = lists[row];
    ASSERT_EQ(list.size(), 4u) << "row " << row;
    EXPECT_EQ(list[0].tokens, one_best.tokens[row]) << "row " << row;
    EXPECT_EQ(list[0].score, one_best.scores[row]) << "row " << row;
    std::set<std::vector<int32_t>> different;
    for (size_t rank = 0; rank < list.size(); ++rank) {
      const ScoredHypothesis& hypothesis = list[rank];
      different.insert(hypothesis.tokens);
      if (rank > 0) {
        EXPECT_GE(list[rank - 1].score, hypothesis.score) << "row " << row;
      }
      const int64_t length =
          static_cast<int64_t>(hypothesis.tokens.size()) + (hypothesis.ended_with_eos ? 1 : 0);
      EXPECT_NEAR(hypothesis.score, hypothesis.log_prob / LengthPenalty(length, 0.6f), 1e-5);
      // Only max_len cuts a hypothesis short of its eos.
      if (!hypothesis.ended_with_eos) {
        EXPECT_EQ(length, options.max_len);
      }
    }
    EXPECT_EQ(different.size(), list.size()) << "row " << row;
  }
  // Teacher forcing on each rank's hypotheses (+ eos where they ended), all rows at once.
  for (size_t rank = 0; rank < 4; ++rank) {
    std::vector<std::vector<int32_t>> targets;
    for (const std::vector<ScoredHypothesis>& list : lists) {
      targets.push_back(list[rank].tokens);
      if (list[rank].ended_with_eos) targets.back().push_back(kEos);
    }
    const std::vector<TargetScore> forced = ScoreTargets(*model, src, targets);
    for (size_t row = 0; row < lists.size(); ++row) {
      EXPECT_NEAR(lists[row][rank].log_prob, forced[row].log_prob, 1e-4)
          << "row " << row << ", rank " << rank;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, SequenceScoringTest, ::testing::ValuesIn(ModelNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace attnlab::nn
