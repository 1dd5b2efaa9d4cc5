// SentencePiece subwords, trained on a tiny corpus in memory: the round trip
// Join(Split(text)) == text (also for unseen words of seen characters), the same corpus
// giving the same model bytes (so a checkpoint's reload can retrain it), a cache file
// name that changes with every input, the cache written once and then loaded, the
// training text of a shared model and of one per side, and the errors: a vocabulary too
// small for the characters, an unwritable cache, no text, an unknown model type.
#include "experiments/data/subword_tokenizer.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> Corpus() {
  std::vector<std::string> sentences;
  const std::vector<std::string> words = {"Haus",   "Haustür", "Tür",   "house", "door",
                                          "garden", "Garten",  "Hund",  "dog",   "Hundehütte",
                                          "kennel", "Bäume",   "trees", "über",  "over"};
  for (size_t i = 0; i < words.size(); ++i) {
    for (size_t j = 0; j < words.size(); ++j) sentences.push_back(words[i] + " " + words[j]);
  }
  return sentences;
}

const SubwordOptions kOptions{/*vocab_size=*/60, /*model_type=*/"unigram"};

TEST(SubwordTokenizerTest, JoinGivesBackTheText) {
  for (const std::string type : {"unigram", "bpe"}) {
    const absl::StatusOr<std::string> model = TrainSubwordModel(Corpus(), {60, type});
    ASSERT_TRUE(model.ok()) << model.status();
    const absl::StatusOr<std::shared_ptr<SubwordTokenizer>> tokenizer =
        SubwordTokenizer::FromModel(*model);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    for (const std::string text : {"Haustür über Bäume", "house door", "Hundegarten  über"}) {
      const std::vector<std::string> pieces = (*tokenizer)->Split(text);
      EXPECT_GE(pieces.size(), 2u) << type << ": " << text;
      // Runs of spaces become one space (SentencePiece's whitespace handling).
      const std::string expected =
          text == std::string("Hundegarten  über") ? "Hundegarten über" : text;
      EXPECT_EQ((*tokenizer)->Join(pieces), expected) << type;
    }
  }
}

TEST(SubwordTokenizerTest, TheSameCorpusGivesTheSameModel) {
  const absl::StatusOr<std::string> first = TrainSubwordModel(Corpus(), kOptions);
  const absl::StatusOr<std::string> second = TrainSubwordModel(Corpus(), kOptions);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(*first, *second);
}

TEST(SubwordTokenizerTest, CacheNameEncodesEveryInput) {
  const std::string name = SubwordModelFileName(Corpus(), kOptions);
  EXPECT_EQ(name.rfind("sentencepiece-unigram-60-", 0), 0u) << name;
  EXPECT_EQ(name, SubwordModelFileName(Corpus(), kOptions));
  std::vector<std::string> changed = Corpus();
  changed.back() += "x";
  EXPECT_NE(name, SubwordModelFileName(changed, kOptions));
  EXPECT_NE(name, SubwordModelFileName(Corpus(), {61, "unigram"}));
  EXPECT_NE(name, SubwordModelFileName(Corpus(), {60, "bpe"}));
  // Sentence boundaries count.
  EXPECT_NE(SubwordModelFileName({"ab", "c"}, kOptions),
            SubwordModelFileName({"a", "bc"}, kOptions));
}

TEST(SubwordTokenizerTest, TrainsOnceThenLoadsTheCachedModel) {
  const attnlab::testing::ScratchDirectory scratch;
  const fs::path& directory = scratch.path();
  const fs::path cached = directory / SubwordModelFileName(Corpus(), kOptions);
  const absl::StatusOr<std::shared_ptr<SubwordTokenizer>> trained =
      LoadOrTrainSubwordTokenizer(Corpus(), kOptions, directory.string());
  ASSERT_TRUE(trained.ok()) << trained.status();
  ASSERT_TRUE(fs::exists(cached));
  const auto written = fs::last_write_time(cached);
  const absl::StatusOr<std::shared_ptr<SubwordTokenizer>> loaded =
      LoadOrTrainSubwordTokenizer(Corpus(), kOptions, directory.string());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(fs::last_write_time(cached), written);
  EXPECT_EQ((*loaded)->Split("Haustür über"), (*trained)->Split("Haustür über"));

  // A damaged cache is an error that says what to do, not a silently different model.
  { std::ofstream(cached, std::ios::trunc) << "not a model"; }
  const absl::StatusOr<std::shared_ptr<SubwordTokenizer>> damaged =
      LoadOrTrainSubwordTokenizer(Corpus(), kOptions, directory.string());
  ASSERT_FALSE(damaged.ok());
  EXPECT_NE(damaged.status().message().find("delete the file"), std::string::npos)
      << damaged.status();
}

TEST(SubwordTokenizerTest, VocabularySmallerThanTheCharactersSaysWhatItNeeds) {
  // Corpus() has 22 distinct characters (B G H T a b d e g h k l m n o r s t u v ä ü);
  // SentencePiece adds the word boundary "▁" and <unk>.
  const absl::StatusOr<std::string> model = TrainSubwordModel(Corpus(), {20, "unigram"});
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kOutOfRange) << model.status();
  EXPECT_NE(model.status().message().find("a vocabulary of 20 pieces is too small"),
            std::string::npos)
      << model.status();
  EXPECT_NE(model.status().message().find("needs at least 24"), std::string::npos)
      << model.status();
}

TEST(SubwordTokenizerTest, TrainingTextOfEachSide) {
  const std::vector<Example> examples = {{"Haus", {"house", "home"}}, {"Tür", {"door"}}};
  EXPECT_EQ(SubwordTrainingText(examples, SubwordSide::kBothSides),
            (std::vector<std::string>{"Haus", "house", "home", "Tür", "door"}));
  EXPECT_EQ(SubwordTrainingText(examples, SubwordSide::kSource),
            (std::vector<std::string>{"Haus", "Tür"}));
  EXPECT_EQ(SubwordTrainingText(examples, SubwordSide::kTarget),
            (std::vector<std::string>{"house", "home", "door"}));
}

TEST(SubwordTokenizerTest, SharedOrOneModelPerSide) {
  const attnlab::testing::ScratchDirectory scratch;
  std::vector<Example> examples;
  for (const std::string& sentence : Corpus()) examples.push_back({sentence, {sentence + "s"}});
  const absl::StatusOr<SubwordTokenizers> shared =
      LoadOrTrainSubwordTokenizers(examples, kOptions, /*shared=*/true, scratch.path().string());
  ASSERT_TRUE(shared.ok()) << shared.status();
  EXPECT_EQ(shared->source, shared->target);
  const absl::StatusOr<SubwordTokenizers> separate =
      LoadOrTrainSubwordTokenizers(examples, kOptions, /*shared=*/false, scratch.path().string());
  ASSERT_TRUE(separate.ok()) << separate.status();
  EXPECT_NE(separate->source->Pieces(), separate->target->Pieces());
  int models = 0;
  for (const auto& entry : fs::directory_iterator(scratch.path())) {
    models += entry.path().extension() == ".model";
  }
  EXPECT_EQ(models, 3);

  // A side's failure says which side.
  const absl::StatusOr<SubwordTokenizers> too_small = LoadOrTrainSubwordTokenizers(
      examples, {20, "bpe"}, /*shared=*/false, scratch.path().string());
  ASSERT_FALSE(too_small.ok());
  EXPECT_EQ(too_small.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(too_small.status().message().rfind("the source side's model: ", 0), 0u)
      << too_small.status();
}

TEST(SubwordTokenizerTest, UnwritableCacheIsAnErrorNamingIt) {
  const attnlab::testing::ScratchDirectory scratch;
  const std::string missing = (scratch.path() / "no" / "such" / "directory").string();
  const absl::StatusOr<std::shared_ptr<SubwordTokenizer>> tokenizer =
      LoadOrTrainSubwordTokenizer(Corpus(), kOptions, missing);
  ASSERT_FALSE(tokenizer.ok());
  const std::string message(tokenizer.status().message());
  EXPECT_EQ(message.rfind(missing + "/sentencepiece-unigram-60-", 0), 0u) << message;
  EXPECT_NE(message.find("the SentencePiece model's cache"), std::string::npos) << message;
}

TEST(SubwordTokenizerTest, EmptyTextIsAnError) {
  const absl::StatusOr<std::string> model = TrainSubwordModel({"", " "}, kOptions);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().message(),
            "no text to train a SentencePiece model on (2 empty sentences)");
}

TEST(SubwordTokenizerTest, UnknownModelTypeIsAnError) {
  const absl::StatusOr<std::string> model = TrainSubwordModel(Corpus(), {60, "word"});
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("unknown SentencePiece model type 'word'"),
            std::string::npos);
}

}  // namespace
}  // namespace attnlab::experiments
