#include "experiments/data/batching.h"

#include <algorithm>
#include <numeric>

#include "experiments/data/task_random.h"
#include "experiments/data/vocabulary.h"

namespace attnlab::experiments {

std::vector<std::vector<int64_t>> MakeBatchPlan(const std::vector<EncodedExample>& examples,
                                                int64_t batch_tokens, int64_t max_batch_size,
                                                bool shuffle, uint64_t seed) {
  TaskRandom random(seed);
  std::vector<uint64_t> tie_break(examples.size());
  for (uint64_t& key : tie_break) key = shuffle ? random.Next() : 0;
  std::vector<int64_t> order(examples.size());
  std::iota(order.begin(), order.end(), 0);
  auto length = [&](int64_t i) {
    return std::max(examples[i].source.size(), examples[i].target.size());
  };
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    if (length(a) != length(b)) return length(a) < length(b);
    return tie_break[a] < tie_break[b];
  });

  std::vector<std::vector<int64_t>> batches;
  std::vector<int64_t> current;
  size_t longest = 0;
  for (int64_t index : order) {
    const size_t longest_with = std::max(longest, length(index));
    const bool over_budget =
        static_cast<int64_t>(longest_with * (current.size() + 1)) > batch_tokens;
    const bool full = static_cast<int64_t>(current.size()) >= max_batch_size;
    if (!current.empty() && (over_budget || full)) {
      batches.push_back(std::move(current));
      current.clear();
      longest = 0;
    }
    current.push_back(index);
    longest = std::max(longest, length(index));
  }
  if (!current.empty()) batches.push_back(std::move(current));

  if (shuffle) {  // Fisher-Yates with the same seeded stream
    for (size_t i = batches.size(); i > 1; --i) {
      std::swap(batches[i - 1], batches[random.Uniform(0, static_cast<int64_t>(i) - 1)]);
    }
  }
  return batches;
}

Batch MakeBatch(const std::vector<EncodedExample>& examples, const std::vector<int64_t>& indices) {
  size_t source_length = 0, target_length = 0;
  for (int64_t i : indices) {
    source_length = std::max(source_length, examples[i].source.size());
    target_length = std::max(target_length, examples[i].target.size());
  }
  const int64_t rows = static_cast<int64_t>(indices.size());
  Batch batch;
  batch.source = Tensor::Zeros({rows, static_cast<int64_t>(source_length)}, DType::kI32);
  batch.target_input = Tensor::Zeros({rows, static_cast<int64_t>(target_length)}, DType::kI32);
  batch.target_output = Tensor::Zeros({rows, static_cast<int64_t>(target_length)}, DType::kI32);
  batch.example_indices = indices;
  int32_t* source = batch.source.data<int32_t>();
  int32_t* target_input = batch.target_input.data<int32_t>();
  int32_t* target_output = batch.target_output.data<int32_t>();
  for (int64_t row = 0; row < rows; ++row) {
    const EncodedExample& example = examples[indices[row]];
    std::copy(example.source.begin(), example.source.end(), source + row * source_length);
    int32_t* input_row = target_input + row * target_length;
    input_row[0] = Vocabulary::kBos;
    for (size_t t = 0; t + 1 < example.target.size(); ++t) input_row[t + 1] = example.target[t];
    std::copy(example.target.begin(), example.target.end(), target_output + row * target_length);
    batch.source_tokens += static_cast<int64_t>(example.source.size());
    batch.target_tokens += static_cast<int64_t>(example.target.size());
  }
  return batch;
}

}  // namespace attnlab::experiments
