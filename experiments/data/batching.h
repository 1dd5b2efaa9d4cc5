// Batches for sequence-to-sequence training: examples are encoded to ids, grouped into
// length buckets under a token budget, padded, and shuffled with a seed.
#pragma once

#include <cstdint>
#include <vector>

#include "framework/tensor/tensor.h"

namespace attnlab::experiments {

// An example as token ids; both sequences end with eos.
struct EncodedExample {
  std::vector<int32_t> source;
  std::vector<int32_t> target;
};

struct Batch {
  Tensor source;         // i32 [batch, src_len], padded with pad (0)
  Tensor target_input;   // i32 [batch, tgt_len]: bos, then the target without its last token
  Tensor target_output;  // i32 [batch, tgt_len]: the target (ending in eos), padded
  std::vector<int64_t> example_indices;  // rows' positions in the encoded split
  int64_t source_tokens = 0;             // non-pad tokens
  int64_t target_tokens = 0;
};

// Groups example indices into batches: examples are ordered by length (ties broken by a
// seeded random key), cut into batches whose padded size max(src_len, tgt_len) * rows
// stays within `batch_tokens` (a single longer example forms its own batch) and at most
// `max_batch_size` rows, and the batch order is shuffled with `seed`. Every example
// appears in exactly one batch. With shuffle = false the order is by length (evaluation).
std::vector<std::vector<int64_t>> MakeBatchPlan(const std::vector<EncodedExample>& examples,
                                                int64_t batch_tokens, int64_t max_batch_size,
                                                bool shuffle, uint64_t seed);

// Pads the listed examples into one Batch.
Batch MakeBatch(const std::vector<EncodedExample>& examples, const std::vector<int64_t>& indices);

}  // namespace attnlab::experiments
