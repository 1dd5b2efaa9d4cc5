// cmudict: the parser on an inline fixture in the npm package's format (the module's
// frame, comments after '#', alternates out of order, stress, duplicates once stress is
// gone, escapes) and its errors with file:line; the task on a fixture data directory (its
// metrics on hand-worked predictions) and the one error when the data is not fetched.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "experiments/config/config.h"
#include "experiments/tasks/cmudict_parser.h"
#include "experiments/tasks/task.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;

const char kFixture[] = R"js(/** @type {{ [word: string]: string }} */
export const dictionary = {
  "'bout": "B AW1 T",
  "a": "AH0",
  "a(2)": "EY1",
  "aalborg": "AO1 L B AO0 R G # place, danish",
  "aalborg(3)": "AO1 L B AO2 R G",
  "aalborg(2)": "AA1 L B AO0 R G",
  "quote\"d": "K W OW1 T IH0 D"
}
)js";

TEST(CmudictParserTest, AlternatesBecomeReferencesInOrderWithoutStressOrComments) {
  const absl::StatusOr<std::vector<Example>> examples =
      ParseCmudict(kFixture, "index.js", /*keep_stress=*/false);
  ASSERT_TRUE(examples.ok()) << examples.status();
  ASSERT_EQ(examples->size(), 4u);
  EXPECT_EQ((*examples)[0].source, "'bout");
  EXPECT_EQ((*examples)[0].references, (std::vector<std::string>{"B AW T"}));
  EXPECT_EQ((*examples)[1].source, "a");
  EXPECT_EQ((*examples)[1].references, (std::vector<std::string>{"AH", "EY"}));
  // (3) differs from (1) only in stress: without stress it is the same and kept once;
  // (2) comes before it although it is written after.
  EXPECT_EQ((*examples)[2].source, "aalborg");
  EXPECT_EQ((*examples)[2].references,
            (std::vector<std::string>{"AO L B AO R G", "AA L B AO R G"}));
  EXPECT_EQ((*examples)[3].source, "quote\"d");
}

TEST(CmudictParserTest, KeepStressKeepsDigitsAndEveryAlternate) {
  const absl::StatusOr<std::vector<Example>> examples =
      ParseCmudict(kFixture, "index.js", /*keep_stress=*/true);
  ASSERT_TRUE(examples.ok()) << examples.status();
  EXPECT_EQ((*examples)[1].references, (std::vector<std::string>{"AH0", "EY1"}));
  EXPECT_EQ((*examples)[2].references,
            (std::vector<std::string>{"AO1 L B AO0 R G", "AA1 L B AO0 R G", "AO1 L B AO2 R G"}));
}

TEST(CmudictParserTest, MalformedLinesAreErrorsWithFileAndLine) {
  const std::string head = "export const dictionary = {\n  \"a\": \"AH0\",\n";
  struct Case {
    std::string line, message;
  };
  for (const Case& c : std::vector<Case>{
           {"  \"abc\": \"AH0 x1\",", "'x1' in 'abc' is not an ARPAbet phoneme"},
           {"  \"abc\" \"AH0\",", "no ':' after the word"},
           {"  \"abc\": \"# a comment only\",", "empty pronunciation of 'abc'"},
           {"  abc: \"AH0\",", "no quoted word"},
           {"  \"abc\": \"AH0\", junk", "unexpected ', junk'"},
       }) {
    const absl::StatusOr<std::vector<Example>> examples =
        ParseCmudict(head + c.line + "\n}\n", "dir/index.js", false);
    ASSERT_FALSE(examples.ok()) << c.line;
    EXPECT_NE(examples.status().message().find("dir/index.js:3: " + c.message), std::string::npos)
        << examples.status();
  }
}

class CmudictTaskTest : public attnlab::testing::TempDirTest {
 protected:
  Config MakeConfig() const {
    absl::StatusOr<Config> config =
        Config::Parse("", "cmudict_test",
                      {"task.name=cmudict", "task.data_dir=" + directory_.string(),
                       "task.train_size=0", "task.valid_size=0", "task.test_size=0"});
    EXPECT_TRUE(config.ok()) << config.status();
    return *config;
  }
};

TEST_F(CmudictTaskTest, MissingDataNamesTheFetchCommand) {
  const Config config = MakeConfig();
  absl::StatusOr<std::unique_ptr<Task>> task = MakeTask(config);
  ASSERT_TRUE(task.ok()) << task.status();
  const absl::StatusOr<Splits> splits = (*task)->LoadSplits(config);
  ASSERT_FALSE(splits.ok());
  EXPECT_EQ(splits.status().code(), absl::StatusCode::kNotFound);
  const std::string message(splits.status().message());
  EXPECT_NE(message.find((directory_ / "cmudict" / "index.js").string() + ": not found"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("ATTNLAB_DATA_DIR=" + directory_.string() + " tools/fetch-data cmudict"),
            std::string::npos)
      << message;
}

TEST_F(CmudictTaskTest, LoadsTheFetchedFileAndScoresWerPerAndExactMatch) {
  fs::create_directories(directory_ / "cmudict");
  std::ofstream(directory_ / "cmudict" / "index.js") << kFixture;
  const Config config = MakeConfig();
  absl::StatusOr<std::unique_ptr<Task>> task = MakeTask(config);
  ASSERT_TRUE(task.ok()) << task.status();
  const absl::StatusOr<Splits> splits = (*task)->LoadSplits(config);
  ASSERT_TRUE(splits.ok()) << splits.status();
  EXPECT_EQ(splits->train.size() + splits->valid.size() + splits->test.size(), 4u);

  ASSERT_EQ((*task)->Metrics().size(), 3u);
  EXPECT_EQ((*task)->Metrics()[0].name, "wer");
  EXPECT_FALSE((*task)->Metrics()[0].higher_is_better);
  EXPECT_EQ((*task)->TargetTokenizer()->Split("AO L B").size(), 3u);
  EXPECT_EQ((*task)->SourceTokenizer()->Split("aal").size(), 3u);
  // "EY" matches a's second reference; "R IY T" is one substitution from "R IY D"
  // (3 phonemes): WER 1/2, PER (0 + 1) / (1 + 3).
  const std::vector<Example> examples = {{"a", {"AH", "EY"}}, {"read", {"R EH D", "R IY D"}}};
  const std::map<std::string, double> scores = (*task)->Score({"EY", "R IY T"}, examples);
  EXPECT_DOUBLE_EQ(scores.at("wer"), 50.0);
  EXPECT_DOUBLE_EQ(scores.at("per"), 25.0);
  EXPECT_DOUBLE_EQ(scores.at("exact_match"), 50.0);
}

TEST(CmudictConfigsTest, ShippedConfigsLoadAndFitTheLongestWord) {
  for (const std::string name : {"transformer", "rnn_attention"}) {
    const absl::StatusOr<Config> config = Config::Load(
        std::string(ATTNLAB_SOURCE_DIR) + "/experiments/recipes/cmudict/" + name + ".toml");
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->task().name, "cmudict");
    // The longest headword has 28 letters, the longest pronunciation 28 phonemes; + eos.
    EXPECT_GE(config->model().max_len, 29) << name;
  }
}

}  // namespace
}  // namespace attnlab::experiments
