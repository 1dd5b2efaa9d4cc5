// Fused scaled-dot-product attention: softmax(scale * Q K^T + mask) with dropout on the
// weights, times V, without materialising the [tgt, src] weight matrix of any head.
//
// Shapes: query [batch, heads, tgt, dim], key and value [batch, heads, src, dim] (any
// strides with a unit last-dim stride, e.g. the permuted views of a head split), the
// output [batch, heads, tgt, dim] contiguous. OpenMP runs over batch x heads; each
// (batch, head) "slab" is worked by one thread, query row by query row, with the row's
// scores in per-thread scratch of src floats, so the extra memory is O(tgt) per head:
// forward keeps only the output and each row's log-sum-exp, and backward recomputes the
// weights from them (FlashAttention, Dao et al. 2022, Algorithms 1-2, with one query row
// per tile: at the reference lengths (<= 64) a whole row of keys fits in L1).
//
// Dropout draws exactly what Dropout() on the [batch, heads, tgt, src] weights would: the
// same reservation of ceil(numel / 4) Philox blocks, element e = ((b * heads + h) * tgt +
// t) * src + s kept iff UniformFloat(word e % 4 of block first + e / 4) >= p, so the fused
// op equals the composite ops mask for mask, and the generator moves on identically.
// Under a DropoutBatchShard, as Dropout: the global tensor's blocks are reserved and e is
// offset by first_row * heads * tgt * src. Backward regenerates each slab's mask.
//
// Not yet wired into layers/attention/scaled_dot.cc: on the tiny reference model (src =
// tgt = 24, dim 32) the training step took 133 ms of CPU with it against 117 ms with the
// composite ops (attnlab bench --model tiny --threads 1, CPU time per step, loaded
// machine). perf puts the time in the row loops' accumulations through memory (scores[s]
// += ..., grad rows += ...), one load-add-store chain per d or s; a register-blocked
// micro-kernel (16-key tiles held in vector registers) is the next step.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "framework/autograd/node.h"
#include "framework/ops/dropout_batch_shard.h"
#include "framework/ops/ops.h"
#include "framework/ops/vector_exp.h"
#include "framework/parallel/parallel_for.h"
#include "framework/random/philox.h"

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
  // Dropout on the weights; keep_scale = 1 / (1 - p). Off when p == 0 or not training.
  bool dropout;
  float p, keep_scale;
  uint64_t seed, first_block;
  uint64_t element_offset;  // stream index of element 0 (0 unless on a batch shard)

  // Per-thread scratch, in floats: K^T and V^T of a slab [dim, src], three rows [src],
  // and the slab's keep mask [tgt, src] as bytes.
  int64_t ScratchFloats() const { return 2 * dim * src + 3 * src + (tgt * src + 3) / 4 + 16; }
};

// keep[t * src + s] = 1 iff element (slab, t, s) survives dropout. Elements are generated
// in whole groups of 64 (16 Philox blocks, one PhiloxBlocks call) aligned to the stream.
void SlabKeepMask(const AttentionProblem& problem, int64_t slab, uint8_t* keep) {
  const int64_t slab_size = problem.tgt * problem.src;
  // Stream positions [first, last) of the slab's elements.
  const int64_t first = static_cast<int64_t>(problem.element_offset) + slab * slab_size;
  const int64_t last = first + slab_size;
  PhiloxWords words;
  for (int64_t group = first / 64; group * 64 < last; ++group) {
    PhiloxBlocks(problem.seed, problem.first_block + static_cast<uint64_t>(group) * kPhiloxLanes,
                 words);
    const int64_t begin = std::max<int64_t>(group * 64, first);
    const int64_t end = std::min<int64_t>(group * 64 + 64, last);
    for (int64_t element = begin; element < end; ++element) {
      keep[element - first] = UniformFloat(words[element - group * 64]) >= problem.p;
    }
  }
}

// transposed[d * rows + r] = matrix row r, element d: [rows, dim] -> [dim, rows].
void TransposeRows(const HeadRows& view, int64_t batch, int64_t head, int64_t rows, int64_t dim,
                   float* transposed) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = view.Row(batch, head, r);
    for (int64_t d = 0; d < dim; ++d) transposed[d * rows + r] = row[d];
  }
}

// scores[s] = scale * q . k_s for allowed keys, -inf for masked ones; returns the max.
float RowScores(const AttentionProblem& problem, int64_t batch, int64_t t, const float* query_row,
                const float* key_transposed, float* scores) {
  const int64_t src = problem.src;
  std::fill_n(scores, src, 0.0f);
  for (int64_t d = 0; d < problem.dim; ++d) {
    const float q = query_row[d] * problem.scale;
    const float* key_column = key_transposed + d * src;
    for (int64_t s = 0; s < src; ++s) scores[s] += q * key_column[s];
  }
  if (problem.key_padding != nullptr) {
    const float* padding = problem.key_padding + batch * src;
    for (int64_t s = 0; s < src; ++s) scores[s] = padding[s] != 0.0f ? kMinusInfinity : scores[s];
  }
  if (problem.causal) {
    for (int64_t s = std::max<int64_t>(0, t + problem.query_offset + 1); s < src; ++s) {
      scores[s] = kMinusInfinity;
    }
  }
  float max_score = kMinusInfinity;
  for (int64_t s = 0; s < src; ++s) max_score = std::max(max_score, scores[s]);
  return max_score;
}

// Forward of one slab: out rows [tgt, dim] and log_sum_exp [tgt] (+inf on fully masked
// rows, whose output is 0, as Softmax defines them).
void ForwardSlab(const AttentionProblem& problem, const HeadRows& query, const HeadRows& key,
                 const HeadRows& value, int64_t slab, float* scratch, float* out,
                 float* log_sum_exp) {
  const int64_t batch = slab / problem.heads, head = slab % problem.heads;
  const int64_t src = problem.src, dim = problem.dim;
  float* key_transposed = scratch;
  float* weights = scratch + 2 * dim * src;
  auto* keep = reinterpret_cast<uint8_t*>(weights + 3 * src);
  TransposeRows(key, batch, head, src, dim, key_transposed);
  if (problem.dropout) SlabKeepMask(problem, slab, keep);
  for (int64_t t = 0; t < problem.tgt; ++t) {
    float* out_row = out + t * dim;
    const float max_score =
        RowScores(problem, batch, t, query.Row(batch, head, t), key_transposed, weights);
    std::fill_n(out_row, dim, 0.0f);
    if (max_score == kMinusInfinity) {
      log_sum_exp[t] = kInfinity;
      continue;
    }
    float total = 0.0f;
    for (int64_t s = 0; s < src; ++s) {
      weights[s] = VectorExp(weights[s] - max_score);
      total += weights[s];
    }
    log_sum_exp[t] = max_score + std::log(total);
    const float inverse_total = 1.0f / total;
    const uint8_t* keep_row = keep + t * src;
    for (int64_t s = 0; s < src; ++s) {
      const float weight = weights[s] * inverse_total;
      weights[s] =
          !problem.dropout ? weight : (keep_row[s] != 0 ? weight * problem.keep_scale : 0.0f);
    }
    for (int64_t s = 0; s < src; ++s) {
      if (weights[s] == 0.0f) continue;
      const float weight = weights[s];
      const float* value_row = value.Row(batch, head, s);
      for (int64_t d = 0; d < dim; ++d) out_row[d] += weight * value_row[d];
    }
  }
}

// Backward of one slab. With P the softmax weights of a row, P~ = P * keep * keep_scale
// the dropped ones and out = P~ V:
//   dV_s += P~_s dOut,  dP_s = keep_s * keep_scale * (dOut . v_s),
//   dScore_s = P_s (dP_s - sum_r P_r dP_r) with sum_r P_r dP_r = dOut . out,
//   dQ = scale * sum_s dScore_s k_s,  dK_s += scale * dScore_s q.
void BackwardSlab(const AttentionProblem& problem, const HeadRows& query, const HeadRows& key,
                  const HeadRows& value, int64_t slab, const float* out, const float* log_sum_exp,
                  const float* grad_out, float* scratch, float* grad_query, float* grad_key,
                  float* grad_value) {
  const int64_t batch = slab / problem.heads, head = slab % problem.heads;
  const int64_t src = problem.src, dim = problem.dim;
  float* key_transposed = scratch;
  float* value_transposed = scratch + dim * src;
  float* weights = scratch + 2 * dim * src;
  float* weight_grads = weights + src;
  auto* keep = reinterpret_cast<uint8_t*>(weights + 3 * src);
  TransposeRows(key, batch, head, src, dim, key_transposed);
  TransposeRows(value, batch, head, src, dim, value_transposed);
  if (problem.dropout) SlabKeepMask(problem, slab, keep);
  std::fill_n(grad_key, src * dim, 0.0f);
  std::fill_n(grad_value, src * dim, 0.0f);
  for (int64_t t = 0; t < problem.tgt; ++t) {
    float* grad_query_row = grad_query + t * dim;
    std::fill_n(grad_query_row, dim, 0.0f);
    if (log_sum_exp[t] == kInfinity) continue;  // fully masked: no gradient
    const float* query_row = query.Row(batch, head, t);
    RowScores(problem, batch, t, query_row, key_transposed, weights);
    for (int64_t s = 0; s < src; ++s) weights[s] = VectorExp(weights[s] - log_sum_exp[t]);
    const float* grad_out_row = grad_out + t * dim;
    const float* out_row = out + t * dim;
    float grad_dot_out = 0.0f;
    for (int64_t d = 0; d < dim; ++d) grad_dot_out += grad_out_row[d] * out_row[d];
    std::fill_n(weight_grads, src, 0.0f);
    for (int64_t d = 0; d < dim; ++d) {
      const float g = grad_out_row[d];
      const float* value_column = value_transposed + d * src;
      for (int64_t s = 0; s < src; ++s) weight_grads[s] += g * value_column[s];
    }
    const uint8_t* keep_row = keep + t * src;
    for (int64_t s = 0; s < src; ++s) {
      const float dropout_factor =
          !problem.dropout ? 1.0f : (keep_row[s] != 0 ? problem.keep_scale : 0.0f);
      const float weight = weights[s];
      if (weight == 0.0f) {
        weight_grads[s] = 0.0f;
        continue;
      }
      const float dropped_weight = weight * dropout_factor;
      if (dropped_weight != 0.0f) {
        float* grad_value_row = grad_value + s * dim;
        for (int64_t d = 0; d < dim; ++d) grad_value_row[d] += dropped_weight * grad_out_row[d];
      }
      weight_grads[s] = weight * (weight_grads[s] * dropout_factor - grad_dot_out) * problem.scale;
    }
    for (int64_t s = 0; s < src; ++s) {
      const float score_grad = weight_grads[s];
      if (score_grad == 0.0f) continue;
      const float* key_row = key.Row(batch, head, s);
      float* grad_key_row = grad_key + s * dim;
      for (int64_t d = 0; d < dim; ++d) {
        grad_query_row[d] += score_grad * key_row[d];
        grad_key_row[d] += score_grad * query_row[d];
      }
    }
  }
}

// Unit last-dim stride; anything else is copied.
Tensor RowReady(const Tensor& t) { return t.strides()[3] == 1 ? t : Contiguous(t); }

}  // namespace

Tensor ScaledDotProductAttention(const Tensor& query_in, const Tensor& key_in,
                                 const Tensor& value_in, const Tensor& key_padding_mask,
                                 bool causal, int64_t query_offset, float scale, float dropout,
                                 bool training) {
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
                           .p = dropout,
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
  Tensor scratch = Tensor::Empty({NumThreads() * problem.ScratchFloats()});
  {
    AttentionProblem forward = problem;
    forward.key_padding = padding.defined() ? padding.data<float>() : nullptr;
    const HeadRows query_rows = ViewRows(query), key_rows = ViewRows(key),
                   value_rows = ViewRows(value);
    float* out_data = out.data<float>();
    float* lse_data = log_sum_exp.data<float>();
    float* scratch_data = scratch.data<float>();
    ParallelFor(batch * heads, 1, [&](int64_t begin, int64_t end) {
      float* thread_scratch = scratch_data + omp_get_thread_num() * forward.ScratchFloats();
      for (int64_t slab = begin; slab < end; ++slab) {
        ForwardSlab(forward, query_rows, key_rows, value_rows, slab, thread_scratch,
                    out_data + slab * tgt * dim, lse_data + slab * tgt);
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
          Tensor scratch = Tensor::Empty({NumThreads() * backward.ScratchFloats()});
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
            float* thread_scratch = scratch_data + omp_get_thread_num() * backward.ScratchFloats();
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
