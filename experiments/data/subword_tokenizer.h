// Subword tokens from a SentencePiece model (Kudo & Richardson 2018): "Haustür" ->
// "▁Haus" "tür". Join gives back the text exactly (the model is trained without
// normalisation; runs of spaces become one, as they already are in our data).
//
// Models are trained on the training split only and cached beside the data under a name
// that encodes everything they depend on (the sentences, the vocabulary size, the model
// type), so `attnlab evaluate`/`decode` find the very model a checkpoint was trained
// with, and a changed split or setting can never pick up a stale one.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/data/sentencepiece_backend.h"
#include "experiments/data/tokenizer.h"

namespace attnlab::experiments {

struct SubwordOptions {
  int64_t vocab_size = 8000;
  std::string model_type = "unigram";  // or "bpe"
};

class SubwordTokenizer : public Tokenizer {
 public:
  // `serialized_model`: a SentencePiece ModelProto, as TrainSubwordModel returns it.
  static absl::StatusOr<std::shared_ptr<SubwordTokenizer>> FromModel(
      const std::string& serialized_model);

  std::vector<std::string> Split(const std::string& text) const override;
  std::string Join(const std::vector<std::string>& tokens) const override;

 private:
  SubwordTokenizer() = default;
  sentencepiece_backend::Processor processor_;
};

// A serialized SentencePiece model trained on `sentences` (deterministic).
absl::StatusOr<std::string> TrainSubwordModel(const std::vector<std::string>& sentences,
                                              const SubwordOptions& options);

// The cache file name for a model of `sentences` and `options`:
// "sentencepiece-<type>-<vocab size>-<16 hex digits of a hash of both>.model".
std::string SubwordModelFileName(const std::vector<std::string>& sentences,
                                 const SubwordOptions& options);

// Loads `cache_dir`/SubwordModelFileName(...) if it exists; otherwise trains the model
// and writes it there (atomically) for the next run.
absl::StatusOr<std::shared_ptr<SubwordTokenizer>> LoadOrTrainSubwordTokenizer(
    const std::vector<std::string>& sentences, const SubwordOptions& options,
    const std::string& cache_dir);

}  // namespace attnlab::experiments
