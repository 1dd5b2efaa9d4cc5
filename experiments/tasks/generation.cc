#include "experiments/tasks/generation.h"

#include <algorithm>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "framework/core/error.h"
#include "framework/tensor/allocator.h"

namespace attnlab::experiments {

absl::StatusOr<Splits> GenerateSplits(
    const Config& config, const std::string& task_name,
    const std::function<Example(TaskRandom& random, const LengthRange& lengths)>& make_example) {
  const LengthRange lengths{config.task().min_length, config.task().max_length};
  if (lengths.min > lengths.max) {
    return absl::InvalidArgumentError(absl::StrCat(config.Origin("task.min_length"),
                                                   ": task.min_length ", lengths.min,
                                                   " exceeds task.max_length ", lengths.max));
  }
  LengthRange test_lengths = lengths;
  if (config.task().test_min_length > 0) test_lengths.min = config.task().test_min_length;
  if (config.task().test_max_length > 0) test_lengths.max = config.task().test_max_length;
  if (test_lengths.min > test_lengths.max) {
    return absl::InvalidArgumentError(absl::StrCat(
        "test lengths ", test_lengths.min, "..", test_lengths.max,
        " are empty: ", config.Describe("task.test_min_length"), ", ",
        config.Describe("task.test_max_length"), ", ", config.Describe("task.max_length")));
  }

  const std::pair<const char*, int64_t> split_sizes[] = {
      {"task.train_size", config.task().train_size},
      {"task.valid_size", config.task().valid_size},
      {"task.test_size", config.task().test_size}};
  for (const auto& [key, size] : split_sizes) {
    if (size < 1) {
      return absl::InvalidArgumentError(absl::StrCat(config.Origin(key), ": ", key, " = ", size,
                                                     ": task ", task_name,
                                                     " needs at least 1 example per split"));
    }
  }
  // Each example is held several times over (text, tokens, ids), at roughly this many
  // bytes; refuse splits that cannot fit before spending minutes generating them.
  const double examples = static_cast<double>(config.task().train_size + config.task().valid_size +
                                              config.task().test_size);
  const double bytes_per_example =
      300 + 16 * static_cast<double>(std::max(lengths.max, test_lengths.max));
  RETURN_IF_ERROR(CheckMemoryAvailable(
      examples * bytes_per_example,
      absl::StrCat("task ", task_name, " with ", config.Describe("task.train_size"), ", ",
                   config.Describe("task.valid_size"), ", ", config.Describe("task.test_size"),
                   " and sequences up to ", std::max(lengths.max, test_lengths.max), " long")));
  TaskRandom random(static_cast<uint64_t>(config.task().seed));
  std::unordered_set<std::string> seen;
  Splits splits;
  auto fill = [&](std::vector<Example>& split, int64_t size, const LengthRange& range,
                  const char* split_name) -> absl::Status {
    // Rejection sampling of repeats; give up when almost every draw is a repeat.
    const int64_t max_attempts = 50 * size + 1000;
    int64_t attempts = 0;
    while (static_cast<int64_t>(split.size()) < size) {
      if (++attempts > max_attempts) {
        return absl::InvalidArgumentError(absl::StrCat(
            "task ", task_name, ": could not draw ", size, " distinct ", split_name,
            " examples (got ", split.size(),
            "); these lengths and vocabulary admit too few "
            "distinct sequences: lower the split sizes or raise task.max_length/task.vocab_size"));
      }
      Example example = make_example(random, range);
      if (seen.insert(example.source).second) split.push_back(std::move(example));
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(fill(splits.train, config.task().train_size, lengths, "training"));
  RETURN_IF_ERROR(fill(splits.valid, config.task().valid_size, lengths, "validation"));
  RETURN_IF_ERROR(fill(splits.test, config.task().test_size, test_lengths, "test"));
  return splits;
}

}  // namespace attnlab::experiments
