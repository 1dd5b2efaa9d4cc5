// Data-parallel dropout at the model level: a tiny Transformer (embedding, residual,
// feed-forward and attention dropout) and the RNN seq2seq models (embedding and
// generator dropout) in training mode, run on rows [0, 2) and [2, 4) of a batch under
// their DropoutBatchShard contexts, each from the same generator state as a rank would
// be, give the 4-row forward's logits row for row, the same generator offset afterwards,
// and parameter gradients that sum to the 4-row batch's (the all-reduce's sum).
#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framework/ops/dropout_batch_shard.h"
#include "framework/ops/ops.h"
#include "framework/random/generator.h"
#include "gtest/gtest.h"
#include "layers/decoding/seq2seq_model.h"
#include "layers/rnn/rnn_seq2seq.h"
#include "tests/layers/tiny_transformer.h"
#include "tests/support/gradcheck.h"

namespace attnlab::nn {
namespace {

using attnlab::testing::RandomInput;

constexpr uint64_t kStreamSeed = 31;

struct ModelRun {
  std::vector<float> logits;
  std::vector<std::vector<float>> grads;  // in NamedParameters() order
  uint64_t offset = 0;
};

// Forward of rows [first_row, first_row + rows) of (src, tgt_in) from the generator state
// every rank starts from, under their shard of `global_rows` when `shard`; backward of
// sum(logits * those rows of upstream).
ModelRun RunRows(Seq2SeqModel& model, const Tensor& src, const Tensor& tgt_in,
                 const Tensor& upstream, int64_t first_row, int64_t rows, bool shard) {
  model.ZeroGrad();
  ManualSeed(kStreamSeed);
  Tensor logits;
  {
    std::optional<DropoutBatchShard> guard;
    if (shard) guard.emplace(first_row, rows, src.size(0));
    logits = model.Forward(src.narrow(0, first_row, rows).contiguous(),
                           tgt_in.narrow(0, first_row, rows).contiguous());
  }
  ModelRun run;
  run.offset = DefaultGenerator().state().offset;
  Sum(Mul(logits, upstream.narrow(0, first_row, rows).contiguous())).backward();
  run.logits = logits.ToFloats();
  for (const auto& [name, parameter] : model.NamedParameters()) {
    run.grads.push_back(parameter.grad().defined() ? parameter.grad().ToFloats()
                                                   : std::vector<float>(parameter.numel(), 0.0f));
  }
  return run;
}

double MaxAbsDifference(const std::vector<float>& a, const std::vector<float>& b) {
  double largest = 0.0;
  for (size_t i = 0; i < a.size(); ++i) largest = std::max(largest, std::abs(double{a[i]} - b[i]));
  return largest;
}

// The two shards [0, 2) and [2, 4) against the whole batch of 4: logits bit for bit, the
// same generator offset, and gradients summed over the shards within 1e-6 (relative to
// the gradient's largest entry, at least 1) of the whole batch's: the sum is over other
// partial sums, so it may differ in the last bits.
void ExpectShardsEqualTheWholeBatch(Seq2SeqModel& model, const Tensor& src, const Tensor& tgt_in,
                                    int64_t vocab) {
  model.Train();
  const int64_t batch = src.size(0);
  ASSERT_EQ(batch, 4);
  const Tensor upstream = RandomInput({batch, tgt_in.size(1), vocab}, 41);
  const ModelRun whole = RunRows(model, src, tgt_in, upstream, 0, batch, /*shard=*/false);
  ModelRun joined;
  joined.grads.resize(whole.grads.size());
  for (std::vector<float>& grad : joined.grads) grad.clear();
  for (const int64_t first_row : {0, 2}) {
    const ModelRun part = RunRows(model, src, tgt_in, upstream, first_row, 2, /*shard=*/true);
    EXPECT_EQ(part.offset, whole.offset) << "the shard at row " << first_row;
    joined.logits.insert(joined.logits.end(), part.logits.begin(), part.logits.end());
    for (size_t i = 0; i < part.grads.size(); ++i) {
      if (joined.grads[i].empty()) joined.grads[i].assign(part.grads[i].size(), 0.0f);
      for (size_t j = 0; j < part.grads[i].size(); ++j) joined.grads[i][j] += part.grads[i][j];
    }
  }
  ASSERT_EQ(joined.logits.size(), whole.logits.size());
  EXPECT_EQ(MaxAbsDifference(joined.logits, whole.logits), 0.0) << "logits";
  const auto names = model.NamedParameters();
  for (size_t i = 0; i < whole.grads.size(); ++i) {
    double scale = 1.0;
    for (const float g : whole.grads[i]) scale = std::max(scale, std::abs(double{g}));
    EXPECT_LE(MaxAbsDifference(joined.grads[i], whole.grads[i]), 1e-6 * scale)
        << "gradient of " << names[i].first;
  }
  // A shard that ignored its context would draw other masks: check the test can see it.
  const ModelRun unsharded_part = RunRows(model, src, tgt_in, upstream, 2, 2, /*shard=*/false);
  EXPECT_NE(unsharded_part.logits,
            std::vector<float>(whole.logits.begin() + whole.logits.size() / 2, whole.logits.end()))
      << "rows [2, 4) without their shard should get other masks";
}

TEST(BatchShardModelTest, TinyTransformerShardsEqualTheWholeBatch) {
  ModelOptions options = testing::TinyTransformerOptions();
  options.dropout = 0.3;
  options.attention.dropout = 0.2;
  auto model = testing::MakeTransformer(options);
  // 4 rows of one padded length; rows 1 and 3 padded.
  const Tensor src =
      testing::Ints({3, 4, 5, 6, 3, 5, 3, 6, 0, 0, 4, 4, 6, 5, 3, 6, 5, 0, 0, 0}, {4, 5});
  const Tensor tgt_in = testing::Ints({1, 4, 3, 6, 1, 5, 5, 2, 1, 3, 3, 4, 1, 6, 2, 0}, {4, 4});
  ExpectShardsEqualTheWholeBatch(*model, src, tgt_in, testing::kTinyVocab);
}

class BatchShardRnnTest : public ::testing::TestWithParam<std::vector<std::string>> {};

TEST_P(BatchShardRnnTest, RnnShardsEqualTheWholeBatch) {
  const std::vector<std::string>& cell_and_style = GetParam();
  ModelOptions options;
  options.type = "rnn";
  options.d_model = 3;  // the embedding size
  options.hidden_size = 4;
  options.rnn_cell = cell_and_style[0];
  options.attention_style = cell_and_style[1];
  options.attention.variant = cell_and_style[2];
  options.dropout = 0.3;
  const Vocabularies vocabularies{9, 8, SpecialTokens()};
  auto model = RnnSeq2Seq::Create(options, vocabularies, 5);
  ASSERT_TRUE(model.ok()) << model.status();
  const Tensor src =
      testing::Ints({3, 4, 5, 0, 6, 7, 8, 3, 5, 5, 0, 0, 8, 7, 6, 4}, {4, 4});  // 0 pads
  const Tensor tgt_in = testing::Ints({1, 4, 5, 1, 6, 7, 1, 3, 0, 1, 7, 2}, {4, 3});
  ExpectShardsEqualTheWholeBatch(**model, src, tgt_in, vocabularies.target_size);
}

INSTANTIATE_TEST_SUITE_P(CellsAndStyles, BatchShardRnnTest,
                         ::testing::Values(std::vector<std::string>{"gru", "bahdanau", "additive"},
                                           std::vector<std::string>{"lstm", "luong", "general"}),
                         [](const auto& info) { return info.param[0] + "_" + info.param[1]; });

}  // namespace
}  // namespace attnlab::nn
