// `attnlab bench --attention_sweep`: the attention of encoder self-attention in training,
// by length. At each length L the batch is tokens / L (so every length does the same
// number of tokens), queries, keys and values are random [batch, heads, L, head_dim]
// leaves, and one step is softmax(q k^T / sqrt(head_dim)) with dropout on the weights,
// times v, then backward from a fixed random output gradient. Two paths, alternated
// length by length:
//   fused:     ScaledDotProductAttention (framework/ops/attention.cc), O(L) extra memory;
//   composite: Matmul, MulScalar, Softmax, Dropout, Matmul, which materialise the
//              [batch, heads, L, L] scores, weights and dropped weights, as PyTorch 1.13
//              does (tools/compare_pytorch.py --attention_sweep times the same step).
// Per path and length: the median step time over `steps` after `warmup`, and the peak
// memory of one step: the growth of the process's resident set (VmHWM after resetting it
// through /proc/self/clear_refs, minus VmRSS before, with the tensor cache emptied and
// malloc_trim'd first, so that the pages the step needs are counted whether the system
// allocator reuses them or not), and the caching allocator's peak of live
// tensor bytes. The first step of both paths draws the same dropout mask (same seed); the
// largest difference of their outputs and query gradients is reported.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace attnlab::experiments {

struct AttentionSweepOptions {
  std::vector<int64_t> lengths = {64, 128, 256, 512, 1024};
  int64_t tokens = 8192;  // batch x length at every length
  int64_t heads = 8;
  int64_t head_dim = 64;
  float dropout = 0.1f;  // on the attention weights
  int64_t steps = 5;     // timed steps per path and length
  int64_t warmup = 1;
  uint64_t seed = 1;
};

struct AttentionSweepPath {
  double step_ms_median = 0;
  int64_t peak_rss_growth_bytes = -1;  // -1: /proc/self/clear_refs is not writable here
  int64_t allocator_peak_bytes = 0;    // live tensor bytes at most, beyond the inputs
};

struct AttentionSweepRow {
  int64_t length = 0, batch = 0;
  AttentionSweepPath fused, composite;
  double max_output_difference = 0;      // |fused - composite|, first step
  double max_query_grad_difference = 0;  // the same for the query gradient
};

// Fails (InvalidArgument) on non-positive sizes or counts, or a length above tokens.
absl::StatusOr<std::vector<AttentionSweepRow>> RunAttentionSweep(
    const AttentionSweepOptions& options);

}  // namespace attnlab::experiments
