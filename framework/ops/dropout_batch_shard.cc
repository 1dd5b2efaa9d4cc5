#include "framework/ops/dropout_batch_shard.h"

#include "framework/core/error.h"
#include "framework/random/generator.h"

namespace attnlab {
namespace {
// Per thread, as GradMode: set by the thread that calls the ops, read by it alone.
thread_local std::optional<ShardRows> active_shard;
}  // namespace

DropoutBatchShard::DropoutBatchShard(int64_t first_row, int64_t rows, int64_t global_rows)
    : previous_(active_shard) {
  ATTNLAB_CHECK(first_row >= 0 && rows >= 1 && first_row + rows <= global_rows,
                "DropoutBatchShard: rows [", first_row, ", ", first_row + rows,
                ") are not a non-empty part of a batch of ", global_rows, " rows");
  active_shard = ShardRows{first_row, rows, global_rows};
}

DropoutBatchShard::~DropoutBatchShard() { active_shard = previous_; }

std::optional<ShardRows> DropoutBatchShard::Active() { return active_shard; }

DropoutStream ReserveDropoutStream(const Shape& shape, std::string_view op) {
  Generator& generator = DefaultGenerator();
  const int64_t count = NumElements(shape);
  if (!active_shard.has_value()) {
    return DropoutStream{generator.seed(), generator.Reserve(DropoutBlocks(count)), 0};
  }
  const ShardRows& shard = *active_shard;
  ATTNLAB_CHECK(!shape.empty() && shape[0] == shard.rows, op, ": under DropoutBatchShard(rows [",
                shard.first_row, ", ", shard.first_row + shard.rows, ") of ", shard.global_rows,
                "), dim 0 of the input must be the batch of ", shard.rows,
                " rows (make the batch the outer dimension), got ", ShapeToString(shape));
  const int64_t per_row = count / shard.rows;
  const int64_t global_count = shard.global_rows * per_row;
  return DropoutStream{generator.seed(), generator.Reserve(DropoutBlocks(global_count)),
                       static_cast<uint64_t>(shard.first_row * per_row)};
}

}  // namespace attnlab
