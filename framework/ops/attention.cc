// Fused scaled-dot-product attention: softmax(scale * Q K^T + mask) with dropout on the
// weights, times V, without materialising the [tgt, src] weight matrix of any head.
//
// Shapes: query [batch, heads, tgt, dim], key and value [batch, heads, src, dim] (any
// strides with a unit last-dim stride, e.g. the permuted views of a head split), the
// output [batch, heads, tgt, dim] contiguous. OpenMP runs over batch x heads; each
// (batch, head) "slab" is worked by one thread, kTileRows query rows at a time, with the
// tile's scores in per-thread scratch of kTileRows x src floats, so the extra memory is
// O(src x dim) per thread and O(tgt) per head: forward keeps only the output and each
// row's log-sum-exp, and backward recomputes the weights from them (FlashAttention, Dao
// et al. 2022, Algorithms 1-2, with a whole row of keys per tile: a row of 1024 scores is
// 4 KB, so no online softmax is needed).
//
// The products are register-blocked micro-kernels on 16-float vectors (GCC vector
// extensions: one AVX-512 register, or two AVX2 ones): scores take 16 keys x kTileRows
// rows of accumulators per pass over dim, weighted sums kTileRows rows x 32 dims per pass
// over the keys. Keys and values are copied per slab into zero-padded scratch (keys
// transposed [dim, src rounded up to 16], rows [src, dim rounded up to 32]), so every
// vector load is whole. Causal tiles stop at the last key any of their rows may see.
//
// Dropout draws exactly what Dropout() on the [batch, heads, tgt, src] weights would: the
// same reservation of Philox blocks, and element e = ((b * heads + h) * tgt + t) * src + s
// kept iff its 16-bit half of the stream passes the threshold (dropout_stream.h), so the
// fused op equals the composite ops mask for mask, and the generator moves on identically.
// Under a DropoutBatchShard, as Dropout: the global tensor's blocks are reserved and e is
// offset by first_row * heads * tgt * src. Backward regenerates each tile's mask.
//
// A slab with one query row and no dropout (a decoding step) reads the keys and values
// in place instead (ForwardSingleQuery).
//
// Used by layers/attention/scaled_dot.cc from 128 keys on (f32, weights not asked for),
// and for one query at any length outside training (decoding with the cache):
// `attnlab bench --attention_sweep` puts it level with the composite ops at 256 keys,
// 6% behind at 128 and 35% behind at 64, with memory flat in length (README, Performance).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "framework/autograd/node.h"
#include "framework/ops/dropout_batch_shard.h"
#include "framework/ops/ops.h"
#include "framework/ops/vector_exp.h"
#include "framework/parallel/parallel_for.h"
#include "framework/profiler/profiler.h"

namespace attnlab {
namespace {

constexpr float kMinusInfinity = -std::numeric_limits<float>::infinity();
constexpr float kInfinity = std::numeric_limits<float>::infinity();

// A [batch, heads, rows, dim] tensor read through its strides (unit stride in dim).
struct HeadRows {
  const float* data;
  int64_t batch_stride, head_stride, row_stride;
  const float* Row(int64_t batch, int64_t head, int64_t row) const {
    return data + batch * batch_stride + head * head_stride + row * row_stride;
  }
};

HeadRows ViewRows(const Tensor& t) {
  return HeadRows{t.data<float>(), t.strides()[0], t.strides()[1], t.strides()[2]};
}

// Everything about one call that forward and backward share.
struct AttentionProblem {
  int64_t batch, heads, tgt, src, dim;
  const float* key_padding;  // [batch, src], nonzero at padding, or null
  bool causal;
  int64_t query_offset;
  float scale;
  // Dropout on the weights: kept iff the half >= threshold (DropoutThreshold(p)), then
  // scaled by keep_scale = 1 / (1 - p). Off when p == 0 or not training.
  bool dropout;
  uint16_t threshold;
  float keep_scale;
  uint64_t seed, first_block;
  uint64_t element_offset;  // stream index of element 0 (0 unless on a batch shard)
};

constexpr int64_t kTileRows = 8;       // query rows per tile
constexpr int64_t kVectorFloats = 16;  // floats per Vector
constexpr int64_t kDimBlock = 32;      // dims per pass of the weighted sums: two Vectors

using Vector = float __attribute__((vector_size(64)));

inline Vector LoadVector(const float* from) {
  Vector v;
  std::memcpy(&v, from, sizeof(v));
  return v;
}
inline void StoreVector(float* to, const Vector& v) { std::memcpy(to, &v, sizeof(v)); }

int64_t RoundUp(int64_t n, int64_t multiple) { return (n + multiple - 1) / multiple * multiple; }

// One thread's scratch, carved from one float buffer (each part starts on 64 bytes).
// Everything is O(src x dim) or O(kTileRows x src): nothing grows with tgt x src.
struct SlabScratch {
  int64_t src_pad = 0, dim_pad = 0;  // src rounded up to 16, dim to 32
  float* key_columns = nullptr;      // [dim, src_pad]: K^T, 0 past src
  float* value_columns = nullptr;    // [dim, src_pad]: V^T (backward)
  float* key_rows = nullptr;         // [src_pad, dim_pad]: K (backward, dQ = dS K)
  float* value_rows = nullptr;       // [src_pad, dim_pad]: V (forward, out = P V)
  float* grad_key = nullptr;         // [src_pad, dim_pad] accumulators (backward)
  float* grad_value = nullptr;       // [src_pad, dim_pad]
  float* weights = nullptr;          // [kTileRows, src_pad]: scores, then weights
  float* weight_grads = nullptr;     // [kTileRows, src_pad]: dP, then dScore (backward)
  float* tile_query = nullptr;       // [kTileRows, dim_pad] (backward)
  float* tile_grad_out = nullptr;    // [kTileRows, dim_pad] (backward)
  float* tile_out = nullptr;         // [kTileRows, dim_pad]: a weighted sum's result
  float* zero_row = nullptr;         // [dim_pad] of 0: the query of a tile row past tgt
  uint8_t* keep = nullptr;           // [kTileRows, src_pad]: the tile's dropout mask
  uint16_t* tile_halves = nullptr;   // [kTileRows * src + kDropoutGroup]: its random halves

  // Carves from `base` (null: only counts); returns the floats used.
  int64_t Carve(const AttentionProblem& problem, float* base) {
    src_pad = RoundUp(std::max<int64_t>(problem.src, 1), kVectorFloats);
    dim_pad = RoundUp(std::max<int64_t>(problem.dim, 1), kDimBlock);
    int64_t used = 0;
    auto take = [&](int64_t floats) {
      float* part = base == nullptr ? nullptr : base + used;
      used += RoundUp(floats, kVectorFloats);
      return part;
    };
    key_columns = take(problem.dim * src_pad);
    value_columns = take(problem.dim * src_pad);
    key_rows = take(src_pad * dim_pad);
    value_rows = take(src_pad * dim_pad);
    grad_key = take(src_pad * dim_pad);
    grad_value = take(src_pad * dim_pad);
    weights = take(kTileRows * src_pad);
    weight_grads = take(kTileRows * src_pad);
    tile_query = take(kTileRows * dim_pad);
    tile_grad_out = take(kTileRows * dim_pad);
    tile_out = take(kTileRows * dim_pad);
    zero_row = take(dim_pad);
    keep = reinterpret_cast<uint8_t*>(take((kTileRows * src_pad + 3) / 4));
    tile_halves =
        reinterpret_cast<uint16_t*>(take((kTileRows * problem.src + kDropoutGroup + 1) / 2));
    if (base != nullptr) std::fill_n(zero_row, dim_pad, 0.0f);
    return used;
  }
};

// columns[d * src_pad + s] = element d of slab row s, 0 for rows <= s < src_pad.
void PadColumns(const HeadRows& view, int64_t batch, int64_t head, int64_t rows, int64_t dim,
                int64_t src_pad, float* columns) {
  for (int64_t d = 0; d < dim; ++d)
    std::fill(columns + d * src_pad + rows, columns + (d + 1) * src_pad, 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = view.Row(batch, head, r);
    for (int64_t d = 0; d < dim; ++d) columns[d * src_pad + r] = row[d];
  }
}

// padded[r * dim_pad + d] = element d of row r of `rows` rows at `row(r)`, 0 for d >= dim
// and for rows <= r < padded_rows.
template <class RowAt>
void PadRows(RowAt row_at, int64_t rows, int64_t dim, int64_t padded_rows, int64_t dim_pad,
             float* padded) {
  for (int64_t r = 0; r < padded_rows; ++r) {
    float* target = padded + r * dim_pad;
    if (r < rows) {
      std::copy_n(row_at(r), dim, target);
      std::fill(target + dim, target + dim_pad, 0.0f);
    } else {
      std::fill_n(target, dim_pad, 0.0f);
    }
  }
}

// scores[r * src_pad + s] = scale * rows[r] . (column s of columns [dim, src_pad]), for
// the kTileRows rows and s < blocks * 16: per block, kTileRows vector accumulators.
void TileScores(const float* const* rows, int64_t dim, float scale, const float* columns,
                int64_t src_pad, int64_t blocks, float* scores) {
  for (int64_t block = 0; block < blocks; ++block) {
    const float* column_block = columns + block * kVectorFloats;
    Vector sums[kTileRows] = {};
    for (int64_t d = 0; d < dim; ++d) {
      const Vector keys = LoadVector(column_block + d * src_pad);
#pragma GCC unroll 8
      for (int64_t r = 0; r < kTileRows; ++r) sums[r] += rows[r][d] * keys;
    }
#pragma GCC unroll 8
    for (int64_t r = 0; r < kTileRows; ++r) {
      StoreVector(scores + r * src_pad + block * kVectorFloats, sums[r] * scale);
    }
  }
}

// out[r * dim_pad + d] = sum over s < keys of weights[r * src_pad + s] * rows[s * dim_pad
// + d], for all dim_pad dims: per 32 dims, kTileRows x 2 vector accumulators.
void TileWeightedSum(const float* weights, int64_t src_pad, int64_t keys, const float* rows,
                     int64_t dim_pad, float* out) {
  for (int64_t d0 = 0; d0 < dim_pad; d0 += kDimBlock) {
    Vector low[kTileRows] = {}, high[kTileRows] = {};
    for (int64_t s = 0; s < keys; ++s) {
      const Vector row_low = LoadVector(rows + s * dim_pad + d0);
      const Vector row_high = LoadVector(rows + s * dim_pad + d0 + kVectorFloats);
#pragma GCC unroll 8
      for (int64_t r = 0; r < kTileRows; ++r) {
        const float weight = weights[r * src_pad + s];
        low[r] += weight * row_low;
        high[r] += weight * row_high;
      }
    }
#pragma GCC unroll 8
    for (int64_t r = 0; r < kTileRows; ++r) {
      StoreVector(out + r * dim_pad + d0, low[r]);
      StoreVector(out + r * dim_pad + d0 + kVectorFloats, high[r]);
    }
  }
}

// target[s * dim_pad + d] += sum over the kTileRows rows r of weights[r * src_pad + s] *
// tile[r * dim_pad + d], for s < keys: the tile's 32 dims of all rows stay in registers
// while the keys go by (two half-sums per key: shorter dependency chains).
void TileScatter(const float* weights, int64_t src_pad, int64_t keys, const float* tile,
                 int64_t dim_pad, float* target) {
  static_assert(kTileRows % 2 == 0);
  constexpr int64_t kHalf = kTileRows / 2;
  for (int64_t d0 = 0; d0 < dim_pad; d0 += kDimBlock) {
    Vector tile_low[kTileRows], tile_high[kTileRows];
#pragma GCC unroll 8
    for (int64_t r = 0; r < kTileRows; ++r) {
      tile_low[r] = LoadVector(tile + r * dim_pad + d0);
      tile_high[r] = LoadVector(tile + r * dim_pad + d0 + kVectorFloats);
    }
    for (int64_t s = 0; s < keys; ++s) {
      Vector first_low = {}, first_high = {}, second_low = {}, second_high = {};
#pragma GCC unroll 8
      for (int64_t r = 0; r < kHalf; ++r) {
        const float first = weights[r * src_pad + s], second = weights[(r + kHalf) * src_pad + s];
        first_low += first * tile_low[r];
        first_high += first * tile_high[r];
        second_low += second * tile_low[r + kHalf];
        second_high += second * tile_high[r + kHalf];
      }
      float* row = target + s * dim_pad + d0;
      StoreVector(row, LoadVector(row) + (first_low + second_low));
      StoreVector(row + kVectorFloats,
                  LoadVector(row + kVectorFloats) + (first_high + second_high));
    }
  }
}

// Keys [0, KeysSeen) are all any of the tile's query rows [t0, t0 + rows) may see.
int64_t KeysSeen(const AttentionProblem& problem, int64_t t0, int64_t rows) {
  if (!problem.causal) return problem.src;
  return std::clamp<int64_t>(t0 + rows + problem.query_offset, 0, problem.src);
}

// Puts -inf on row t's masked scores in [0, keys_pad): padding keys, keys past the causal
// limit, keys past src.
void MaskRow(const AttentionProblem& problem, int64_t batch, int64_t t, int64_t keys_pad,
             float* scores) {
  const int64_t visible = problem.causal
                              ? std::clamp<int64_t>(t + problem.query_offset + 1, 0, problem.src)
                              : problem.src;
  if (problem.key_padding != nullptr) {
    const float* __restrict padding = problem.key_padding + batch * problem.src;
    float* __restrict row = scores;
    for (int64_t s = 0; s < visible; ++s) row[s] = padding[s] != 0.0f ? kMinusInfinity : row[s];
  }
  std::fill(scores + visible, scores + keys_pad, kMinusInfinity);
}

// Softmax of one masked row of scores in place over [0, keys_pad) (a multiple of 16),
// masked keys exactly 0; returns the log-sum-exp, +inf for a fully masked row (all
// weights 0, as Softmax defines it). The max and the sum run on 16 lanes: a float
// reduction in a plain loop stays scalar (GCC may not reorder it).
float SoftmaxRow(int64_t keys_pad, float* row) {
  if (keys_pad == 0) return kInfinity;  // a causal tile before every key
  Vector lane_max = LoadVector(row);
  for (int64_t s = kVectorFloats; s < keys_pad; s += kVectorFloats) {
    const Vector scores = LoadVector(row + s);
    lane_max = scores > lane_max ? scores : lane_max;
  }
  float max_score = kMinusInfinity;
  for (int64_t lane = 0; lane < kVectorFloats; ++lane)
    max_score = std::max(max_score, lane_max[lane]);
  if (max_score == kMinusInfinity) {
    std::fill_n(row, keys_pad, 0.0f);
    return kInfinity;
  }
  for (int64_t s = 0; s < keys_pad; ++s) {
    // exp of every element, then the select: a call under a condition stays scalar.
    const float score = row[s], weight = VectorExp(score - max_score);
    row[s] = score == kMinusInfinity ? 0.0f : weight;
  }
  Vector lane_total = {};
  for (int64_t s = 0; s < keys_pad; s += kVectorFloats) lane_total += LoadVector(row + s);
  float total = 0.0f;
  for (int64_t lane = 0; lane < kVectorFloats; ++lane) total += lane_total[lane];
  const float inverse_total = 1.0f / total;
  for (int64_t s = 0; s < keys_pad; ++s) row[s] *= inverse_total;
  return max_score + std::log(total);
}

// keep[r * src_pad + s] = 1 iff element (slab, t0 + r, s) survives dropout, for r < rows
// and s < src; 0 elsewhere. The tile's rows are one stretch of the stream: its halves are
// gathered into `halves` group by group, then compared row by row.
void TileKeepMask(const AttentionProblem& problem, int64_t slab, int64_t t0, int64_t rows,
                  int64_t src_pad, uint16_t* __restrict halves, uint8_t* __restrict keep) {
  const int64_t src = problem.src, count = rows * src;
  const uint16_t threshold = problem.threshold;
  DropoutHalves stream(
      problem.seed, problem.first_block,
      problem.element_offset + static_cast<uint64_t>((slab * problem.tgt + t0) * src));
  for (int64_t base = 0; base < count; base += kDropoutGroup) {
    std::copy_n(stream.Next(), kDropoutGroup, halves + base);
  }
  std::fill_n(keep, kTileRows * src_pad, 0);
  for (int64_t r = 0; r < rows; ++r) {
    const uint16_t* row_halves = halves + r * src;
    uint8_t* keep_row = keep + r * src_pad;
    for (int64_t s = 0; s < src; ++s) keep_row[s] = row_halves[s] >= threshold;
  }
}

// Forward of one slab: out rows [tgt, dim] and log_sum_exp [tgt] (+inf on fully masked
// rows, whose output is 0, as Softmax defines them).
void ForwardSlab(const AttentionProblem& problem, const HeadRows& query, const HeadRows& key,
                 const HeadRows& value, int64_t slab, const SlabScratch& scratch, float* out,
                 float* log_sum_exp) {
  const int64_t batch = slab / problem.heads, head = slab % problem.heads;
  const int64_t src = problem.src, dim = problem.dim;
  const int64_t src_pad = scratch.src_pad, dim_pad = scratch.dim_pad;
  PadColumns(key, batch, head, src, dim, src_pad, scratch.key_columns);
  PadRows([&](int64_t s) { return value.Row(batch, head, s); }, src, dim, src_pad, dim_pad,
          scratch.value_rows);
  for (int64_t t0 = 0; t0 < problem.tgt; t0 += kTileRows) {
    const int64_t rows = std::min(kTileRows, problem.tgt - t0);
    const int64_t keys = KeysSeen(problem, t0, rows);
    const int64_t keys_pad = RoundUp(keys, kVectorFloats);
    const float* query_rows[kTileRows];
    for (int64_t r = 0; r < kTileRows; ++r) {
      query_rows[r] = r < rows ? query.Row(batch, head, t0 + r) : scratch.zero_row;
    }
    TileScores(query_rows, dim, problem.scale, scratch.key_columns, src_pad,
               keys_pad / kVectorFloats, scratch.weights);
    for (int64_t r = 0; r < rows; ++r) {
      float* row = scratch.weights + r * src_pad;
      MaskRow(problem, batch, t0 + r, keys_pad, row);
      log_sum_exp[t0 + r] = SoftmaxRow(keys_pad, row);
    }
    if (problem.dropout) {
      TileKeepMask(problem, slab, t0, rows, src_pad, scratch.tile_halves, scratch.keep);
      const float keep_scale = problem.keep_scale;  // a local: see BackwardSlab
      for (int64_t r = 0; r < rows; ++r) {
        float* __restrict row = scratch.weights + r * src_pad;
        const uint8_t* __restrict keep_row = scratch.keep + r * src_pad;
        for (int64_t s = 0; s < keys_pad; ++s) {
          row[s] = keep_row[s] != 0 ? row[s] * keep_scale : 0.0f;
        }
      }
    }
    TileWeightedSum(scratch.weights, src_pad, keys, scratch.value_rows, dim_pad, scratch.tile_out);
    for (int64_t r = 0; r < rows; ++r) {
      std::copy_n(scratch.tile_out + r * dim_pad, dim, out + (t0 + r) * dim);
    }
  }
}

// Forward of a slab with one query row and no dropout: a decoding step with the cache.
// The keys and values are read in place, row by row, instead of being copied into padded
// scratch first: for one query that copy would cost more than the products (it reads
// every key and value once more and writes them). scores: [src_pad] of scratch; dot
// products and the weighted sum run on 16-float vectors with a scalar tail.
void ForwardSingleQuery(const AttentionProblem& problem, const HeadRows& query, const HeadRows& key,
                        const HeadRows& value, int64_t slab, float* scores, float* out,
                        float* log_sum_exp) {
  const int64_t batch = slab / problem.heads, head = slab % problem.heads;
  const int64_t dim = problem.dim, vector_end = dim / kVectorFloats * kVectorFloats;
  const int64_t keys = KeysSeen(problem, 0, 1);
  const float* __restrict q = query.Row(batch, head, 0);
  for (int64_t s = 0; s < keys; ++s) {
    const float* __restrict k = key.Row(batch, head, s);
    Vector lanes = {};
    for (int64_t d = 0; d < vector_end; d += kVectorFloats) {
      lanes += LoadVector(q + d) * LoadVector(k + d);
    }
    float dot = 0.0f;
    for (int64_t lane = 0; lane < kVectorFloats; ++lane) dot += lanes[lane];
    for (int64_t d = vector_end; d < dim; ++d) dot += q[d] * k[d];
    scores[s] = dot * problem.scale;
  }
  const int64_t keys_pad = RoundUp(keys, kVectorFloats);
  MaskRow(problem, batch, 0, keys_pad, scores);
  *log_sum_exp = SoftmaxRow(keys_pad, scores);
  std::fill_n(out, dim, 0.0f);
  for (int64_t s = 0; s < keys; ++s) {
    const float weight = scores[s];
    const float* __restrict v = value.Row(batch, head, s);
    float* __restrict o = out;
    for (int64_t d = 0; d < dim; ++d) o[d] += weight * v[d];
  }
}

// Backward of one slab. With P the softmax weights of a row, P~ = P * keep * keep_scale
// the dropped ones and out = P~ V:
//   dV_s += P~_s dOut,  dP_s = keep_s * keep_scale * (dOut . v_s),
//   dScore_s = P_s (dP_s - sum_r P_r dP_r) with sum_r P_r dP_r = dOut . out,
//   dQ = scale * sum_s dScore_s k_s,  dK_s += scale * dScore_s q.
// Tile by tile: P and dP by TileScores, dV and dK by TileScatter, dQ by TileWeightedSum.
void BackwardSlab(const AttentionProblem& problem, const HeadRows& query, const HeadRows& key,
                  const HeadRows& value, int64_t slab, const float* out, const float* log_sum_exp,
                  const float* grad_out, const SlabScratch& scratch, float* grad_query,
                  float* grad_key, float* grad_value) {
  const int64_t batch = slab / problem.heads, head = slab % problem.heads;
  const int64_t src = problem.src, dim = problem.dim;
  const int64_t src_pad = scratch.src_pad, dim_pad = scratch.dim_pad;
  PadColumns(key, batch, head, src, dim, src_pad, scratch.key_columns);
  PadColumns(value, batch, head, src, dim, src_pad, scratch.value_columns);
  PadRows([&](int64_t s) { return key.Row(batch, head, s); }, src, dim, src_pad, dim_pad,
          scratch.key_rows);
  std::fill_n(scratch.grad_key, src_pad * dim_pad, 0.0f);
  std::fill_n(scratch.grad_value, src_pad * dim_pad, 0.0f);
  for (int64_t t0 = 0; t0 < problem.tgt; t0 += kTileRows) {
    const int64_t rows = std::min(kTileRows, problem.tgt - t0);
    const int64_t keys = KeysSeen(problem, t0, rows);
    const int64_t keys_pad = RoundUp(keys, kVectorFloats);
    PadRows([&](int64_t r) { return query.Row(batch, head, t0 + r); }, rows, dim, kTileRows,
            dim_pad, scratch.tile_query);
    PadRows([&](int64_t r) { return grad_out + (t0 + r) * dim; }, rows, dim, kTileRows, dim_pad,
            scratch.tile_grad_out);
    const float* query_rows[kTileRows];
    const float* grad_out_rows[kTileRows];
    for (int64_t r = 0; r < kTileRows; ++r) {
      query_rows[r] = scratch.tile_query + r * dim_pad;
      grad_out_rows[r] = scratch.tile_grad_out + r * dim_pad;
    }
    const int64_t blocks = keys_pad / kVectorFloats;
    TileScores(query_rows, dim, problem.scale, scratch.key_columns, src_pad, blocks,
               scratch.weights);
    TileScores(grad_out_rows, dim, 1.0f, scratch.value_columns, src_pad, blocks,
               scratch.weight_grads);
    if (problem.dropout)
      TileKeepMask(problem, slab, t0, rows, src_pad, scratch.tile_halves, scratch.keep);
    // Locals and restrict pointers: read through `problem`, or with pointers that might
    // alias, the values must be reloaded after every store and GCC leaves the loop scalar.
    const bool dropout = problem.dropout;
    const float keep_scale = problem.keep_scale, scale = problem.scale;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t t = t0 + r;
      float* __restrict weights = scratch.weights + r * src_pad;
      float* __restrict weight_grads = scratch.weight_grads + r * src_pad;
      if (log_sum_exp[t] == kInfinity) {  // fully masked: no gradient
        std::fill_n(weights, keys_pad, 0.0f);
        std::fill_n(weight_grads, keys_pad, 0.0f);
        continue;
      }
      MaskRow(problem, batch, t, keys_pad, weights);
      const float* out_row = out + t * dim;
      const float* grad_out_row = grad_out + t * dim;
      float grad_dot_out = 0.0f;
      for (int64_t d = 0; d < dim; ++d) grad_dot_out += grad_out_row[d] * out_row[d];
      const uint8_t* __restrict keep_row = scratch.keep + r * src_pad;
      const float lse = log_sum_exp[t];
      for (int64_t s = 0; s < keys_pad; ++s) {
        const float score = weights[s], exp_score = VectorExp(score - lse);
        weights[s] = score == kMinusInfinity ? 0.0f : exp_score;  // P
      }
      if (dropout) {
        for (int64_t s = 0; s < keys_pad; ++s) {
          const float weight = weights[s];
          const float dropout_factor = keep_row[s] != 0 ? keep_scale : 0.0f;
          weight_grads[s] = weight * (weight_grads[s] * dropout_factor - grad_dot_out) * scale;
          weights[s] = weight * dropout_factor;
        }
      } else {
        for (int64_t s = 0; s < keys_pad; ++s) {
          weight_grads[s] = weights[s] * (weight_grads[s] - grad_dot_out) * scale;
        }
      }
    }
    // Rows past tgt have zero queries and zero output gradients: their weights and
    // weight gradients are 0 from TileScores, and they add nothing below.
    TileScatter(scratch.weights, src_pad, keys, scratch.tile_grad_out, dim_pad, scratch.grad_value);
    TileScatter(scratch.weight_grads, src_pad, keys, scratch.tile_query, dim_pad, scratch.grad_key);
    TileWeightedSum(scratch.weight_grads, src_pad, keys, scratch.key_rows, dim_pad,
                    scratch.tile_out);
    for (int64_t r = 0; r < rows; ++r) {
      std::copy_n(scratch.tile_out + r * dim_pad, dim, grad_query + (t0 + r) * dim);
    }
  }
  for (int64_t s = 0; s < src; ++s) {
    std::copy_n(scratch.grad_key + s * dim_pad, dim, grad_key + s * dim);
    std::copy_n(scratch.grad_value + s * dim_pad, dim, grad_value + s * dim);
  }
}

// Unit last-dim stride; anything else is copied.
Tensor RowReady(const Tensor& t) { return t.strides()[3] == 1 ? t : Contiguous(t); }

}  // namespace

Tensor ScaledDotProductAttention(const Tensor& query_in, const Tensor& key_in,
                                 const Tensor& value_in, const Tensor& key_padding_mask,
                                 bool causal, int64_t query_offset, float scale, float dropout,
                                 bool training) {
  profiler::OpScope profile(OpKind::kScaledDotProductAttention, {&query_in, &key_in, &value_in});
  ATTNLAB_CHECK(query_in.rank() == 4 && key_in.rank() == 4 && value_in.rank() == 4,
                "scaled_dot_product_attention: expects [batch, heads, time, dim] tensors, got "
                "query ",
                query_in.Describe(), ", key ", key_in.Describe(), ", value ", value_in.Describe());
  ATTNLAB_CHECK(query_in.dtype() == DType::kF32 && key_in.dtype() == DType::kF32 &&
                    value_in.dtype() == DType::kF32,
                "scaled_dot_product_attention: expects f32, got ", query_in.Describe(), ", ",
                key_in.Describe(), ", ", value_in.Describe());
  const int64_t batch = query_in.size(0), heads = query_in.size(1), tgt = query_in.size(2),
                src = key_in.size(2), dim = query_in.size(3);
  ATTNLAB_CHECK(
      key_in.shape() == (Shape{batch, heads, src, dim}) && value_in.shape() == key_in.shape(),
      "scaled_dot_product_attention: query ", query_in.Describe(), ", key ", key_in.Describe(),
      " and value ", value_in.Describe(),
      " must share batch, heads and dim, and key and value their length");
  ATTNLAB_CHECK(dropout >= 0.0f && dropout < 1.0f, "scaled_dot_product_attention: dropout ",
                dropout, " is outside [0, 1)");
  Tensor padding;
  if (key_padding_mask.defined()) {
    ATTNLAB_CHECK(
        key_padding_mask.dtype() == DType::kF32 && key_padding_mask.shape() == (Shape{batch, src}),
        "scaled_dot_product_attention: key padding mask ", key_padding_mask.Describe(),
        " should be f32 [batch, src] = [", batch, ", ", src, "]");
    padding = Contiguous(key_padding_mask.detach());
  }
  const Tensor query = RowReady(query_in), key = RowReady(key_in), value = RowReady(value_in);
  if (profile.active()) {
    // The two products, 2 * tgt * src * dim each per head (causal rows count in full).
    profile.set_flops(4.0 * static_cast<double>(batch * heads * tgt) * static_cast<double>(src) *
                      static_cast<double>(dim));
  }

  AttentionProblem problem{.batch = batch,
                           .heads = heads,
                           .tgt = tgt,
                           .src = src,
                           .dim = dim,
                           .key_padding = nullptr,
                           .causal = causal,
                           .query_offset = query_offset,
                           .scale = scale,
                           .dropout = training && dropout > 0.0f,
                           .threshold = DropoutThreshold(dropout),
                           .keep_scale = 1.0f / (1.0f - dropout),
                           .seed = 0,
                           .first_block = 0,
                           .element_offset = 0};
  if (problem.dropout) {
    const DropoutStream stream =
        ReserveDropoutStream({batch, heads, tgt, src}, "scaled_dot_product_attention");
    problem.seed = stream.seed;
    problem.first_block = stream.first_block;
    problem.element_offset = stream.element_offset;
  }

  Tensor out = Tensor::Empty({batch, heads, tgt, dim});
  Tensor log_sum_exp = Tensor::Empty({batch, heads, tgt});
  const int64_t scratch_floats = SlabScratch().Carve(problem, nullptr);
  Tensor scratch = Tensor::Empty({NumThreads() * scratch_floats});
  {
    AttentionProblem forward = problem;
    forward.key_padding = padding.defined() ? padding.data<float>() : nullptr;
    const HeadRows query_rows = ViewRows(query), key_rows = ViewRows(key),
                   value_rows = ViewRows(value);
    float* out_data = out.data<float>();
    float* lse_data = log_sum_exp.data<float>();
    float* scratch_data = scratch.data<float>();
    ParallelFor(batch * heads, 1, [&](int64_t begin, int64_t end) {
      SlabScratch thread_scratch;
      thread_scratch.Carve(forward, scratch_data + omp_get_thread_num() * scratch_floats);
      for (int64_t slab = begin; slab < end; ++slab) {
        if (tgt == 1 && !forward.dropout) {
          ForwardSingleQuery(forward, query_rows, key_rows, value_rows, slab,
                             thread_scratch.weights, out_data + slab * dim, lse_data + slab);
        } else {
          ForwardSlab(forward, query_rows, key_rows, value_rows, slab, thread_scratch,
                      out_data + slab * tgt * dim, lse_data + slab * tgt);
        }
      }
    });
  }

  if (autograd::ShouldRecord({&query, &key, &value})) {
    autograd::Record(
        OpKind::kScaledDotProductAttention, out, {&query, &key, &value},
        [problem, query = query.detach(), key = key.detach(), value = value.detach(), padding,
         out = out.detach(), log_sum_exp](const Tensor& grad, autograd::GradientSink& sink) {
          AttentionProblem backward = problem;
          backward.key_padding = padding.defined() ? padding.data<float>() : nullptr;
          const Tensor grad_out = Contiguous(grad);
          Tensor grad_query = Tensor::Empty(query.shape());
          Tensor grad_key = Tensor::Empty(key.shape());
          Tensor grad_value = Tensor::Empty(value.shape());
          const int64_t scratch_floats = SlabScratch().Carve(backward, nullptr);
          Tensor scratch = Tensor::Empty({NumThreads() * scratch_floats});
          const HeadRows query_rows = ViewRows(query), key_rows = ViewRows(key),
                         value_rows = ViewRows(value);
          const int64_t tgt = backward.tgt, src = backward.src, dim = backward.dim;
          const float* out_data = out.data<float>();
          const float* lse_data = log_sum_exp.data<float>();
          const float* grad_out_data = grad_out.data<float>();
          float* scratch_data = scratch.data<float>();
          float* grad_query_data = grad_query.data<float>();
          float* grad_key_data = grad_key.data<float>();
          float* grad_value_data = grad_value.data<float>();
          ParallelFor(backward.batch * backward.heads, 1, [&](int64_t begin, int64_t end) {
            SlabScratch thread_scratch;
            thread_scratch.Carve(backward, scratch_data + omp_get_thread_num() * scratch_floats);
            for (int64_t slab = begin; slab < end; ++slab) {
              BackwardSlab(backward, query_rows, key_rows, value_rows, slab,
                           out_data + slab * tgt * dim, lse_data + slab * tgt,
                           grad_out_data + slab * tgt * dim, thread_scratch,
                           grad_query_data + slab * tgt * dim, grad_key_data + slab * src * dim,
                           grad_value_data + slab * src * dim);
            }
          });
          if (sink.NeedsGrad(0)) sink.Add(0, grad_query);
          if (sink.NeedsGrad(1)) sink.Add(1, grad_key);
          if (sink.NeedsGrad(2)) sink.Add(2, grad_value);
        });
  }
  return out;
}

}  // namespace attnlab
