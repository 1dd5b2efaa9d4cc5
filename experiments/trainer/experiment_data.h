// Everything a run needs from its task: the splits, the tokenizers, the vocabularies
// and the examples encoded as ids. Built once per run from the config.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/config/config.h"
#include "experiments/data/batching.h"
#include "experiments/data/vocabulary.h"
#include "experiments/tasks/task.h"

namespace attnlab::experiments {

struct ExperimentData {
  std::unique_ptr<Task> task;
  Splits splits;
  std::shared_ptr<Tokenizer> source_tokenizer, target_tokenizer;
  Vocabulary source_vocabulary, target_vocabulary;
  std::vector<EncodedExample> train, valid, test;

  const std::vector<Example>& Examples(const std::string& split) const;
  const std::vector<EncodedExample>& Encoded(const std::string& split) const;
  // Token ids of a source text (ending in eos).
  std::vector<int32_t> EncodeSource(const std::string& text) const;
  // Token ids of a target text (ending in eos), as the model is trained to produce them.
  std::vector<int32_t> EncodeTarget(const std::string& text) const;
  // Text of decoded target ids.
  std::string DecodeTarget(const std::vector<int32_t>& ids) const;
};

// The longest sequence, in tokens with bos or eos, that `config`'s model can read:
// model.max_len for a Transformer with a table-based positional encoding (sinusoidal,
// learned); nullopt when positions have no limit (rope, none, the RNN).
std::optional<int64_t> LongestModelSequence(const Config& config);

// Loads the task's splits and builds vocabularies from the training split (one shared
// vocabulary when model.share_embeddings is set). If `vocabularies` are given (from a
// checkpoint) they are used instead, so ids mean what they meant in training. An
// example longer than the model's positional encoding supports is an error naming it
// (file:line for file data) and model.max_len.

absl::StatusOr<ExperimentData> LoadExperimentData(
    const Config& config, const std::vector<std::string>* source_tokens = nullptr,
    const std::vector<std::string>* target_tokens = nullptr);

}  // namespace attnlab::experiments
