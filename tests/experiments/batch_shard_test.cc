// Data-parallel training computes each batch in shards (objective.h, BatchShard): the
// shards' losses and gradients must add up to the whole batch's, for every kind of model,
// however many shards, so that N ranks train what one process trains.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "experiments/trainer/objective.h"
#include "gtest/gtest.h"
#include "tests/support/tiny_config.h"

namespace attnlab::experiments {
namespace {

using testing::TinyConfig;

struct LossAndGradients {
  double loss = 0.0;
  int64_t weight = 0;
  std::vector<std::vector<float>> gradients;  // per parameter, in NamedParameters() order
};

// The losses of `ranks` shards of `batch` summed, and the gradients they accumulate.
LossAndGradients ShardedPass(Objective& objective, const std::vector<int64_t>& batch, int ranks) {
  nn::Module& module = objective.module();
  for (auto& [name, parameter] : module.NamedParameters()) parameter.zero_grad();
  LossAndGradients result;
  for (int rank = 0; rank < ranks; ++rank) {
    const BatchLoss shard = objective.Loss(batch, BatchShard{rank, ranks});
    result.loss += shard.loss.item();
    result.weight = shard.weight;
    if (shard.loss.requires_grad()) shard.loss.backward();
  }
  for (auto& [name, parameter] : module.NamedParameters()) {
    result.gradients.push_back(parameter.grad().defined() ? parameter.grad().ToFloats()
                                                          : std::vector<float>());
  }
  return result;
}

void ExpectSameSums(const LossAndGradients& whole, const LossAndGradients& sharded,
                    const std::string& label) {
  EXPECT_EQ(sharded.weight, whole.weight) << label;
  EXPECT_NEAR(sharded.loss, whole.loss, 1e-6 * std::abs(whole.loss)) << label;
  ASSERT_EQ(sharded.gradients.size(), whole.gradients.size());
  for (size_t p = 0; p < whole.gradients.size(); ++p) {
    ASSERT_EQ(sharded.gradients[p].size(), whole.gradients[p].size()) << label << " #" << p;
    for (size_t i = 0; i < whole.gradients[p].size(); ++i) {
      const float expected = whole.gradients[p][i];
      EXPECT_NEAR(sharded.gradients[p][i], expected, 1e-6f + 1e-5f * std::abs(expected))
          << label << " parameter #" << p << " element " << i;
    }
  }
}

class BatchShardTest : public ::testing::TestWithParam<std::vector<std::string>> {};

TEST_P(BatchShardTest, ShardsAddUpToTheWholeBatch) {
  std::vector<std::string> overrides = {"model.dropout=0", "train.batch_tokens=40"};
  overrides.insert(overrides.end(), GetParam().begin(), GetParam().end());
  const Config config = TinyConfig(overrides);
  std::unique_ptr<Objective> objective = MakeObjective(config).value();
  objective->module().Train();
  const std::vector<int64_t> batch = objective->EpochPlan(0).front();
  ASSERT_GE(batch.size(), 3u);
  const LossAndGradients whole = ShardedPass(*objective, batch, 1);
  for (const int ranks : {2, 3, static_cast<int>(batch.size()) + 1}) {  // the last: empty shards
    ExpectSameSums(whole, ShardedPass(*objective, batch, ranks), std::to_string(ranks) + " shards");
  }
}

// The overrides that make each kind of model from the tiny config.
const std::vector<std::string> kModelOverrides[] = {
    {},
    {"model.type=rnn"},
    {"task.name=seed_pooling", "model.attention=dot", "task.train_size=40",
     "train.max_batch_size=8"}};

std::string ModelName(const ::testing::TestParamInfo<std::vector<std::string>>& info) {
  const char* const names[] = {"transformer", "rnn", "seed_pooling"};
  return names[info.index];
}

INSTANTIATE_TEST_SUITE_P(Models, BatchShardTest, ::testing::ValuesIn(kModelOverrides), ModelName);

}  // namespace
}  // namespace attnlab::experiments
