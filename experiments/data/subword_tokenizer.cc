#include "experiments/data/subword_tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "experiments/data/stable_hash.h"
#include "framework/core/error.h"
#include "framework/io/atomic_file.h"

namespace attnlab::experiments {
namespace {

// The vocabulary size SentencePiece asked for when `error` says the requested one is
// smaller than the text's characters (with character_coverage 1.0 every character is a
// piece of its own) plus the meta pieces: "... Vocabulary size is smaller than
// required_chars. 60 vs 131. Increase vocab_size ...". nullopt for any other error.
std::optional<int64_t> RequiredVocabularySize(const std::string& error) {
  constexpr std::string_view kMarker = "Vocabulary size is smaller than required_chars. ";
  const size_t marker = error.find(kMarker);
  if (marker == std::string::npos) return std::nullopt;
  const std::vector<std::string> words =
      absl::StrSplit(error.substr(marker + kMarker.size()), absl::ByAnyChar(" ."));
  int64_t required = 0;
  if (words.size() < 3 || words[1] != "vs" || !absl::SimpleAtoi(words[2], &required)) {
    return std::nullopt;
  }
  return required;
}

}  // namespace

absl::StatusOr<std::shared_ptr<SubwordTokenizer>> SubwordTokenizer::FromModel(
    const std::string& serialized_model) {
  std::shared_ptr<SubwordTokenizer> tokenizer(new SubwordTokenizer());
  const std::string error = tokenizer->processor_.Load(serialized_model);
  if (!error.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("SentencePiece model: ", error));
  }
  return tokenizer;
}

std::vector<std::string> SubwordTokenizer::Split(const std::string& text) const {
  return processor_.Encode(text);
}

std::string SubwordTokenizer::Join(const std::vector<std::string>& tokens) const {
  return processor_.Decode(tokens);
}

std::vector<std::string> SubwordTokenizer::Pieces() const { return processor_.Pieces(); }

absl::StatusOr<std::string> TrainSubwordModel(const std::vector<std::string>& sentences,
                                              const SubwordOptions& options) {
  if (options.model_type != "unigram" && options.model_type != "bpe") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown SentencePiece model type '", options.model_type, "' (unigram, bpe)"));
  }
  // (SentencePiece's own message for this is a failed internal check.)
  if (std::all_of(sentences.begin(), sentences.end(), [](const std::string& sentence) {
        return absl::StripAsciiWhitespace(sentence).empty();
      })) {
    return absl::InvalidArgumentError(absl::StrCat("no text to train a SentencePiece model on (",
                                                   sentences.size(), " empty sentences)"));
  }
  std::string model;
  const std::string error = sentencepiece_backend::Train(
      sentences, {static_cast<int>(options.vocab_size), options.model_type}, &model);
  if (error.empty()) return model;
  if (const std::optional<int64_t> required = RequiredVocabularySize(error)) {
    return absl::OutOfRangeError(absl::StrCat(
        "a vocabulary of ", options.vocab_size,
        " pieces is too small for the training text: ", "SentencePiece needs at least ", *required,
        " (a piece for each distinct character, the word mark \"▁\" and <unk>)"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("training a SentencePiece model on ", sentences.size(), " sentences: ", error));
}

std::string SubwordModelFileName(const std::vector<std::string>& sentences,
                                 const SubwordOptions& options) {
  // Each sentence is hashed with the previous hash as its seed, so the boundaries count
  // (["ab", "c"] and ["a", "bc"] differ).
  uint64_t hash = StableHash(absl::StrCat(options.model_type, " ", options.vocab_size), 0);
  for (const std::string& sentence : sentences) hash = StableHash(sentence, hash);
  return absl::StrFormat("sentencepiece-%s-%d-%016x.model", options.model_type, options.vocab_size,
                         hash);
}

absl::StatusOr<std::shared_ptr<SubwordTokenizer>> LoadOrTrainSubwordTokenizer(
    const std::vector<std::string>& sentences, const SubwordOptions& options,
    const std::string& cache_dir) {
  const std::string path =
      (std::filesystem::path(cache_dir) / SubwordModelFileName(sentences, options)).string();
  std::ifstream cached(path, std::ios::binary);
  if (cached) {
    std::stringstream contents;
    contents << cached.rdbuf();
    absl::StatusOr<std::shared_ptr<SubwordTokenizer>> tokenizer =
        SubwordTokenizer::FromModel(contents.str());
    if (!tokenizer.ok()) {
      return absl::DataLossError(absl::StrCat(path, ": ", tokenizer.status().message(),
                                              " (delete the file to train it again)"));
    }
    return tokenizer;
  }
  ASSIGN_OR_RETURN(const std::string model, TrainSubwordModel(sentences, options));
  const absl::Status written = WriteFileAtomically(path, model);
  if (!written.ok()) {
    return absl::Status(written.code(), absl::StrCat(written.message(),
                                                     " (the SentencePiece model's cache; its "
                                                     "directory must be writable)"));
  }
  return SubwordTokenizer::FromModel(model);
}

std::vector<std::string> SubwordTrainingText(const std::vector<Example>& training_split,
                                             SubwordSide side) {
  std::vector<std::string> sentences;
  for (const Example& example : training_split) {
    if (side != SubwordSide::kTarget) sentences.push_back(example.source);
    if (side != SubwordSide::kSource) {
      sentences.insert(sentences.end(), example.references.begin(), example.references.end());
    }
  }
  return sentences;
}

absl::StatusOr<SubwordTokenizers> LoadOrTrainSubwordTokenizers(
    const std::vector<Example>& training_split, const SubwordOptions& options, bool shared,
    const std::string& cache_dir) {
  SubwordTokenizers tokenizers;
  if (shared) {
    ASSIGN_OR_RETURN(
        tokenizers.source,
        LoadOrTrainSubwordTokenizer(SubwordTrainingText(training_split, SubwordSide::kBothSides),
                                    options, cache_dir));
    tokenizers.target = tokenizers.source;
    return tokenizers;
  }
  for (const auto& [side, name, tokenizer] :
       {std::tuple{SubwordSide::kSource, "source", &tokenizers.source},
        std::tuple{SubwordSide::kTarget, "target", &tokenizers.target}}) {
    absl::StatusOr<std::shared_ptr<SubwordTokenizer>> loaded =
        LoadOrTrainSubwordTokenizer(SubwordTrainingText(training_split, side), options, cache_dir);
    if (!loaded.ok()) {
      return absl::Status(loaded.status().code(),
                          absl::StrCat("the ", name, " side's model: ", loaded.status().message()));
    }
    *tokenizer = *std::move(loaded);
  }
  return tokenizers;
}

}  // namespace attnlab::experiments
