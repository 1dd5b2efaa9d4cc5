// Subword tokens from a SentencePiece model (Kudo & Richardson 2018): "Haustür" ->
// "▁Haus" "tür". Join gives back the text exactly (the model is trained without
// normalisation; runs of spaces become one, as they already are in our data; a character
// the model never saw is a piece of its own, which a run's vocabulary maps to <unk>).
//
// Models are trained on the training split only and cached beside the data under a name
// that encodes everything they depend on (the sentences, the vocabulary size, the model
// type), so `attnlab evaluate`/`decode` find the very model a checkpoint was trained
// with, and a changed split or setting can never pick up a stale one. Tasks use them
// through LoadOrTrainSubwordTokenizers (de_en, and `files` with task.tokenizer =
// "sentencepiece").
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/data/example.h"
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
  // The model's vocabulary in id order: "<unk>", then every piece it can split into.
  std::vector<std::string> Pieces() const;

 private:
  SubwordTokenizer() = default;
  sentencepiece_backend::Processor processor_;
};

// A serialized SentencePiece model trained on `sentences` (deterministic). A vocabulary
// smaller than the text's distinct characters (plus <unk>) allow is an OutOfRange error
// that says how large it must be; other failures (e.g. only empty sentences) are
// InvalidArgument.
absl::StatusOr<std::string> TrainSubwordModel(const std::vector<std::string>& sentences,
                                              const SubwordOptions& options);

// The cache file name for a model of `sentences` and `options`:
// "sentencepiece-<type>-<vocab size>-<16 hex digits of a hash of both>.model".
std::string SubwordModelFileName(const std::vector<std::string>& sentences,
                                 const SubwordOptions& options);

// Loads `cache_dir`/SubwordModelFileName(...) if it exists; otherwise trains the model
// and writes it there atomically (framework/io/atomic_file.h) for the next run. Processes
// that train the same model at once (the ranks of a data-parallel job, two runs) each
// write a complete file under a temporary name of their own and rename it into place;
// the models are identical, so whichever rename comes last changes nothing.
absl::StatusOr<std::shared_ptr<SubwordTokenizer>> LoadOrTrainSubwordTokenizer(
    const std::vector<std::string>& sentences, const SubwordOptions& options,
    const std::string& cache_dir);

// The text a model of a task's training split is trained on: each example's source
// followed by its references (kBothSides), or only the sources or only the references.
enum class SubwordSide { kBothSides, kSource, kTarget };
std::vector<std::string> SubwordTrainingText(const std::vector<Example>& training_split,
                                             SubwordSide side);

// A task's source and target tokenizers: one model trained on both sides of
// `training_split` (`shared`; then source == target), or one trained on its sources and
// one on its references. Each is loaded or trained as LoadOrTrainSubwordTokenizer does;
// since a model's cache name hashes the very sentences it is trained on, the shared model
// and the per-side ones never share a file.
struct SubwordTokenizers {
  std::shared_ptr<SubwordTokenizer> source, target;
};
absl::StatusOr<SubwordTokenizers> LoadOrTrainSubwordTokenizers(
    const std::vector<Example>& training_split, const SubwordOptions& options, bool shared,
    const std::string& cache_dir);

}  // namespace attnlab::experiments
