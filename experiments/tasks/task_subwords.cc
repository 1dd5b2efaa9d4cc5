#include "experiments/tasks/task_subwords.h"

#include "absl/strings/str_cat.h"

namespace attnlab::experiments {

absl::StatusOr<SubwordTokenizers> TaskSubwordTokenizers(const Config& config,
                                                        const std::vector<Example>& training_split,
                                                        const std::string& cache_dir) {
  const TaskOptions& task = config.task();
  absl::StatusOr<SubwordTokenizers> tokenizers =
      LoadOrTrainSubwordTokenizers(training_split, {task.subword_vocab_size, task.subword_model},
                                   task.shared_vocabulary, cache_dir);
  if (tokenizers.status().code() == absl::StatusCode::kOutOfRange) {
    return absl::InvalidArgumentError(absl::StrCat(config.Describe("task.subword_vocab_size"), ": ",
                                                   tokenizers.status().message(), "; raise it"));
  }
  return tokenizers;
}

}  // namespace attnlab::experiments
