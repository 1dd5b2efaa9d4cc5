// The `files` task with SentencePiece subwords (task.tokenizer = "sentencepiece"), on a
// made-up language pair written into a scratch directory: sources are upper-case words
// ("KALO MINU"), targets lower-case ones ("ba de"), so the letters of a piece tell which
// side's text a model saw. The models are trained on the training file only (letters
// that only the validation or test files hold are in no piece, and changing those files
// trains nothing), shared or per side, cached beside the training file (a second load
// trains nothing; a changed training file trains a new model), give the text back from
// its pieces, and a tiny training run and `attnlab decode` work end to end with them.
// Bad values of the keys are one-line errors naming the key and its file:line.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "experiments/config/config.h"
#include "experiments/data/subword_tokenizer.h"
#include "experiments/tasks/task.h"
#include "experiments/trainer/experiment_data.h"
#include "gtest/gtest.h"
#include "tests/experiments/cli_runner.h"
#include "tests/support/tiny_config.h"
#include "tests/support/trainer_run_test.h"

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;

// Words of two syllables; a source word's translation is its syllables' counterparts in
// reverse order ("KALO" -> "de ba" joined: "deba").
const std::vector<std::string> kSourceSyllables = {"KA", "LO", "MI", "NU", "RE", "SO", "TI", "VE"};
const std::vector<std::string> kTargetSyllables = {"ba", "de", "fi", "go", "hu", "ja", "ke", "li"};
// Held out: letters in none of the syllables, only in validation and test lines.
constexpr char kHeldOutSource[] = "QWXYZ";
constexpr char kHeldOutTarget[] = "qwxyz";

// Line `n` of the made-up corpus: three words chosen from n, source<TAB>target.
std::string CorpusLine(int n, bool held_out_word) {
  std::vector<std::string> source, target;
  for (const int word : {n % 64, (n * 7 + 3) % 64, (n * 13 + 5) % 64}) {
    source.push_back(kSourceSyllables[word / 8] + kSourceSyllables[word % 8]);
    target.insert(target.begin(), kTargetSyllables[word % 8] + kTargetSyllables[word / 8]);
  }
  if (held_out_word) {
    source.push_back(kHeldOutSource);
    target.insert(target.begin(), kHeldOutTarget);
  }
  return absl::StrCat(absl::StrJoin(source, " "), "\t", absl::StrJoin(target, " "), "\n");
}

std::string Corpus(int first, int count, bool held_out_words) {
  std::string text;
  for (int n = first; n < first + count; ++n) text += CorpusLine(n, held_out_words && n % 3 == 0);
  return text;
}

// The non-empty lines of `text`.
std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  return lines;
}

bool HasAnyOf(const std::string& piece, const std::string& letters) {
  return piece.find_first_of(letters) != std::string::npos;
}

bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool IsLower(char c) { return c >= 'a' && c <= 'z'; }

class FileTaskSubwordsTest : public testing::TrainerRunTest {
 protected:
  void SetUp() override {
    train_ = Write("data/train.tsv", Corpus(0, 300, /*held_out_words=*/false));
    valid_ = Write("data/valid.tsv", Corpus(300, 30, /*held_out_words=*/true));
    test_ = Write("data/test.tsv", Corpus(330, 30, /*held_out_words=*/true));
  }

  std::string Write(const std::string& name, const std::string& contents) const {
    const fs::path path = directory_ / name;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << contents;
    return path.string();
  }

  // The overrides of a `files` task over the three files with SentencePiece subwords.
  std::vector<std::string> Overrides(const std::vector<std::string>& more = {}) const {
    std::vector<std::string> overrides = {
        "task.name=files",         "task.train_path=" + train_,    "task.valid_path=" + valid_,
        "task.test_path=" + test_, "task.tokenizer=sentencepiece", "task.subword_vocab_size=100"};
    overrides.insert(overrides.end(), more.begin(), more.end());
    return overrides;
  }

  // A fresh task (as a new process would make it) with its splits loaded.
  std::unique_ptr<Task> LoadTask(const std::vector<std::string>& more = {}) const {
    const absl::StatusOr<Config> config = Config::Parse("", "files.toml", Overrides(more));
    EXPECT_TRUE(config.ok()) << config.status();
    if (!config.ok()) return nullptr;
    absl::StatusOr<std::unique_ptr<Task>> task = MakeTask(*config);
    EXPECT_TRUE(task.ok()) << task.status();
    if (!task.ok()) return nullptr;
    const absl::StatusOr<Splits> splits = (*task)->LoadSplits(*config);
    EXPECT_TRUE(splits.ok()) << splits.status();
    if (!splits.ok()) return nullptr;
    return *std::move(task);
  }

  // The cached models beside the training file, with their modification times.
  std::map<std::string, fs::file_time_type> CachedModels() const {
    std::map<std::string, fs::file_time_type> models;
    for (const auto& entry : fs::directory_iterator(directory_ / "data")) {
      if (entry.path().extension() == ".model") {
        models[entry.path().filename().string()] = entry.last_write_time();
      }
    }
    return models;
  }

  static std::vector<std::string> PiecesOf(const std::shared_ptr<Tokenizer>& tokenizer) {
    const auto* subwords = dynamic_cast<const SubwordTokenizer*>(tokenizer.get());
    EXPECT_NE(subwords, nullptr) << "not a SentencePiece tokenizer";
    return subwords == nullptr ? std::vector<std::string>{} : subwords->Pieces();
  }

  std::string train_, valid_, test_;
};

TEST_F(FileTaskSubwordsTest, ModelsLearnFromTheTrainingFileOnly) {
  for (const std::string type : {"unigram", "bpe"}) {
    const std::unique_ptr<Task> task = LoadTask({"task.subword_model=" + type});
    ASSERT_NE(task, nullptr) << type;
    const std::vector<std::string> pieces = PiecesOf(task->SourceTokenizer());
    // Subwords, not only characters: some piece spans two letters or more.
    EXPECT_TRUE(std::any_of(pieces.begin(), pieces.end(), [](const std::string& piece) {
      return std::count_if(piece.begin(), piece.end(), IsUpper) >= 2;
    })) << type;
    for (const std::string& piece : pieces) {
      EXPECT_FALSE(HasAnyOf(piece, std::string(kHeldOutSource) + kHeldOutTarget))
          << type << ": piece '" << piece << "' has a letter only the valid/test files hold";
    }
  }
  const std::map<std::string, fs::file_time_type> models = CachedModels();
  ASSERT_EQ(models.size(), 2u);  // one per model type
  EXPECT_EQ(models.begin()->first.rfind("sentencepiece-bpe-100-", 0), 0u);

  // New words in the valid and test files change no model: nothing is trained.
  Write("data/valid.tsv", Corpus(400, 30, true) + "PYX\tpyx\n");
  Write("data/test.tsv", Corpus(500, 30, true) + "BYX\tbyx\n");
  ASSERT_NE(LoadTask({"task.subword_model=unigram"}), nullptr);
  ASSERT_NE(LoadTask({"task.subword_model=bpe"}), nullptr);
  EXPECT_EQ(CachedModels(), models);
}

TEST_F(FileTaskSubwordsTest, SharedVocabularyIsOneModelSeparateIsOnePerSide) {
  const std::unique_ptr<Task> shared = LoadTask({"task.shared_vocabulary=true"});
  ASSERT_NE(shared, nullptr);
  EXPECT_EQ(shared->SourceTokenizer(), shared->TargetTokenizer());
  const std::vector<std::string> shared_pieces = PiecesOf(shared->SourceTokenizer());
  EXPECT_EQ(PiecesOf(shared->TargetTokenizer()), shared_pieces);
  // (Not counting "<unk>", the first piece of every model.)
  auto any_piece_with = [](const std::vector<std::string>& pieces, bool (*letter)(char)) {
    return std::any_of(pieces.begin(), pieces.end(), [letter](const std::string& piece) {
      return piece != "<unk>" && std::any_of(piece.begin(), piece.end(), letter);
    });
  };
  EXPECT_TRUE(any_piece_with(shared_pieces, IsUpper));
  EXPECT_TRUE(any_piece_with(shared_pieces, IsLower));
  EXPECT_EQ(CachedModels().size(), 1u);

  const std::unique_ptr<Task> separate = LoadTask({"task.shared_vocabulary=false"});
  ASSERT_NE(separate, nullptr);
  const std::vector<std::string> source_pieces = PiecesOf(separate->SourceTokenizer());
  const std::vector<std::string> target_pieces = PiecesOf(separate->TargetTokenizer());
  EXPECT_NE(source_pieces, target_pieces);
  EXPECT_TRUE(any_piece_with(source_pieces, IsUpper));
  EXPECT_FALSE(any_piece_with(source_pieces, IsLower)) << "the source model saw targets";
  EXPECT_TRUE(any_piece_with(target_pieces, IsLower));
  EXPECT_FALSE(any_piece_with(target_pieces, IsUpper)) << "the target model saw sources";
  EXPECT_EQ(CachedModels().size(), 3u);  // the shared one and one per side

  // Each side is split by its own model: a source word into upper-case pieces.
  for (const std::string& piece : separate->SourceTokenizer()->Split("KALO MINU")) {
    EXPECT_FALSE(any_piece_with({piece}, IsLower)) << piece;
  }

  // The run's vocabularies (token ids) follow: from one shared model with shared
  // embeddings, source and target ids are the same table.
  const absl::StatusOr<ExperimentData> data = LoadExperimentData(
      *Config::Parse("", "files.toml", Overrides({"model.share_embeddings=true"})));
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->source_vocabulary.tokens(), data->target_vocabulary.tokens());
}

TEST_F(FileTaskSubwordsTest, CacheIsReusedUntilTheTrainingFileChanges) {
  const std::unique_ptr<Task> first = LoadTask();
  ASSERT_NE(first, nullptr);
  const std::map<std::string, fs::file_time_type> trained = CachedModels();
  ASSERT_EQ(trained.size(), 1u);
  const std::string sentence = "KALO MINU SOVE";
  const std::vector<std::string> pieces = first->SourceTokenizer()->Split(sentence);

  // A second load (another run, `attnlab decode`) reads the cached file: no new file, the
  // old one not rewritten, the same pieces.
  const std::unique_ptr<Task> second = LoadTask();
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(CachedModels(), trained);
  EXPECT_EQ(second->SourceTokenizer()->Split(sentence), pieces);
  // No temporary file is left beside the model.
  for (const auto& entry : fs::directory_iterator(directory_ / "data")) {
    EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << entry.path();
  }

  // A changed training file trains a new model; the old file stays as it was.
  Write("data/train.tsv", Corpus(0, 300, false) + "KAKAKAKA KAKAKAKA\tbababa bababa\n");
  const std::unique_ptr<Task> changed = LoadTask();
  ASSERT_NE(changed, nullptr);
  const std::map<std::string, fs::file_time_type> after = CachedModels();
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after.at(trained.begin()->first), trained.begin()->second);
  EXPECT_NE(PiecesOf(changed->SourceTokenizer()), PiecesOf(first->SourceTokenizer()));

  // So do another vocabulary size and another model type.
  ASSERT_NE(LoadTask({"task.subword_vocab_size=120"}), nullptr);
  ASSERT_NE(LoadTask({"task.subword_model=bpe"}), nullptr);
  EXPECT_EQ(CachedModels().size(), 4u);
}

TEST_F(FileTaskSubwordsTest, PiecesJoinBackIntoTheText) {
  for (const std::string type : {"unigram", "bpe"}) {
    for (const std::string shared : {"true", "false"}) {
      const std::unique_ptr<Task> task =
          LoadTask({"task.subword_model=" + type, "task.shared_vocabulary=" + shared});
      ASSERT_NE(task, nullptr);
      // Training lines, and unseen lines made of seen letters.
      for (const std::string& line : SplitLines(Corpus(0, 20, false) + Corpus(600, 20, false))) {
        const std::vector<std::string> sides = absl::StrSplit(line, '\t');
        ASSERT_EQ(sides.size(), 2u);
        const std::vector<std::string> source_pieces = task->SourceTokenizer()->Split(sides[0]);
        EXPECT_GT(source_pieces.size(), 1u);
        EXPECT_EQ(task->SourceTokenizer()->Join(source_pieces), sides[0]) << type << " " << shared;
        EXPECT_EQ(task->TargetTokenizer()->Join(task->TargetTokenizer()->Split(sides[1])), sides[1])
            << type << " " << shared;
      }
      // A letter the model never saw is a piece of its own, and comes back too (the
      // run's vocabulary maps it to <unk>).
      EXPECT_EQ(task->SourceTokenizer()->Join(task->SourceTokenizer()->Split("KA Q")), "KA Q");
    }
  }
}

// ---- errors ---------------------------------------------------------------------------

// The error of loading a config that sets `key_values` in a files.toml (one key per
// line, after the [task] line, so a key's origin is files.toml:<its line>), or of
// loading its task's data.
std::string ErrorOf(const std::string& toml_lines, const std::vector<std::string>& overrides) {
  const absl::StatusOr<Config> config =
      Config::Parse("[task]\n" + toml_lines, "files.toml", overrides);
  if (!config.ok()) return std::string(config.status().message());
  const absl::StatusOr<ExperimentData> data = LoadExperimentData(*config);
  return data.ok() ? "" : std::string(data.status().message());
}

TEST_F(FileTaskSubwordsTest, BadKeysAreErrorsNamingKeyAndLine) {
  const std::vector<std::string> files = {"task.name=files", "task.train_path=" + train_,
                                          "task.valid_path=" + valid_, "task.test_path=" + test_};
  const std::map<std::string, std::vector<std::string>> cases = {
      {"tokenizer = \"sentencepieces\"\n",
       {"files.toml:2", "task.tokenizer", "sentencepiece", "whitespace"}},
      {"tokenizer = \"sentencepiece\"\nsubword_model = \"wordpiece\"\n",
       {"files.toml:3", "task.subword_model", "unigram", "bpe"}},
      {"tokenizer = \"sentencepiece\"\nsubword_vocab_size = 50\n",
       {"files.toml:3", "task.subword_vocab_size", "100"}},
      {"tokenizer = \"sentencepiece\"\nshared_vocabulary = \"yes\"\n",
       {"files.toml:3", "task.shared_vocabulary"}},
  };
  for (const auto& [lines, parts] : cases) {
    const std::string message = ErrorOf(lines, files);
    ASSERT_FALSE(message.empty()) << lines;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    for (const std::string& part : parts) {
      EXPECT_NE(message.find(part), std::string::npos) << "'" << message << "' lacks " << part;
    }
  }
}

// One piece per distinct character is the least a model can have: 150 CJK characters
// and a vocabulary of 100 is an error that says how many pieces the text needs.
TEST_F(FileTaskSubwordsTest, VocabularyTooSmallForTheTextIsOneClearError) {
  std::string text;
  for (char32_t c = 0x4E00; c < 0x4E00 + 150; ++c) {
    // U+4E00.. as three-byte UTF-8.
    const std::string character = {static_cast<char>(0xE0 | (c >> 12)),
                                   static_cast<char>(0x80 | ((c >> 6) & 0x3F)),
                                   static_cast<char>(0x80 | (c & 0x3F))};
    text += character + "\tx\n";
  }
  train_ = Write("data/train.tsv", text);
  const std::vector<std::string> files = {"task.name=files", "task.train_path=" + train_,
                                          "task.valid_path=" + valid_, "task.test_path=" + test_};
  for (const std::string shared : {"true", "false"}) {
    const std::string message = ErrorOf(
        "tokenizer = \"sentencepiece\"\nsubword_vocab_size = 100\nshared_vocabulary = " + shared +
            "\n",
        files);
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_NE(message.find("task.subword_vocab_size = 100 (files.toml:3)"), std::string::npos)
        << message;
    // 150 characters, "x" (shared only), the word boundary "▁" and <unk>.
    EXPECT_NE(message.find(shared == "true" ? "at least 153" : "at least 152"), std::string::npos)
        << message;
    if (shared == "false") {
      EXPECT_NE(message.find("source side"), std::string::npos) << message;
    }
  }
  EXPECT_TRUE(CachedModels().empty());
}

// ---- end to end -------------------------------------------------------------------------

// A short training run on subwords (shared and per side) that learns the made-up pairs,
// then `attnlab decode` of raw text lines: it splits them with the run's models and
// prints detokenised text (no "▁" word marks), the very predictions the run's
// samples.txt holds for the same sources.
TEST_F(FileTaskSubwordsTest, TrainAndDecodeEndToEnd) {
  for (const std::string shared : {"true", "false"}) {
    const std::string run = "run-shared-" + shared;
    // The tiny config, twice as wide, long enough (a second or two) to learn the pairs.
    const Config config = testing::TinyConfig(
        Overrides({"task.shared_vocabulary=" + shared, "model.d_model=32", "model.d_ff=64",
                   "train.max_steps=300", "train.batch_tokens=512", "train.eval_every=100",
                   "train.checkpoint_every=100", "eval.samples=5", "eval.attention_plots=0"}));
    const absl::StatusOr<TrainResult> result = Train(config, Options(run));
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->steps, 300);
    // A third of the test lines hold an unseen word, so 66.7% is the most it can get
    // (measured: 63.3% shared, 66.7% per side); an unlearned or garbled pipeline gets ~0.
    EXPECT_GE(result->test_metrics.at("exact_match"), 40.0) << "shared: " << shared;

    std::vector<std::string> sources, predictions;
    std::ifstream samples(directory_ / run / "samples.txt");
    for (std::string line; std::getline(samples, line);) {
      if (line.rfind("source:     ", 0) == 0) sources.push_back(line.substr(12));
      if (line.rfind("prediction: ", 0) == 0) {
        predictions.push_back(line.substr(12, line.rfind("   (") - 12));
      }
    }
    ASSERT_EQ(sources.size(), 5u);
    ASSERT_EQ(predictions.size(), 5u);
    std::string input;
    for (const std::string& source : sources) input += source + "\n";
    Write("decode.in", input);
    const testing::CliOutput decoded = testing::RunAttnlab(
        directory_, "decode --checkpoint " + run +
                        "/checkpoint_best.safetensors --input decode.in --threads 1");
    ASSERT_EQ(decoded.exit_code, 0) << decoded.err;
    std::vector<std::string> lines = absl::StrSplit(decoded.out, '\n');
    ASSERT_EQ(lines.back(), "");
    lines.pop_back();
    EXPECT_EQ(lines, predictions);
    EXPECT_TRUE(std::any_of(lines.begin(), lines.end(),
                            [](const std::string& line) { return !line.empty(); }));
    EXPECT_EQ(decoded.out.find("\xE2\x96\x81"), std::string::npos) << decoded.out;
  }
}

// Two processes that need the same model at once (two runs, the ranks of a data-parallel
// job) both succeed and leave one complete model and no temporary file.
TEST_F(FileTaskSubwordsTest, TwoProcessesTrainingTheSameModelAtOnce) {
  Write("files.toml", Config::Parse("", "files.toml", Overrides())->ToToml());
  const std::string init = std::string("'") + ATTNLAB_CLI + "' init --config files.toml --out ";
  const testing::CliOutput both =
      testing::RunShell(directory_, init + "a.safetensors & a=$!; " + init +
                                        "b.safetensors & b=$!; wait $a && wait $b");
  EXPECT_EQ(both.exit_code, 0) << both.err;
  EXPECT_EQ(CachedModels().size(), 1u);
  for (const auto& entry : fs::directory_iterator(directory_ / "data")) {
    EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << entry.path();
  }
  EXPECT_NE(LoadTask(), nullptr);  // the cached file loads
}

}  // namespace
}  // namespace attnlab::experiments
