// files: your own data, one example per line as `source<TAB>target`, in three files
// (task.train_path, task.valid_path, task.test_path; a relative path is resolved against
// the current directory, like any command-line path). Both sides are split by
// task.tokenizer: "char", "whitespace", or "sentencepiece" — subwords of a SentencePiece
// model (task.subword_model, task.subword_vocab_size; task.shared_vocabulary: one model
// for both sides or one per side) trained on the training file's examples only, as de_en
// trains its own (task_subwords.h). The models are cached beside the training file under
// a name that hashes the sentences they are trained on and their settings, so a changed
// training file trains new ones, while valid and test files never influence them.
//
// A source may appear on several lines with different targets (alternative
// translations, pronunciations): its lines become one Example whose references are the
// targets in first-seen order, the first being the one trained on; a repeated
// (source, target) line adds nothing. Empty (or all-whitespace) lines are skipped; a
// line splits at its first tab, so a target may itself contain tabs. A trailing '\r'
// (a file written on Windows) is dropped. The split sizes (task.train_size ...) are
// ignored, and the files are used as they are: a source that appears in two files is
// the user's choice, not an error.
//
// A missing or unreadable file, a line without a tab or with invalid UTF-8 (tokens are
// stored in the checkpoint's JSON header, which must be UTF-8) and a file without
// examples are errors naming the config key, the file and (for a line) its number.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <unordered_map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "experiments/tasks/task.h"
#include "experiments/tasks/task_subwords.h"
#include "framework/core/error.h"
#include "framework/io/utf8.h"

namespace attnlab::experiments {
namespace {

// Reads `path` (named by config key `key`) into examples, grouping repeated sources.
absl::StatusOr<std::vector<Example>> ReadExampleFile(const std::string& path,
                                                     const std::string& key) {
  if (path.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, " is empty: task `files` needs a source<TAB>target file for each split"));
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat(path, ": cannot open (", key, ")"));

  std::vector<Example> examples;
  std::unordered_map<std::string, size_t> example_of_source;
  std::string line;
  int64_t line_number = 0;
  while (std::getline(file, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    if (const std::optional<size_t> invalid = FirstInvalidUtf8(line)) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ":", line_number, ": invalid UTF-8 (byte ", *invalid + 1, " of the line, 0x",
          absl::Hex(static_cast<unsigned char>(line[*invalid]), absl::kZeroPad2),
          "); the file must be UTF-8 text"));
    }
    const size_t tab = line.find('\t');
    if (tab == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_number,
                       ": no tab between source and target (expected source<TAB>target)"));
    }
    std::string source = line.substr(0, tab);
    std::string target = line.substr(tab + 1);
    const auto [found, inserted] = example_of_source.emplace(source, examples.size());
    if (inserted) {
      examples.push_back(
          Example{std::move(source), {std::move(target)}, absl::StrCat(path, ":", line_number)});
      continue;
    }
    std::vector<std::string>& references = examples[found->second].references;
    if (std::find(references.begin(), references.end(), target) == references.end()) {
      references.push_back(std::move(target));
    }
  }
  if (file.bad()) return absl::DataLossError(absl::StrCat(path, ": read error (", key, ")"));
  if (examples.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no examples (the file is empty or has only blank lines; ", key, ")"));
  }
  return examples;
}

// The directory of the file at `path` ("." for a bare file name).
std::string DirectoryOf(const std::string& path) {
  const std::filesystem::path directory = std::filesystem::path(path).parent_path();
  return directory.empty() ? "." : directory.string();
}

class FileTask : public Task {
 public:
  // `tokenizer`: characters or words for both sides; null for subwords, which LoadSplits
  // trains on the training split.
  explicit FileTask(std::shared_ptr<Tokenizer> tokenizer)
      : source_tokenizer_(tokenizer), target_tokenizer_(tokenizer) {}

  absl::StatusOr<Splits> LoadSplits(const Config& config) const override {
    const TaskOptions& task = config.task();
    Splits splits;
    ASSIGN_OR_RETURN(splits.train, ReadExampleFile(task.train_path, "task.train_path"));
    ASSIGN_OR_RETURN(splits.valid, ReadExampleFile(task.valid_path, "task.valid_path"));
    ASSIGN_OR_RETURN(splits.test, ReadExampleFile(task.test_path, "task.test_path"));
    if (task.tokenizer == "sentencepiece") {
      ASSIGN_OR_RETURN(const SubwordTokenizers subwords,
                       TaskSubwordTokenizers(config, splits.train, DirectoryOf(task.train_path)));
      source_tokenizer_ = subwords.source;
      target_tokenizer_ = subwords.target;
    }
    return splits;
  }
  std::shared_ptr<Tokenizer> SourceTokenizer() const override { return Ready(source_tokenizer_); }
  std::shared_ptr<Tokenizer> TargetTokenizer() const override { return Ready(target_tokenizer_); }

 private:
  static std::shared_ptr<Tokenizer> Ready(const std::shared_ptr<Tokenizer>& tokenizer) {
    ATTNLAB_CHECK(tokenizer != nullptr, "files: subword tokenizers are trained by LoadSplits");
    return tokenizer;
  }
  // Set by the factory, or (subwords) trained or loaded by LoadSplits.
  mutable std::shared_ptr<Tokenizer> source_tokenizer_, target_tokenizer_;
};

ATTNLAB_REGISTER_TASK(files, "files",
                      [](const Config& config) -> absl::StatusOr<std::unique_ptr<Task>> {
                        if (config.task().tokenizer == "sentencepiece") {
                          return std::make_unique<FileTask>(nullptr);
                        }
                        ASSIGN_OR_RETURN(std::shared_ptr<Tokenizer> tokenizer,
                                         MakeTokenizer(config.task().tokenizer));
                        return std::make_unique<FileTask>(std::move(tokenizer));
                      });

}  // namespace
}  // namespace attnlab::experiments
