// Embedding lookup and its scatter-add backward.
//
// Forward copies one weight row per token. Backward adds each token's gradient row into
// a zero [vocab, dim] gradient; threads own disjoint blocks of columns and every thread
// walks all tokens in order, so repeated ids accumulate in the same order on any number
// of threads (no atomics).
#include <algorithm>
#include <cstring>

#include "framework/autograd/node.h"
#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "framework/profiler/profiler.h"

namespace attnlab {
namespace {

constexpr int64_t kLookupGrain = 1 << 14;  // elements copied per chunk (in whole rows)
constexpr int64_t kColumnGrain = 64;       // gradient columns owned by one chunk

// Throws, before any memory is read through them, if an id is outside [0, vocab).
void CheckIds(const int32_t* ids, int64_t count, int64_t vocab) {
  for (int64_t token = 0; token < count; ++token) {
    ATTNLAB_CHECK(ids[token] >= 0 && ids[token] < vocab, "embedding: id ", ids[token],
                  " at position ", token, " is outside [0, ", vocab, ") (vocabulary size ", vocab,
                  ")");
  }
}

// weight: contiguous [vocab, dim], ids: [tokens] -> out: contiguous [tokens, dim].
void LookupRows(const float* weight, const int32_t* ids, float* out, int64_t tokens, int64_t dim) {
  ParallelFor(tokens, std::max<int64_t>(1, kLookupGrain / std::max<int64_t>(dim, 1)),
              [&](int64_t begin, int64_t end) {
                for (int64_t token = begin; token < end; ++token) {
                  std::memcpy(out + token * dim, weight + ids[token] * dim, dim * sizeof(float));
                }
              });
}

// grad_out: contiguous [tokens, dim], ids: [tokens] -> grad_weight: zeroed [vocab, dim],
// grad_weight[ids[t]] += grad_out[t] for every t with ids[t] != padding_index.
void ScatterAddRows(const float* grad_out, const int32_t* ids, float* grad_weight, int64_t tokens,
                    int64_t dim, int64_t padding_index) {
  ParallelFor(dim, kColumnGrain, [&](int64_t column_begin, int64_t column_end) {
    for (int64_t token = 0; token < tokens; ++token) {
      if (ids[token] == padding_index) continue;
      const float* source = grad_out + token * dim;
      float* target = grad_weight + ids[token] * dim;
      for (int64_t column = column_begin; column < column_end; ++column) {
        target[column] += source[column];
      }
    }
  });
}

}  // namespace

Tensor Embedding(const Tensor& weight, const Tensor& ids, int64_t padding_index) {
  profiler::OpScope profile(OpKind::kEmbedding, {&ids});
  ATTNLAB_CHECK(weight.rank() == 2 && weight.dtype() == DType::kF32,
                "embedding: weight must be f32 [vocab, dim], got ", weight.Describe());
  ATTNLAB_CHECK(ids.dtype() == DType::kI32, "embedding: ids must be i32, got ", ids.Describe());
  const int64_t vocab = weight.size(0), dim = weight.size(1);
  ATTNLAB_CHECK(padding_index < vocab, "embedding: padding_index ", padding_index,
                " is outside the vocabulary of ", weight.Describe());
  const Tensor flat_ids = ids.is_contiguous() ? ids.detach() : ids.Clone();
  const int64_t tokens = flat_ids.numel();
  CheckIds(flat_ids.data<int32_t>(), tokens, vocab);

  const Tensor table = weight.is_contiguous() ? weight : weight.Clone();
  Shape out_shape = ids.shape();
  out_shape.push_back(dim);
  Tensor out = Tensor::Empty(out_shape);
  LookupRows(table.data<float>(), flat_ids.data<int32_t>(), out.data<float>(), tokens, dim);

  if (autograd::ShouldRecord({&weight})) {
    // The ids are copied so that a caller refilling its id buffer cannot change them.
    autograd::Record(OpKind::kEmbedding, out, {&weight},
                     [flat_ids = flat_ids.Clone(), vocab, dim, padding_index](
                         const Tensor& grad, autograd::GradientSink& sink) {
                       const Tensor grad_out = grad.is_contiguous() ? grad : grad.Clone();
                       Tensor grad_weight = Tensor::Zeros({vocab, dim});
                       ScatterAddRows(grad_out.data<float>(), flat_ids.data<int32_t>(),
                                      grad_weight.data<float>(), flat_ids.numel(), dim,
                                      padding_index);
                       sink.Add(0, grad_weight);
                     });
  }
  return out;
}

}  // namespace attnlab
