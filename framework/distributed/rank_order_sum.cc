#include "framework/distributed/rank_order_sum.h"

#include <algorithm>

#include "framework/core/error.h"

namespace attnlab::distributed {

ChunkLayout::ChunkLayout(int64_t count, int parts)
    : count_(count), parts_(parts), base_(0), extra_(0) {
  ATTNLAB_CHECK(count >= 0 && parts >= 1, "ChunkLayout: ", count, " elements in ", parts, " parts");
  base_ = count / parts;
  extra_ = count % parts;
}

int64_t ChunkLayout::begin(int part) const {
  return part * base_ + std::min<int64_t>(part, extra_);
}

int64_t ChunkLayout::size(int part) const { return base_ + (part < extra_ ? 1 : 0); }

void SumInRankOrder(std::span<const float* const> contributions, int64_t count, float divisor,
                    float* out) {
  ATTNLAB_CHECK(!contributions.empty(), "SumInRankOrder: no contributions");
  // Blocks small enough for the accumulator to stay in L1; each `+=` pass over a block is
  // a plain loop that GCC vectorises, and vectorising changes no element's order of
  // additions (there is no reduction across elements).
  constexpr int64_t kBlock = 1024;
  alignas(64) float accumulator[kBlock];
  for (int64_t block_begin = 0; block_begin < count; block_begin += kBlock) {
    const int64_t length = std::min(kBlock, count - block_begin);
    const float* first = contributions[0] + block_begin;
    for (int64_t k = 0; k < length; ++k) accumulator[k] = first[k];
    for (size_t rank = 1; rank < contributions.size(); ++rank) {
      const float* values = contributions[rank] + block_begin;
      for (int64_t k = 0; k < length; ++k) accumulator[k] += values[k];
    }
    float* destination = out + block_begin;
    if (divisor == 1.0f) {
      for (int64_t k = 0; k < length; ++k) destination[k] = accumulator[k];
    } else {
      for (int64_t k = 0; k < length; ++k) destination[k] = accumulator[k] / divisor;
    }
  }
}

}  // namespace attnlab::distributed
