// The engine's interface to oneDNN. This header does not include dnnl.hpp: every oneDNN
// include lives in framework/backend/dnnl/*.cc, so that moving from the v2 API (oneDNN
// 2.6, as Debian 12 ships it: op::desc then primitive_desc) to v3 touches this folder only.
//
// Every function takes raw pointers and extents, looks up a ready primitive in the
// primitive cache (keyed by kind, shapes, strides, dtypes and attributes), and runs it.
// Steady-state calls create no primitive and allocate nothing from the system: memory
// objects are cached with the primitive and re-pointed at each call, and scratchpads
// come from the caching allocator. Calls must come from one thread at a time (oneDNN
// parallelises inside each call).
#pragma once

#include <cstdint>
#include <string>

#include "framework/tensor/dtype.h"
#include "framework/tensor/shape.h"

namespace attnlab::dnnl_backend {

struct BackendStats {
  uint64_t primitives_created = 0;
  uint64_t cache_hits = 0;
};
BackendStats Stats();

// A batch of matrices: element (b, r, c) is at data[b*batch_stride + r*row_stride + c*col_stride].
// A transposed operand is the same memory with row and column strides swapped.
struct MatrixOperand {
  const void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t batch = 1, rows = 0, cols = 0;
  int64_t batch_stride = 0, row_stride = 0, col_stride = 1;
};

// c[b] = a[b] @ w[b] (+ bias) for each batch b; `w` with batch 1 is shared by all batches.
// c is contiguous [batch, a.rows, w.cols] f32; bias is [w.cols] f32 or null.
void Matmul(const MatrixOperand& a, const MatrixOperand& w, const float* bias, float* c);

// Packed weights: a weight reused by many products (every decoding step multiplies the
// same projections) can be reordered once into the blocked layout oneDNN's matmul
// prefers. Unpacked, oneDNN re-blocks it inside every call; with few rows (one per
// sentence while decoding) that copy is a large part of the product.
//
// Bytes of a [rows, cols] weight operand packed in `dtype` (f32 or bf16); 0 where oneDNN
// prefers a plain layout, so that packing would gain nothing.
int64_t PackedWeightBytes(DType dtype, int64_t rows, int64_t cols);
// Packs `w` (batch 1, any strides, f32 or bf16) into `packed` (PackedWeightBytes(dtype,
// w.rows, w.cols) bytes), converting it to `dtype`.
void PackWeight(const MatrixOperand& w, DType dtype, void* packed);
// c = a @ w (+ bias) as Matmul computes it, with `w` [a.cols, w_cols] of a.dtype given
// packed by PackWeight. `a` has batch 1.
void MatmulPackedWeight(const MatrixOperand& a, const void* packed_w, int64_t w_cols,
                        const float* bias, float* c);

// Raw single-precision GEMM (dnnl_sgemm), row-major, used as the machine's ceiling.
void Sgemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc);

enum class EltwiseKind { kRelu, kGeluErf, kGeluTanh, kTanh, kLogistic, kExp, kLog, kSqrt, kElu };
// Kinds whose backward is computed from the forward's output instead of its input
// (oneDNN's *_use_dst_for_bwd algorithms), so the op saves the output it returns.
bool EltwiseBackwardUsesOutput(EltwiseKind kind);
void EltwiseForward(EltwiseKind kind, float alpha, const float* src, float* dst, int64_t count);
// `saved` is the forward's output if EltwiseBackwardUsesOutput(kind), its input otherwise.
void EltwiseBackward(EltwiseKind kind, float alpha, const float* saved, const float* diff_dst,
                     float* diff_src, int64_t count);

// Softmax (or log-softmax) over the last dim of a contiguous [rows, cols] matrix.
void SoftmaxForward(bool log_softmax, const float* src, float* dst, int64_t rows, int64_t cols);
void SoftmaxBackward(bool log_softmax, const float* dst, const float* diff_dst, float* diff_src,
                     int64_t rows, int64_t cols);

// Layer normalisation over the last dim of a contiguous [rows, cols] matrix, with
// per-channel scale (gamma) and shift (beta). mean and variance are [rows] outputs.
void LayerNormForward(const float* src, const float* gamma, const float* beta, float* dst,
                      float* mean, float* variance, int64_t rows, int64_t cols, float epsilon);
// (The backward is the op's own single pass: framework/ops/layer_norm.cc.)

// Copies a strided array into another layout of the same extents (oneDNN reorder).
void Reorder(DType dtype, const Shape& dims, const void* src, const Strides& src_strides, void* dst,
             const Strides& dst_strides);
// The same, converting from src_dtype to dst_dtype (f32 -> bf16 rounds to nearest even).
void ConvertingReorder(DType src_dtype, const Shape& dims, const void* src,
                       const Strides& src_strides, DType dst_dtype, void* dst,
                       const Strides& dst_strides);

// Whether this CPU has native bf16 dot-product instructions (AVX512-BF16 or AMX), which
// mixed precision needs to be faster than f32.
bool HasNativeBF16();
// Whether oneDNN runs on AMX tiles here (avx512_core_amx: Sapphire Rapids and later).
bool HasAmx();
// oneDNN's name for the best instruction set it uses on this CPU.
std::string CpuIsaName();

}  // namespace attnlab::dnnl_backend
