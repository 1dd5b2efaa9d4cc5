// Rotary position embedding (Su et al. 2021, RoFormer, eq. 34): rotates each pair of
// channels (2i, 2i+1) of a query or key at absolute position p by the angle
// p * 10000^(-2i/d). Applied to per-head queries and keys inside attention, so the
// score q_m . k_n depends on positions only through m - n.
#pragma once

#include <cstdint>

#include "framework/tensor/tensor.h"

namespace attnlab::nn {

// x: [batch, heads, time, head_dim] (head_dim even); row t is at position t + offset.
Tensor ApplyRotaryEmbedding(const Tensor& x, int64_t position_offset);

}  // namespace attnlab::nn
