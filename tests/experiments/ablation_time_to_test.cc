// Time to a target (experiments/ablation/time_to_target.h): the first validation
// evaluation reaching a value, and its training time from hand-made metrics.jsonl records,
// exact where the step has a logged elapsed time and interpolated where it has not.
#include <string>
#include <utility>
#include <vector>

#include "experiments/ablation/time_to_target.h"
#include "gtest/gtest.h"

namespace attnlab::experiments {
namespace {

MetricsRecord Train(int step, double elapsed) {
  MetricsRecord record;
  record.kind = "train";
  record.values = {{"step", step}, {"loss", 1.0}, {"elapsed_seconds", elapsed}};
  return record;
}

// A validation evaluation taking `seconds`; `elapsed` < 0: an older log without
// elapsed_seconds in eval records.
MetricsRecord Eval(int step, double seconds, double elapsed,
                   std::vector<std::pair<std::string, double>> metrics) {
  MetricsRecord record;
  record.kind = "eval";
  record.split = "valid";
  record.values = {{"step", step}, {"seconds", seconds}};
  if (elapsed >= 0) record.values.emplace_back("elapsed_seconds", elapsed);
  for (auto& metric : metrics) record.values.push_back(std::move(metric));
  return record;
}

const TimeTarget kWer40{"wer", 40.0, false, "s.toml:5"};
const TimeTarget kExactMatch90{"exact_match", 90.0, true, "s.toml:5"};

// log_every 100, eval_every 250, 500 steps; the evaluation at 250 takes 4 s and is in
// the elapsed time of the steps after it.
std::vector<MetricsRecord> SeedA() {
  return {Train(100, 10),
          Train(200, 20),
          Eval(250, 4, 25, {{"wer", 50}, {"exact_match", 85}}),
          Train(300, 34),
          Train(400, 44),
          Train(500, 54),
          Eval(500, 4, 54, {{"wer", 38}, {"exact_match", 91}})};
}

TEST(AblationTimeToTest, ALoggedElapsedTimeIsExactLessEarlierEvaluations) {
  // wer 50 at 250, 38 at 500: reached at 500, 54 s elapsed - 4 s evaluating at 250 = 50 s.
  const auto reached = FirstReached(SeedA(), kWer40, 500, 54);
  ASSERT_TRUE(reached.has_value());
  EXPECT_EQ(reached->step, 500);
  EXPECT_DOUBLE_EQ(reached->seconds, 50.0);
}

TEST(AblationTimeToTest, HigherIsBetterMetricsReachTheTargetFromBelow) {
  // exact_match 85 at 250 would pass "<= 90"; ">= 90" is first met by 91 at 500.
  const auto reached = FirstReached(SeedA(), kExactMatch90, 500, 54);
  ASSERT_TRUE(reached.has_value());
  EXPECT_EQ(reached->step, 500);
  EXPECT_DOUBLE_EQ(reached->seconds, 50.0);
  const TimeTarget lower{"exact_match", 90.0, false, "s.toml:5"};
  EXPECT_EQ(FirstReached(SeedA(), lower, 500, 54)->step, 250);
}

TEST(AblationTimeToTest, AStepWithoutElapsedTimeIsInterpolatedBetweenLoggedSteps) {
  // An older log: eval records without elapsed_seconds. wer 40 at 250 meets "<= 40".
  // Training time at 200: 22 s; at 300: 37 s - 5 s evaluating at 250 = 32 s.
  // At 250: 22 + (250 - 200) / (300 - 200) * (32 - 22) = 27 s.
  const std::vector<MetricsRecord> records = {
      Train(100, 11), Train(200, 22), Eval(250, 5, -1, {{"wer", 40}}), Train(300, 37),
      Train(400, 47), Train(500, 57), Eval(500, 5, -1, {{"wer", 35}})};
  const auto reached = FirstReached(records, kWer40, 500, 57);
  ASSERT_TRUE(reached.has_value());
  EXPECT_EQ(reached->step, 250);  // the first evaluation, not the better one at 500
  EXPECT_DOUBLE_EQ(reached->seconds, 27.0);
}

TEST(AblationTimeToTest, TheRunsEndCountsAsALoggedStep) {
  // Early stopped at step 300 with no train record after 200: the run's train_seconds
  // (33 s at step 300, 3 s of evaluation at 250 in it) gives 30 s at 300; at 250:
  // 20 + 0.5 * (30 - 20) = 25 s. Without it, nothing after 250 says how long it took.
  const std::vector<MetricsRecord> records = {Train(100, 10), Train(200, 20),
                                              Eval(250, 3, -1, {{"wer", 39.5}})};
  const auto reached = FirstReached(records, kWer40, 300, 33);
  ASSERT_TRUE(reached.has_value());
  EXPECT_DOUBLE_EQ(reached->seconds, 25.0);
  EXPECT_FALSE(FirstReached(records, kWer40, 0, 0).has_value());
}

TEST(AblationTimeToTest, NotReachedOrNotLoggedIsNoValue) {
  const std::vector<MetricsRecord> records = {Train(100, 10), Eval(250, 4, 25, {{"wer", 60}}),
                                              Eval(500, 4, 54, {{"wer", 41}})};
  EXPECT_FALSE(FirstReached(records, kWer40, 500, 54).has_value());
  // Test records and other splits do not count.
  MetricsRecord test = Eval(500, 4, 54, {{"wer", 10}});
  test.kind = "test";
  test.split = "test";
  EXPECT_FALSE(FirstReached({test}, kWer40, 500, 54).has_value());
  EXPECT_FALSE(FirstReached(records, {"per", 40.0, false, ""}, 500, 54).has_value());
}

TEST(AblationTimeToTest, LabelsSayTheDirection) {
  EXPECT_EQ(TimeTargetLabel(kWer40), "wer ≤ 40");
  EXPECT_EQ(TimeTargetLabel({"exact_match", 90.5, true, ""}), "exact_match ≥ 90.5");
  EXPECT_EQ(TimeTargetKey(kWer40), "wer_le_40");
  EXPECT_EQ(TimeTargetKey({"exact_match", 90.5, true, ""}), "exact_match_ge_90.5");
}

}  // namespace
}  // namespace attnlab::experiments
