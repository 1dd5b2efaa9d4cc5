// result.json (experiments/trainer/run_result.h), the finished-run marker: a round trip,
// NaN metrics (JSON has none) as null, and damaged files as errors naming the path.
#include "experiments/trainer/run_result.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;

class RunResultTest : public attnlab::testing::TempDirTest {
 protected:
  const std::string path_ = (directory_ / "result.json").string();
};

TEST_F(RunResultTest, RoundTripsWithNanAsNull) {
  RunResult result;
  result.steps = 2000;
  result.train_seconds = 221.5;
  result.wall_seconds = 227.25;
  result.parameters = 937615;
  result.test_metrics = {{"exact_match", 99.7}, {"loss", std::nan("")}};
  result.valid_metrics = {{"exact_match", 99.6}};
  ASSERT_TRUE(WriteRunResult(path_, result).ok());
  std::ifstream in(path_);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"loss\": null"), std::string::npos) << text;
  absl::StatusOr<RunResult> read = ReadRunResult(path_);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->steps, 2000);
  EXPECT_EQ(read->train_seconds, 221.5);
  EXPECT_EQ(read->wall_seconds, 227.25);
  EXPECT_EQ(read->parameters, 937615);
  EXPECT_EQ(read->test_metrics.at("exact_match"), 99.7);
  EXPECT_TRUE(std::isnan(read->test_metrics.at("loss")));
  EXPECT_EQ(read->valid_metrics.at("exact_match"), 99.6);
}

TEST_F(RunResultTest, DamagedFilesAreErrorsNamingThePath) {
  const auto fails = [&](const std::string& text, const std::string& part) {
    std::ofstream(path_, std::ios::trunc) << text;
    const absl::StatusOr<RunResult> read = ReadRunResult(path_);
    if (read.ok()) return ::testing::AssertionFailure() << "read " << text;
    const std::string message(read.status().message());
    if (message.rfind(path_ + ": ", 0) != 0 || message.find(part) == std::string::npos) {
      return ::testing::AssertionFailure() << message;
    }
    return ::testing::AssertionSuccess();
  };
  EXPECT_TRUE(fails("{\"format\": 1, \"steps\": 2", "not a JSON object"));  // truncated
  EXPECT_TRUE(fails("{\"format\": 2}", "unknown format"));
  EXPECT_TRUE(fails("{\"format\": 1, \"steps\": 1, \"train_seconds\": 1, \"wall_seconds\": 1}",
                    "\"parameters\""));
  EXPECT_TRUE(
      fails("{\"format\": 1, \"steps\": 1, \"train_seconds\": 1, \"wall_seconds\": 1, "
            "\"parameters\": 1, \"test\": {\"loss\": \"low\"}, \"valid\": {}}",
            "\"test\" is not an object of numbers"));
  fs::remove(path_);
  EXPECT_FALSE(ReadRunResult(path_).ok());
}

}  // namespace
}  // namespace attnlab::experiments
