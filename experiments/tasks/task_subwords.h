// The SentencePiece tokenizers of a task with subwords (de_en; `files` with
// task.tokenizer = "sentencepiece"), from the keys they share: task.subword_model,
// task.subword_vocab_size and task.shared_vocabulary. Trained on the training split
// only and cached in a directory beside the data (experiments/data/subword_tokenizer.h).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/config/config.h"
#include "experiments/data/example.h"
#include "experiments/data/subword_tokenizer.h"

namespace attnlab::experiments {

// A vocabulary too small for the text is an error naming task.subword_vocab_size, its
// origin (file:line) and the size it needs.
absl::StatusOr<SubwordTokenizers> TaskSubwordTokenizers(const Config& config,
                                                        const std::vector<Example>& training_split,
                                                        const std::string& cache_dir);

}  // namespace attnlab::experiments
