// de_en: the Ding annotations stripped (hand-worked segments from the real file), the
// parser on an inline fixture (comments, synonyms, repeated German phrases, a misaligned
// line, the length filter in code points) and its errors with file:line; the task on a
// fixture data directory: splits, the SentencePiece tokenizer it trains (and caches; one
// per language with task.shared_vocabulary = false), BLEU/chrF/exact match, and the
// error when the data is not fetched.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "experiments/config/config.h"
#include "experiments/tasks/ding_parser.h"
#include "experiments/tasks/task.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;

TEST(DingAnnotationsTest, GrammarLabelsSpellingsAbbreviationsAndGlossesGo) {
  EXPECT_EQ(StripDingAnnotations("Aalleiter {f}; Aaltreppe {f} (Wasserbau) "),
            "Aalleiter; Aaltreppe");
  EXPECT_EQ(StripDingAnnotations(" myocardial infarction /MI/; heart attack [coll.] <cardiac "
                                 "infarct>"),
            "myocardial infarction; heart attack");
  // Braces may hold ';' (which would otherwise split synonyms); parentheses nest.
  EXPECT_EQ(StripDingAnnotations("mit {prp; +Dat.} Aal (auf (der) Karte) blau"), "mit Aal blau");
  // Slashes inside words and '/' on its own are text; an unmatched bracket is text.
  EXPECT_EQ(StripDingAnnotations("and/or sb./sth. / x (y"), "and/or sb./sth. / x (y");
  EXPECT_EQ(StripDingAnnotations("Aal (gekocht), blau"), "Aal, blau");
}

const char kFixture[] =
    "# Version :: devel 2023-01-30\n"
    "Aal {m} (auf der Speisekarte) [cook.] | Aal blau; blauer Aal :: Eel (on a menu) | Eel au "
    "bleu; Eel steamed\n"
    "Herzindex {m} /HI/ [med.] :: cardiac index /CI/\n"
    "Zwei | Drei :: two\n"
    "\n"
    "Aal {m} :: eel\n"
    "Haus {n} :: house; home; house\n"
    "Tür {f} :: car\n";

TEST(DingParserTest, AlignedSegmentsSynonymsAndRepeatedPhrases) {
  const absl::StatusOr<DingDictionary> dictionary = ParseDing(kFixture, "de-en", 100);
  ASSERT_TRUE(dictionary.ok()) << dictionary.status();
  EXPECT_EQ(dictionary->misaligned_lines, 1);  // "Zwei | Drei :: two"
  EXPECT_EQ(dictionary->long_pairs, 0);
  const std::vector<Example> expected = {
      {"Aal", {"Eel", "eel"}},  // a second line adds its translation
      {"Aal blau", {"Eel au bleu", "Eel steamed"}},
      {"blauer Aal", {"Eel au bleu", "Eel steamed"}},
      {"Herzindex", {"cardiac index"}},
      {"Haus", {"house", "home"}},  // a repeated synonym counts once
      {"Tür", {"car"}},
  };
  ASSERT_EQ(dictionary->examples.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(dictionary->examples[i].source, expected[i].source);
    EXPECT_EQ(dictionary->examples[i].references, expected[i].references) << expected[i].source;
  }
}

TEST(DingParserTest, MaxLengthCountsCharactersOfTheSourceAndTheTrainingTarget) {
  // "Tür" is 3 characters (4 bytes). At 9: "Aal blau" (8) -> "Eel au bleu" (11), "blauer
  // Aal" (10) and "Herzindex" (9) -> "cardiac index" (13) go.
  const absl::StatusOr<DingDictionary> at_3 = ParseDing(kFixture, "de-en", 3);
  ASSERT_TRUE(at_3.ok()) << at_3.status();
  ASSERT_EQ(at_3->examples.size(), 2u);
  EXPECT_EQ(at_3->examples[0].source, "Aal");
  EXPECT_EQ(at_3->examples[1].source, "Tür");
  const absl::StatusOr<DingDictionary> at_9 = ParseDing(kFixture, "de-en", 9);
  ASSERT_TRUE(at_9.ok()) << at_9.status();
  EXPECT_EQ(at_9->long_pairs, 3);
  EXPECT_EQ(at_9->examples.size(), 3u);  // Aal, Haus, Tür
}

TEST(DingParserTest, LinesWithoutOneSeparatorAreErrorsWithFileAndLine) {
  for (const std::string line : {"Aal eel", "a :: b :: c"}) {
    const absl::StatusOr<DingDictionary> dictionary =
        ParseDing("# comment\n" + line + "\n", "data/de_en/de-en", 100);
    ASSERT_FALSE(dictionary.ok()) << line;
    EXPECT_NE(dictionary.status().message().find("data/de_en/de-en:2: expected one"),
              std::string::npos)
        << dictionary.status();
  }
}

class DeEnTaskTest : public attnlab::testing::TempDirTest {
 protected:
  Config MakeConfig(const std::vector<std::string>& more = {}) const {
    std::vector<std::string> overrides = {"task.name=de_en",
                                          "task.data_dir=" + directory_.string(),
                                          "task.train_size=0",
                                          "task.valid_size=0",
                                          "task.test_size=0",
                                          "task.max_length=100",
                                          "task.subword_vocab_size=100"};
    overrides.insert(overrides.end(), more.begin(), more.end());
    absl::StatusOr<Config> config = Config::Parse("", "de_en_test", overrides);
    EXPECT_TRUE(config.ok()) << config.status();
    return *config;
  }

  // 36 phrases "X und Y" -> "x and y" in the data directory.
  void WriteFixture() const {
    std::string text = "# fixture\n";
    const std::vector<std::string> german = {"Haus", "Hund", "Katze", "Baum", "Garten", "Tür"};
    const std::vector<std::string> english = {"house", "dog", "cat", "tree", "garden", "door"};
    for (size_t i = 0; i < german.size(); ++i) {
      for (size_t j = 0; j < german.size(); ++j) {
        text += german[i] + " und " + german[j] + " {pl} :: " + english[i] + " and " + english[j] +
                "\n";
      }
    }
    fs::create_directories(directory_ / "de_en");
    std::ofstream(directory_ / "de_en" / "de-en") << text;
  }

  int CachedModels() const {
    int models = 0;
    for (const auto& entry : fs::directory_iterator(directory_ / "de_en")) {
      models += entry.path().extension() == ".model";
    }
    return models;
  }
};

TEST_F(DeEnTaskTest, MissingDataNamesTheFetchCommand) {
  const Config config = MakeConfig();
  absl::StatusOr<std::unique_ptr<Task>> task = MakeTask(config);
  ASSERT_TRUE(task.ok()) << task.status();
  const absl::StatusOr<Splits> splits = (*task)->LoadSplits(config);
  ASSERT_FALSE(splits.ok());
  EXPECT_NE(splits.status().message().find("tools/fetch-data de_en"), std::string::npos)
      << splits.status();
}

TEST_F(DeEnTaskTest, TrainsAndCachesSubwordsOnTheTrainingSplitAndScores) {
  WriteFixture();
  const Config config = MakeConfig();
  absl::StatusOr<std::unique_ptr<Task>> task = MakeTask(config);
  ASSERT_TRUE(task.ok()) << task.status();
  const absl::StatusOr<Splits> splits = (*task)->LoadSplits(config);
  ASSERT_TRUE(splits.ok()) << splits.status();
  EXPECT_EQ(splits->train.size() + splits->valid.size() + splits->test.size(), 36u);

  // The SentencePiece model is cached beside the data, and the tokenizer gives the text
  // back from its pieces.
  EXPECT_EQ(CachedModels(), 1);
  EXPECT_EQ((*task)->SourceTokenizer(), (*task)->TargetTokenizer());
  const std::shared_ptr<Tokenizer> tokenizer = (*task)->SourceTokenizer();
  for (const std::string sentence : {"Haus und Katze", "cat and dog"}) {
    const std::vector<std::string> pieces = tokenizer->Split(sentence);
    EXPECT_GE(pieces.size(), 3u) << sentence;
    EXPECT_EQ(tokenizer->Join(pieces), sentence);
  }

  EXPECT_EQ((*task)->Metrics()[0].name, "bleu");
  EXPECT_TRUE((*task)->Metrics()[0].higher_is_better);
  // Four words at least, so that every n-gram order up to 4 has counts.
  const std::vector<Example> examples = {{"das Haus und der Hund", {"the house and the dog"}},
                                         {"der große Baum hier", {"a shrub", "the big tree here"}}};
  const std::map<std::string, double> perfect =
      (*task)->Score({"the house and the dog", "the big tree here"}, examples);
  EXPECT_DOUBLE_EQ(perfect.at("bleu"), 100.0);
  EXPECT_DOUBLE_EQ(perfect.at("chrf"), 100.0);
  EXPECT_DOUBLE_EQ(perfect.at("exact_match"), 100.0);
  const std::map<std::string, double> wrong = (*task)->Score({"cat", "garden"}, examples);
  EXPECT_LT(wrong.at("bleu"), 10.0);  // sacreBLEU smooths zero counts: small, not 0
  EXPECT_DOUBLE_EQ(wrong.at("exact_match"), 0.0);
}

TEST_F(DeEnTaskTest, SeparateVocabulariesTrainAModelPerLanguage) {
  WriteFixture();
  const Config config = MakeConfig({"task.shared_vocabulary=false"});
  absl::StatusOr<std::unique_ptr<Task>> task = MakeTask(config);
  ASSERT_TRUE(task.ok()) << task.status();
  const absl::StatusOr<Splits> splits = (*task)->LoadSplits(config);
  ASSERT_TRUE(splits.ok()) << splits.status();
  EXPECT_EQ(CachedModels(), 2);
  EXPECT_NE((*task)->SourceTokenizer(), (*task)->TargetTokenizer());
  // The German model never saw "cat", the English one never "Katze": each splits the
  // other language's word into more pieces than its own language's.
  const std::shared_ptr<Tokenizer> german = (*task)->SourceTokenizer();
  const std::shared_ptr<Tokenizer> english = (*task)->TargetTokenizer();
  EXPECT_LT(german->Split("Katze").size(), german->Split("cat").size());
  EXPECT_LT(english->Split("cat").size(), english->Split("Katze").size());
}

TEST(DeEnConfigsTest, ShippedConfigLoadsAndItsModelFitsTheLongestPair) {
  const absl::StatusOr<Config> config =
      Config::Load(std::string(ATTNLAB_SOURCE_DIR) + "/experiments/recipes/de_en/transformer.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->task().name, "de_en");
  // A SentencePiece piece covers at least one character, plus the leading "▁" and eos.
  EXPECT_GE(config->model().max_len, config->task().max_length + 2);
}

}  // namespace
}  // namespace attnlab::experiments
