// Dropout on a shard of a global batch: the masks a data-parallel rank draws for its rows
// are exactly those rows of the masks one process would draw for the whole batch.
//
// A dropout call (Dropout, its fused forms ReluDropout and AddDropout, and
// ScaledDotProductAttention's dropout on its weights) reserves DropoutBlocks(numel)
// Philox blocks of the default generator and keys element i by (seed, first reserved
// block, i) (dropout_stream.h). With N ranks each running rows [first_row, first_row +
// rows) of a global batch of global_rows examples, that would give each rank other masks
// and move each rank's generator by another amount. While a DropoutBatchShard is alive on
// a thread, a dropout call on that thread instead treats its input x, whose dim 0 must be
// the shard's `rows` (per_row = numel / rows elements each, stored one row after
// another), as rows [first_row, first_row + rows) of a tensor of global_rows * per_row
// elements: it reserves that global tensor's blocks, and keys local element i by the
// global index first_row * per_row + i. So
//   * the masks depend on each example's global position, not on N;
//   * the generator moves on identically on every rank (and as in one process);
//   * DropoutBatchShard(0, B, B) changes nothing: bit-identical to no shard at all.
//
// The trainer sets it on its main thread around the forward of a micro-batch:
//   DropoutBatchShard shard(first_row, rows, global_rows);
//   Tensor loss = model.Loss(batch_rows);  // every Dropout inside draws global rows
// Backward needs no shard (Dropout's backward reuses the forward's bit mask, and the
// fused attention keeps the stream position its forward reserved), so the guard may end
// before or after backward.
// The state is per thread, like NoGradGuard's; it is read once per call on the calling
// thread, and the op's OpenMP workers get the result by value.
//
// Every rank must make the same sequence of dropout calls with the same per_row (the
// same padded lengths), as it does when all ranks pad the global batch the same way. A
// rank that skips its forward (a shard with no rows) draws nothing and falls behind the
// others: it must be brought to their generator offset (all ranks that ran agree on it,
// so the maximum over ranks is the right one) before the next batch. A
// call whose dim 0 is not the batch (a time-major [T, B, E] tensor) cannot be mapped to
// global positions and is an error (when T == rows it cannot be detected: keep the batch
// outermost at every dropout call site).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "framework/ops/dropout_stream.h"
#include "framework/tensor/shape.h"

namespace attnlab {

// Rows [first_row, first_row + rows) of a batch of global_rows examples.
struct ShardRows {
  int64_t first_row = 0;
  int64_t rows = 0;
  int64_t global_rows = 0;
};

// Makes `shard` the active batch shard of this thread for its scope; restores the
// previous one (normally none) on exit. Requires 0 <= first_row, rows >= 1 and
// first_row + rows <= global_rows.
class DropoutBatchShard {
 public:
  DropoutBatchShard(int64_t first_row, int64_t rows, int64_t global_rows);
  ~DropoutBatchShard();
  DropoutBatchShard(const DropoutBatchShard&) = delete;
  DropoutBatchShard& operator=(const DropoutBatchShard&) = delete;

  // The shard active on the calling thread, if any.
  static std::optional<ShardRows> Active();

 private:
  std::optional<ShardRows> previous_;
};

// Reserves the blocks of a dropout call on a tensor of `shape` from the default
// generator: DropoutBlocks(numel) without a shard; with one, those of the global
// tensor, after checking that shape[0] is the shard's rows (`op` names the caller in
// that error).
DropoutStream ReserveDropoutStream(const Shape& shape, std::string_view op);

}  // namespace attnlab
