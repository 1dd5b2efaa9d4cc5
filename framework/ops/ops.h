// The op API: every differentiable computation on tensors. Each op is implemented, with
// its backward beside it, in the file named in its section (framework/ops/<family>.cc),
// and listed in framework/ops/op_kind.h. Shapes follow PyTorch: activations are
// [batch, time, channels], Linear weights [out, in]. Inputs may be strided views;
// outputs are contiguous. A shape or dtype mismatch throws attnlab::Error naming the op
// and both shapes.
#pragma once

#include <cstdint>
#include <vector>

#include "framework/tensor/tensor.h"

namespace attnlab {

// ---- matmul.cc -------------------------------------------------------------------
// a: [..., M, K] (or [..., K, M] with transpose_a), b: [..., K, N] (or [..., N, K] with
// transpose_b) -> [..., M, N]. Batch dims must match, or b may be 2-D (shared by every
// batch). Transposes are passed to oneDNN as strides, not copies.
Tensor Matmul(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false);
// x: [..., in], weight: [out, in], bias: [out] or undefined -> [..., out]. One oneDNN
// matmul with the bias fused.
Tensor Linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

// ---- elementwise.cc: binary ops with NumPy broadcasting, and scalar forms ----------
Tensor Add(const Tensor& a, const Tensor& b);
Tensor Sub(const Tensor& a, const Tensor& b);
Tensor Mul(const Tensor& a, const Tensor& b);
Tensor Div(const Tensor& a, const Tensor& b);
Tensor AddScalar(const Tensor& a, float value);
Tensor MulScalar(const Tensor& a, float value);
Tensor PowScalar(const Tensor& a, float exponent);
// Not recorded by autograd: accumulates `b` (same shape, or broadcastable to a) into `a`.
void AddInPlace(Tensor& a, const Tensor& b);

// ---- reduce.cc ---------------------------------------------------------------------
// Reductions over the listed dims (negative allowed); keepdim keeps them as size 1.
// An empty `dims` reduces every dim. Summation order is fixed, so results do not
// depend on the thread count.
Tensor Sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor Mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Max along one dim; the gradient goes to the first maximal element.
Tensor Max(const Tensor& x, int64_t dim, bool keepdim = false);
// Index of the first maximum along `dim` (i32, not differentiable).
Tensor Argmax(const Tensor& x, int64_t dim, bool keepdim = false);
// Sums `x` down to `shape` (the reverse of broadcasting); used by backward passes.
Tensor SumToShape(const Tensor& x, const Shape& shape);

// ---- activation.cc (oneDNN eltwise forward and backward) ---------------------------
Tensor Relu(const Tensor& x);
Tensor GeluErf(const Tensor& x);   // x * Phi(x), the exact form
Tensor GeluTanh(const Tensor& x);  // the tanh approximation (Hendrycks & Gimpel 2016)
Tensor Tanh(const Tensor& x);
Tensor Sigmoid(const Tensor& x);
Tensor Exp(const Tensor& x);
Tensor Log(const Tensor& x);
Tensor Sqrt(const Tensor& x);
Tensor Elu(const Tensor& x, float alpha = 1.0f);

// ---- softmax.cc (oneDNN softmax / logsoftmax, last dim) ----------------------------
// `mask`, if defined, is added to x before the softmax and must broadcast to x's shape
// (e.g. [batch, 1, 1, src] for padding, [tgt, src] for causal); masked positions hold
// -inf. A row whose every entry is -inf gives all zeros (and zero gradient), not NaN.
Tensor Softmax(const Tensor& x, const Tensor& mask = Tensor());
Tensor LogSoftmax(const Tensor& x, const Tensor& mask = Tensor());

// ---- layer_norm.cc (oneDNN layer normalization, last dim) --------------------------
// x: [..., C], gamma and beta: [C].
Tensor LayerNorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon = 1e-5f);

// ---- dropout.cc --------------------------------------------------------------------
// Zeroes each element with probability p (rounded to a multiple of 1/65536) and scales
// the rest by 1/(1-p). The mask comes from a counter-based Philox stream, 16 bits per
// element (dropout_stream.h), so it is the same for any thread count; forward keeps it
// as 1 bit per element for backward. Identity when
// !training or p == 0. Under a DropoutBatchShard (dropout_batch_shard.h), x's dim 0 is
// the shard's rows and each element is keyed by its position in the global batch.
Tensor Dropout(const Tensor& x, float p, bool training);
// Fused forms, one pass each way instead of two, bit-identical to the composite with the
// same generator state (they draw the same stream as Dropout on x's shape):
// ReluDropout(x) = Dropout(Relu(x)) (backward keeps 1 bit per element, not ReLU's input);
// AddDropout(residual, x) = residual + Dropout(x), residual shaped like x (no broadcast).
Tensor ReluDropout(const Tensor& x, float p, bool training);
Tensor AddDropout(const Tensor& residual, const Tensor& x, float p, bool training);
// DropoutMatmul(weights, value) = Matmul(Dropout(weights), value) for weights [..., M, K]
// and value [..., K, N] with equal batch dims: attention's weighted sum. Backward keeps
// weights (which Softmax keeps anyway) and the mask bits instead of the dropped weights.
// In a MixedPrecision scope it is the composite (whose product keeps a bf16 copy).
Tensor DropoutMatmul(const Tensor& weights, const Tensor& value, float p, bool training);

// ---- attention.cc (fused; see the file for the algorithm) -------------------------
// softmax(scale * query key^T + mask) value with dropout p on the weights (training
// only), never materialising the weights: query [batch, heads, tgt, dim], key and value
// [batch, heads, src, dim] -> [batch, heads, tgt, dim]. key_padding_mask: f32 [batch,
// src], nonzero at padding, or undefined; causal: query t may see keys s <= t +
// query_offset. Equals Matmul(Dropout(Softmax(scale * q k^T, mask), p), value), dropout
// mask included (under a DropoutBatchShard too: batch is the shard's rows); fully
// masked rows give 0.
Tensor ScaledDotProductAttention(const Tensor& query, const Tensor& key, const Tensor& value,
                                 const Tensor& key_padding_mask, bool causal, int64_t query_offset,
                                 float scale, float dropout, bool training);

// ---- embedding.cc ------------------------------------------------------------------
// weight: [vocab, dim], ids: i32 [...] -> [..., dim]. Ids outside [0, vocab) are an
// error. Rows equal to padding_index (if >= 0) receive no gradient.
Tensor Embedding(const Tensor& weight, const Tensor& ids, int64_t padding_index = -1);

// ---- loss.cc -----------------------------------------------------------------------
// logits: [N, V], targets: i32 [N]. Mean over targets != ignore_index of the
// cross-entropy against (1 - smoothing) * onehot + smoothing / V (as PyTorch's
// label_smoothing). Fused with log-softmax; returns a scalar [].
Tensor CrossEntropy(const Tensor& logits, const Tensor& targets, float label_smoothing = 0.0f,
                    int64_t ignore_index = -100);

// ---- shape.cc ----------------------------------------------------------------------
// Reshape is a view when x is contiguous (one extent may be -1). Narrow is a view.
// Permute copies (oneDNN reorder). Concat joins along `dim`; Split is Narrow in pieces.
Tensor Reshape(const Tensor& x, const Shape& shape);
Tensor Narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
Tensor Contiguous(const Tensor& x);
Tensor Permute(const Tensor& x, const std::vector<int64_t>& dims);
Tensor Transpose(const Tensor& x, int64_t dim0, int64_t dim1);
Tensor Concat(const std::vector<Tensor>& inputs, int64_t dim);
// Copies `source` into `destination` (a tensor or strided view of the same shape and
// dtype) in place, outside the graph: refused for a source that needs a gradient. For
// buffers filled between steps, such as the decoding key/value cache.
void CopyInto(const Tensor& destination, const Tensor& source);
std::vector<Tensor> Split(const Tensor& x, int64_t split_size, int64_t dim);
// Picks entries along `dim` by an i32 index vector: out has index.numel() there.
// (Reorders beams in beam search; backward scatter-adds.)
Tensor IndexSelect(const Tensor& x, int64_t dim, const Tensor& index);
// out[i][j] = x[i][index[i][j]] along dim (PyTorch's gather); index has x's rank.
Tensor Gather(const Tensor& x, int64_t dim, const Tensor& index);

// ---- scan.cc -----------------------------------------------------------------------
// Inclusive prefix sum along `dim` (negative allowed): out[..., i, ...] = sum_{j <= i}
// x[..., j, ...]. Each output is accumulated sequentially along `dim` by one thread, so
// results do not depend on the thread count. Backward is the reverse cumulative sum.
Tensor CumSum(const Tensor& x, int64_t dim);

// ---- rotary.cc ---------------------------------------------------------------------
// Rotary position embedding (Su et al. 2021, RoFormer, eq. 34), fused. x: [..., time,
// head_dim] (normally [batch, heads, time, head_dim]) with head_dim even; row t is at
// absolute position p = t + position_offset. Each channel pair (2i, 2i+1) is rotated by
// the angle p * 10000^(-2i/head_dim):
//   out[2i] = x[2i] cos - x[2i+1] sin,  out[2i+1] = x[2i] sin + x[2i+1] cos.
// Backward rotates the gradient by the negative angle (the transpose of a rotation).
Tensor Rotary(const Tensor& x, int64_t position_offset);

// ---- mse_loss.cc -------------------------------------------------------------------
// Mean of squared differences -> scalar []: mean over every element of
// (prediction - target)^2, as PyTorch's mse_loss(reduction="mean"). prediction, target:
// f32 of the same shape (any rank, no broadcasting); both receive a gradient. Summed in
// double in a fixed order, so the result does not depend on the thread count. An empty
// input gives 0.
Tensor MseLoss(const Tensor& prediction, const Tensor& target);

// ---- Operators, for readable model code ------------------------------------------------
inline Tensor operator+(const Tensor& a, const Tensor& b) { return Add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return Sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return Mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return Div(a, b); }
inline Tensor operator+(const Tensor& a, float b) { return AddScalar(a, b); }
inline Tensor operator-(const Tensor& a, float b) { return AddScalar(a, -b); }
inline Tensor operator*(const Tensor& a, float b) { return MulScalar(a, b); }
inline Tensor operator/(const Tensor& a, float b) { return MulScalar(a, 1.0f / b); }
inline Tensor operator-(const Tensor& a) { return MulScalar(a, -1.0f); }

}  // namespace attnlab
