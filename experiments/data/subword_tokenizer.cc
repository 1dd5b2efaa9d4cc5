#include "experiments/data/subword_tokenizer.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "experiments/data/stable_hash.h"
#include "framework/core/error.h"

namespace attnlab::experiments {

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

absl::StatusOr<std::string> TrainSubwordModel(const std::vector<std::string>& sentences,
                                              const SubwordOptions& options) {
  if (options.model_type != "unigram" && options.model_type != "bpe") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown SentencePiece model type '", options.model_type, "' (unigram, bpe)"));
  }
  std::string model;
  const std::string error = sentencepiece_backend::Train(
      sentences, {static_cast<int>(options.vocab_size), options.model_type}, &model);
  if (!error.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("training a SentencePiece model on ",
                                                   sentences.size(), " sentences: ", error));
  }
  return model;
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
  // Written to a temporary name and renamed, so a concurrent or interrupted run never
  // sees half a model.
  const std::string temporary = absl::StrCat(path, ".tmp.", ::getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << model;
    out.flush();
    if (!out) {
      std::remove(temporary.c_str());
      return absl::UnavailableError(
          absl::StrCat(temporary, ": cannot write the SentencePiece model"));
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    return absl::UnavailableError(
        absl::StrCat(path, ": cannot rename the SentencePiece model into place"));
  }
  return SubwordTokenizer::FromModel(model);
}

}  // namespace attnlab::experiments
