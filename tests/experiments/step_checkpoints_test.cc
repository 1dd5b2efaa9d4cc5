// train.keep_last's files: their names, which files count as step checkpoints, and which
// pruning keeps (the latest K at or before the step; none after it).
#include "experiments/trainer/step_checkpoints.h"

#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/file_contents.h"
#include "tests/support/temp_dir.h"

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;
using attnlab::testing::WriteFile;

class StepCheckpointsTest : public attnlab::testing::TempDirTest {
 protected:
  void WriteSteps(const std::vector<int64_t>& steps) {
    for (const int64_t step : steps) WriteFile(directory_ / StepCheckpointName(step), "x");
  }
  std::vector<int64_t> Steps() {
    absl::StatusOr<std::vector<int64_t>> steps = StepCheckpointSteps(directory_.string());
    EXPECT_TRUE(steps.ok()) << steps.status();
    return steps.ok() ? *steps : std::vector<int64_t>();
  }
};

TEST_F(StepCheckpointsTest, NamesAreTheStepInDecimal) {
  EXPECT_EQ(StepCheckpointName(0), "checkpoint_step_0.safetensors");
  EXPECT_EQ(StepCheckpointName(12500), "checkpoint_step_12500.safetensors");
}

TEST_F(StepCheckpointsTest, OnlyTheTrainersNamesAreStepCheckpointsSortedByStep) {
  WriteSteps({100, 20, 3});
  for (const char* other :
       {"checkpoint_last.safetensors", "checkpoint_step_.safetensors",
        "checkpoint_step_010.safetensors", "checkpoint_step_-5.safetensors",
        "checkpoint_step_7.safetensors.tmp.123.0", "checkpoint_step_8x.safetensors",
        "checkpoint_step_99999999999999999999.safetensors"}) {
    WriteFile(directory_ / other, "x");
  }
  EXPECT_EQ(Steps(), (std::vector<int64_t>{3, 20, 100}));
}

TEST_F(StepCheckpointsTest, PruningKeepsTheLatestAtOrBeforeTheStepAndDropsLaterOnes) {
  WriteSteps({10, 20, 30, 40, 50});
  ASSERT_TRUE(PruneStepCheckpoints(directory_.string(), 40, 2).ok());
  // 30 and 40 kept; 10 and 20 are older than the last two; 50 is after the step.
  EXPECT_EQ(Steps(), (std::vector<int64_t>{30, 40}));
  ASSERT_TRUE(PruneStepCheckpoints(directory_.string(), 40, 5).ok());
  EXPECT_EQ(Steps(), (std::vector<int64_t>{30, 40}));
  ASSERT_TRUE(PruneStepCheckpoints(directory_.string(), 40, 1).ok());
  EXPECT_EQ(Steps(), (std::vector<int64_t>{40}));
  EXPECT_TRUE(fs::exists(directory_ / "checkpoint_step_40.safetensors"));
}

TEST_F(StepCheckpointsTest, AMissingDirectoryIsAnError) {
  EXPECT_FALSE(StepCheckpointSteps((directory_ / "gone").string()).ok());
}

}  // namespace
}  // namespace attnlab::experiments
