// What a run loads before it builds a model: examples must fit the model's positions
// (named by file:line or by task and split, with model.max_len and its origin), UTF-8
// is checked exactly, and absurd model sizes are refused by a memory estimate before
// anything is allocated.
#include "experiments/trainer/experiment_data.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "experiments/data/tokenizer.h"
#include "experiments/trainer/model_factory.h"
#include "framework/io/utf8.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;

Config MakeConfig(const std::vector<std::string>& overrides) {
  std::vector<std::string> all = {"task.train_size=20", "task.valid_size=5", "task.test_size=5"};
  all.insert(all.end(), overrides.begin(), overrides.end());
  absl::StatusOr<Config> config = Config::Parse("", "test", all);
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *config : Config();
}

::testing::AssertionResult FailsWith(const absl::Status& status, const std::string& part) {
  if (status.ok()) return ::testing::AssertionFailure() << "no error; expected '" << part << "'";
  if (status.message().find(part) == std::string::npos) {
    return ::testing::AssertionFailure() << "'" << status.message() << "' lacks '" << part << "'";
  }
  return ::testing::AssertionSuccess();
}

TEST(ExperimentDataTest, GeneratedSequencesLongerThanMaxLenAreAnErrorAtLoad) {
  // copy: a source of max_length symbols plus eos.
  const absl::Status status =
      LoadExperimentData(
          MakeConfig({"task.max_length=40", "task.min_length=40", "model.max_len=16"}))
          .status();
  EXPECT_TRUE(FailsWith(status, "task copy, train example 1: the source is 41 tokens long"));
  EXPECT_TRUE(FailsWith(status, "more than model.max_len = 16 (--set) allows"));
  EXPECT_TRUE(FailsWith(status, "task.max_length = 40 (--set)"));
  // Exactly max_len fits; positions without a table have no limit.
  EXPECT_TRUE(LoadExperimentData(
                  MakeConfig({"task.max_length=15", "task.min_length=15", "model.max_len=16"}))
                  .ok());
  for (const char* unlimited :
       {"model.positional=rope", "model.positional=none", "model.type=rnn"}) {
    EXPECT_TRUE(LoadExperimentData(MakeConfig({"task.max_length=40", "task.min_length=40",
                                               "model.max_len=16", unlimited}))
                    .ok())
        << unlimited;
  }
}

TEST(ExperimentDataTest, LongTestSequencesNameTheTestLengthKey) {
  const absl::Status status =
      LoadExperimentData(MakeConfig({"task.max_length=5", "task.test_min_length=30",
                                     "task.test_max_length=30", "model.max_len=20"}))
          .status();
  EXPECT_TRUE(FailsWith(status, "task copy, test example 1: the source is 31 tokens long"));
  EXPECT_TRUE(FailsWith(status, "(and 9 more sequences over the limit)"));
  EXPECT_TRUE(FailsWith(status, "task.test_max_length = 30 (--set)"));
}

TEST(ExperimentDataTest, LongFileLinesNameTheirFileAndLine) {
  const attnlab::testing::ScratchDirectory scratch;
  const fs::path& directory = scratch.path();
  const std::string good = (directory / "good.tsv").string();
  const std::string long_target = (directory / "long.tsv").string();
  std::ofstream(good) << "ab\tba\n";
  std::ofstream(long_target) << "ab\tba\n\ncd\t" << std::string(300, 'x') << "\n";
  const absl::Status status =
      LoadExperimentData(MakeConfig({"task.name=files", "task.train_path=" + good,
                                     "task.valid_path=" + long_target, "task.test_path=" + good}))
          .status();
  EXPECT_TRUE(FailsWith(status, long_target + ":3: the target is 301 tokens long"));
  EXPECT_TRUE(FailsWith(status, "model.max_len = 256 (default)"));
}

TEST(ExperimentDataTest, FirstInvalidUtf8FindsTheFirstBadByte) {
  EXPECT_EQ(FirstInvalidUtf8(""), std::nullopt);
  EXPECT_EQ(FirstInvalidUtf8("plain ascii\t~"), std::nullopt);
  EXPECT_EQ(FirstInvalidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), std::nullopt);
  EXPECT_EQ(FirstInvalidUtf8("caf\xe9"), 3u);           // Latin-1
  EXPECT_EQ(FirstInvalidUtf8("a\x80"), 1u);             // stray continuation byte
  EXPECT_EQ(FirstInvalidUtf8("ab\xc3"), 2u);            // cut short
  EXPECT_EQ(FirstInvalidUtf8("\xc0\xaf"), 0u);          // overlong '/'
  EXPECT_EQ(FirstInvalidUtf8("\xe0\x80\xaf"), 0u);      // overlong, three bytes
  EXPECT_EQ(FirstInvalidUtf8("x\xed\xa0\x80"), 1u);     // a UTF-16 surrogate
  EXPECT_EQ(FirstInvalidUtf8("\xf4\x90\x80\x80"), 0u);  // past U+10FFFF
  EXPECT_EQ(FirstInvalidUtf8("\xf0\x9f\x98"), 0u);      // four bytes cut short
}

TEST(ModelFactoryTest, ModelsTooLargeForMemoryAreRefusedBeforeAllocating) {
  // Inside every schema bound, yet about 2^16 x 2^20 x 2 x 1024 x 2 floats of weights.
  const Config huge = MakeConfig({"model.d_model=65536", "model.heads=1", "model.d_ff=1048576",
                                  "model.encoder_layers=1024", "model.decoder_layers=1024"});
  EXPECT_GT(EstimateTrainingMemory(huge, 10, 10).parameters, 2.8e14);
  const absl::Status status = BuildModel(huge, 10, 10).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_TRUE(FailsWith(status, "model.d_model = 65536 (--set)"));
  EXPECT_TRUE(FailsWith(status, "model.encoder_layers = 1024 (--set)"));
  EXPECT_TRUE(FailsWith(status, "needs at least"));
  EXPECT_TRUE(FailsWith(status, "available"));
  // A position table of 2^20 x 2^16 floats (256 GiB) alone is refused too.
  EXPECT_TRUE(FailsWith(
      BuildModel(MakeConfig({"model.d_model=65536", "model.heads=1", "model.max_len=1048576",
                             "model.d_ff=1", "model.encoder_layers=1", "model.decoder_layers=1"}),
                 10, 10)
          .status(),
      "model.max_len = 1048576 (--set)"));
}

TEST(ModelFactoryTest, EstimateCountsTheTinyTransformersParameters) {
  const Config config = MakeConfig({"model.d_model=16", "model.heads=2", "model.d_ff=32",
                                    "model.encoder_layers=1", "model.decoder_layers=1"});
  absl::StatusOr<std::shared_ptr<nn::Seq2SeqModel>> model = BuildModel(config, 12, 12);
  ASSERT_TRUE(model.ok()) << model.status();
  // The estimate is of the right size: within a few percent of the real count.
  const double estimated = EstimateTrainingMemory(config, 12, 12).parameters;
  const double actual = static_cast<double>((*model)->ParameterCount());
  EXPECT_NEAR(estimated / actual, 1.0, 0.05) << estimated << " vs " << actual;
}

}  // namespace
}  // namespace attnlab::experiments
