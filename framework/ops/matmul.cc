// matmul and linear on the oneDNN matmul primitive (and oneDNN sgemm for the
// deterministic weight-gradient products).
//
// Forward and backward are all matmuls; transposed operands are described to oneDNN by
// swapping strides, so no transposing copy is ever made. Inside a MixedPrecision scope
// (mixed_precision.h) the operands are rounded to bf16 copies first, and the backward
// products use those copies and a bf16 copy of the incoming gradient.
#include <algorithm>
#include <cstdint>

#include "framework/autograd/node.h"
#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/ops/frozen_weights.h"
#include "framework/ops/matmul_product.h"
#include "framework/ops/mixed_precision.h"
#include "framework/ops/ops.h"
#include "framework/parallel/chunk_partials.h"
#include "framework/parallel/parallel_for.h"
#include "framework/profiler/profiler.h"

namespace attnlab {

dnnl_backend::MatrixOperand AsOperand(const Tensor& t, bool transpose) {
  dnnl_backend::MatrixOperand m;
  m.data = t.raw_data();
  m.dtype = t.dtype();
  m.rows = t.size(-2);
  m.cols = t.size(-1);
  m.row_stride = t.strides()[t.rank() - 2];
  m.col_stride = t.strides()[t.rank() - 1];
  if (transpose) {
    std::swap(m.rows, m.cols);
    std::swap(m.row_stride, m.col_stride);
  }
  m.batch = 1;
  for (int64_t d = 0; d < t.rank() - 2; ++d) m.batch *= t.shape()[d];
  m.batch_stride = t.rank() > 2 ? t.strides()[t.rank() - 3] : m.rows * m.cols;
  return m;
}

namespace {

// Whether dims [0, rank-2) of t can be merged into one batch dim with a single stride.
bool BatchDimsCollapse(const Tensor& t) {
  for (int64_t d = 0; d < t.rank() - 3; ++d) {
    if (t.strides()[d] != t.strides()[d + 1] * t.shape()[d + 1]) return false;
  }
  return true;
}

// A tensor whose layout oneDNN can take as a (batched) matrix: batch dims mergeable,
// and one of the two matrix strides equal to 1.
Tensor MatrixReady(const Tensor& t) {
  const int64_t rank = t.rank();
  const bool unit_stride = t.strides()[rank - 1] == 1 || t.strides()[rank - 2] == 1;
  return unit_stride && BatchDimsCollapse(t) ? t : Contiguous(t);
}

// TiledTransposedMatmul's product for contiguous bf16 a [K, M] and b [K, N] (or [N, K]).
// There is no public bf16 GEMM to run single-threaded tiles with, and one oneDNN matmul
// would split a long K across threads in a thread-count-dependent order (on AMX CPUs
// oneDNN 2.6 splits even short K: [2, 512, 1024] x [2, 1024, 2048] differed between 1
// and 2 threads). So the output is cut into tiles of a fixed number of rows, which
// ParallelFor hands out, and each tile is one oneDNN matmul made for and run on one
// thread: K is cut into fixed chunks that the matmul gets as its batch (each chunk's
// product has a short K), and the chunk partials are summed in order. Chunks are longer
// when the output is large, which bounds the partials' memory ([chunks, M, N] f32).
// Nothing in this depends on the thread count, and every thread works.
//
// Rows per tile: oneDNN's AMX kernels run faster on taller tiles (base's bf16 step was
// 6% faster with 128 rows than with 64, and 5% faster again with 256), but an output of
// 256 rows in one tile leaves the second thread idle (small's step was 6% slower). So:
// up to 256 rows, and at least two tiles from 128 rows on.
int64_t Bf16TileRows(int64_t rows) { return rows >= 512 ? 256 : rows >= 256 ? 128 : 64; }

Tensor ChunkedTransposedMatmul(const Tensor& a, const Tensor& b, bool transpose_b) {
  const int64_t k = a.size(0), m = a.size(1), n = transpose_b ? b.size(0) : b.size(1);
  const int64_t chunk = m * n <= 256 * 256 ? 256 : 1024;
  const int64_t full_chunks = k / chunk, tail = k % chunk;
  const int64_t chunks = full_chunks + (tail > 0 ? 1 : 0);
  Tensor out = Tensor::Empty({m, n});
  if (chunks == 0) {
    std::fill(out.data<float>(), out.data<float>() + m * n, 0.0f);
    return out;
  }
  // Tile t's partials are [chunks, rows_t, n] at partials + chunks * m0 * n.
  Tensor partials = chunks > 1 ? Tensor::Empty({chunks * m * n}) : Tensor();
  const auto* a_data = static_cast<const uint16_t*>(a.raw_data());
  const auto* b_data = static_cast<const uint16_t*>(b.raw_data());
  // Rows [k0, k0 + depth) of each of `batch` chunks from k0 on, for output rows
  // [m0, m0 + rows), into result ([batch, rows, n]).
  auto product = [&](int64_t m0, int64_t rows, int64_t k0, int64_t depth, int64_t batch,
                     float* result) {
    dnnl_backend::MatrixOperand a_op;  // a[k0.., m0..]^T: [batch, rows, depth]
    a_op.data = a_data + k0 * m + m0;
    a_op.dtype = DType::kBF16;
    a_op.batch = batch;
    a_op.rows = rows;
    a_op.cols = depth;
    a_op.row_stride = 1;
    a_op.col_stride = m;
    a_op.batch_stride = depth * m;
    dnnl_backend::MatrixOperand b_op;  // op(b)[k0.., :]: [batch, depth, N]
    b_op.data = transpose_b ? b_data + k0 : b_data + k0 * n;
    b_op.dtype = DType::kBF16;
    b_op.batch = batch;
    b_op.rows = depth;
    b_op.cols = n;
    b_op.row_stride = transpose_b ? 1 : n;
    b_op.col_stride = transpose_b ? k : 1;
    b_op.batch_stride = transpose_b ? depth : depth * n;
    dnnl_backend::Matmul(a_op, b_op, nullptr, result);
  };
  const int64_t tile_rows = Bf16TileRows(m);
  const int64_t tiles = (m + tile_rows - 1) / tile_rows;
  ParallelFor(tiles, 1, [&](int64_t begin, int64_t end) {
    // oneDNN inside a parallel region runs on the calling thread; the primitive must be
    // made for one thread too (the primitive cache keys on it), also when the whole
    // process has one thread and no region is opened.
    const int saved_threads = NumThreads();
    SetNumThreads(1);
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t m0 = tile * tile_rows, rows = std::min(tile_rows, m - m0);
      float* tile_out = out.data<float>() + m0 * n;
      if (chunks == 1) {
        product(m0, rows, 0, k, 1, tile_out);  // [rows, n] rows of out, contiguous
        continue;
      }
      float* tile_partials = partials.data<float>() + chunks * m0 * n;
      if (full_chunks > 0) product(m0, rows, 0, chunk, full_chunks, tile_partials);
      if (tail > 0) {
        product(m0, rows, full_chunks * chunk, tail, 1, tile_partials + full_chunks * rows * n);
      }
      SumChunkPartials(tile_partials, chunks, rows * n, tile_out);
    }
    SetNumThreads(saved_threads);
  });
  return out;
}

// a^T @ op(b) for 2-D a [K, M] and b [K, N] (or [N, K] with transpose_b): the weight
// gradient's shape, a long reduction over K (tokens) into a small [M, N]. oneDNN splits
// such a K across threads and adds the partial sums in a thread-count-dependent order;
// here the output is cut into fixed tiles, each computed by one single-threaded sgemm
// over the whole K, so the result is bit-identical on any number of threads.
// bf16 operands go to ChunkedTransposedMatmul (above) instead.
Tensor TiledTransposedMatmul(const Tensor& a_in, const Tensor& b_in, bool transpose_b) {
  const Tensor a = Contiguous(a_in), b = Contiguous(b_in);
  const int64_t k = a.size(0), m = a.size(1), n = transpose_b ? b.size(0) : b.size(1);
  ATTNLAB_CHECK((transpose_b ? b.size(1) : b.size(0)) == k,
                "matmul: inner dimensions differ: ", a.Describe(), "^T @ ", b.Describe(),
                transpose_b ? "^T" : "");
  if (a.dtype() == DType::kBF16) return ChunkedTransposedMatmul(a, b, transpose_b);
  Tensor out = Tensor::Empty({m, n});
  // Fixed decompositions: neither may depend on the thread count.
  constexpr int64_t kTile = 256;  // output tiles
  // K chunks, when the output is a single tile. 256 rather than 512: the tiny model's
  // [128, 128] projection gradients over K = 1536 tokens become 6 chunks instead of 3,
  // which 2 threads share evenly (3 left one thread idle for a third of the product);
  // sgemm runs these at the same rate with K = 256 as with 512 (115 GFLOP/s, 1 thread).
  constexpr int64_t kReductionChunk = 256;
  const int64_t row_tiles = (m + kTile - 1) / kTile, column_tiles = (n + kTile - 1) / kTile;
  const float* a_data = a.data<float>();
  const float* b_data = b.data<float>();
  float* out_data = out.data<float>();
  // c[m0.., n0..] (+)= a[k0..k0+depth, m0..]^T @ op(b)[k0.., n0..], on the calling thread:
  // inside ParallelFor's region oneDNN's sgemm runs single-threaded.
  auto tile_product = [&](int64_t m0, int64_t n0, int64_t rows, int64_t columns, int64_t k0,
                          int64_t depth, float* c, int64_t ldc) {
    dnnl_backend::Sgemm(/*transpose_a=*/true, transpose_b, rows, columns, depth, 1.0f,
                        a_data + k0 * m + m0, m,
                        transpose_b ? b_data + n0 * k + k0 : b_data + k0 * n + n0,
                        transpose_b ? k : n, 0.0f, c, ldc);
  };
  const int64_t tiles = row_tiles * column_tiles;
  const int64_t chunks = (k + kReductionChunk - 1) / kReductionChunk;
  if (tiles > 1 || chunks == 1) {
    // One sgemm per output tile over the whole K. A lone tile with a short K is pinned to
    // one thread: outside a parallel region sgemm would split K across threads.
    const int saved_threads = NumThreads();
    if (tiles == 1) SetNumThreads(1);
    ParallelFor(tiles, 1, [&](int64_t begin, int64_t end) {
      for (int64_t tile = begin; tile < end; ++tile) {
        const int64_t m0 = (tile / column_tiles) * kTile, n0 = (tile % column_tiles) * kTile;
        tile_product(m0, n0, std::min(kTile, m - m0), std::min(kTile, n - n0), 0, k,
                     out_data + m0 * n + n0, n);
      }
    });
    if (tiles == 1) SetNumThreads(saved_threads);
    return out;
  }
  // A small output over a long K: partial products of fixed K chunks in parallel, then
  // summed in chunk order. partials: [chunks, m, n]
  Tensor partials = Tensor::Empty({chunks, m, n});
  float* partial_data = partials.data<float>();
  ParallelFor(chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t chunk = begin; chunk < end; ++chunk) {
      const int64_t k0 = chunk * kReductionChunk;
      tile_product(0, 0, m, n, k0, std::min(kReductionChunk, k - k0), partial_data + chunk * m * n,
                   n);
    }
  });
  SumChunkPartials(partial_data, chunks, m * n, out_data);
  return out;
}

// The core: op(a) @ op(b) with equal batch dims or a 2-D b. No autograd.
Tensor MatmulForward(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  if (transpose_a && a.rank() == 2 && b.rank() == 2) {
    return TiledTransposedMatmul(a, b, transpose_b);
  }
  const dnnl_backend::MatrixOperand a_op = AsOperand(a, transpose_a);
  const dnnl_backend::MatrixOperand b_op = AsOperand(b, transpose_b);
  ATTNLAB_CHECK(a_op.cols == b_op.rows, "matmul: inner dimensions differ: ", a.Describe(),
                transpose_a ? "^T" : "", " @ ", b.Describe(), transpose_b ? "^T" : "");
  Shape out_shape(a.shape().begin(), a.shape().end() - 2);
  out_shape.push_back(a_op.rows);
  out_shape.push_back(b_op.cols);
  Tensor out = Tensor::Empty(out_shape);
  dnnl_backend::Matmul(a_op, b_op, nullptr, out.data<float>());
  return out;
}

}  // namespace

Tensor MatmulProduct(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  ATTNLAB_CHECK(a.dtype() == DType::kF32 && b.dtype() == DType::kF32, "matmul: expects f32, got ",
                a.Describe(), " and ", b.Describe());
  return MatmulForward(MatrixReady(a.detach()), MatrixReady(b.detach()), transpose_a, transpose_b);
}

Tensor Matmul(const Tensor& a_in, const Tensor& b_in, bool transpose_a, bool transpose_b) {
  profiler::OpScope profile(OpKind::kMatmul, {&a_in, &b_in});
  ATTNLAB_CHECK(a_in.rank() >= 2 && b_in.rank() >= 2, "matmul: needs rank >= 2, got ",
                a_in.Describe(), " and ", b_in.Describe());
  ATTNLAB_CHECK(a_in.dtype() == DType::kF32 && b_in.dtype() == DType::kF32,
                "matmul: expects f32, got ", a_in.Describe(), " and ", b_in.Describe());
  // A batched a times a 2-D b is one big GEMM over the flattened rows of a.
  if (b_in.rank() == 2 && a_in.rank() > 2 && !transpose_a) {
    Shape out_shape(a_in.shape().begin(), a_in.shape().end() - 1);
    out_shape.push_back(transpose_b ? b_in.size(0) : b_in.size(1));
    const Tensor flat = Matmul(Reshape(a_in, {-1, a_in.size(-1)}), b_in, false, transpose_b);
    return Reshape(flat, out_shape);
  }
  ATTNLAB_CHECK(a_in.rank() == b_in.rank() &&
                    std::equal(a_in.shape().begin(), a_in.shape().end() - 2, b_in.shape().begin()),
                "matmul: batch dimensions must match (or b must be 2-D): ", a_in.Describe(), " @ ",
                b_in.Describe());
  if (profile.active()) {
    // 2 * batch * M * K * N (a multiply and an add per term), where a holds batch * M * K.
    const int64_t columns = transpose_b ? b_in.size(-2) : b_in.size(-1);
    profile.set_flops(2.0 * static_cast<double>(a_in.numel()) * static_cast<double>(columns));
  }
  const DType dtype = MatmulInputDType();
  const Tensor a = dtype == DType::kF32 ? MatrixReady(a_in) : ContiguousAs(a_in, dtype);
  const Tensor b = dtype == DType::kF32 ? MatrixReady(b_in) : ContiguousAs(b_in, dtype);
  Tensor out = MatmulForward(a, b, transpose_a, transpose_b);
  if (autograd::ShouldRecord({&a_in, &b_in})) {
    // C = op(A) op(B):  dA = G op(B)^T (or op(B) G^T when A is transposed),
    //                   dB = op(A)^T G (or G^T op(A) when B is transposed).
    // a and b are the operands as multiplied (bf16 copies in mixed precision); the
    // gradient flows to a_in and b_in, which share their shapes.
    autograd::Record(OpKind::kMatmul, out, {&a_in, &b_in},
                     [a = a.detach(), b = b.detach(), transpose_a, transpose_b, dtype](
                         const Tensor& grad_f32, autograd::GradientSink& sink) {
                       const Tensor grad = ContiguousAs(grad_f32, dtype);
                       if (sink.NeedsGrad(0)) {
                         sink.Add(0, transpose_a ? MatmulForward(b, grad, transpose_b, true)
                                                 : MatmulForward(grad, b, false, !transpose_b));
                       }
                       if (sink.NeedsGrad(1)) {
                         sink.Add(1, transpose_b ? MatmulForward(grad, a, true, transpose_a)
                                                 : MatmulForward(a, grad, !transpose_a, false));
                       }
                     });
  }
  return out;
}

Tensor Linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  profiler::OpScope profile(OpKind::kLinear, {&x, &weight, &bias});
  ATTNLAB_CHECK(weight.rank() == 2 && x.rank() >= 1 && x.size(-1) == weight.size(1),
                "linear: input ", x.Describe(), " does not match weight ", weight.Describe(),
                " ([out, in])");
  ATTNLAB_CHECK(!bias.defined() || (bias.rank() == 1 && bias.size(0) == weight.size(0)),
                "linear: bias ", bias.Describe(), " does not match weight ", weight.Describe());
  ATTNLAB_CHECK(x.dtype() == DType::kF32 && weight.dtype() == DType::kF32,
                "linear: expects f32, got ", x.Describe(), " and ", weight.Describe());
  const int64_t in_features = weight.size(1), out_features = weight.size(0);
  const Tensor x2d = Reshape(x, {-1, in_features});
  if (profile.active()) {
    profile.set_flops(2.0 * static_cast<double>(x2d.size(0)) * static_cast<double>(in_features) *
                      static_cast<double>(out_features));
  }
  // The operands as multiplied: f32 (x2d may be strided) or bf16 copies.
  const DType dtype = MatmulInputDType();
  const Tensor x_op = dtype == DType::kF32 ? x2d : ContiguousAs(x2d, dtype);
  const Tensor b = bias.defined() && !bias.is_contiguous() ? Contiguous(bias) : bias;
  const bool record = autograd::ShouldRecord({&x2d, &weight, &b});
  // Prepared once per FrozenWeights scope (converted, and packed when nothing records).
  const PreparedWeight w_prepared = PrepareLinearWeight(weight, dtype, !record);
  const Tensor& w_op = w_prepared.data;
  Tensor out2d = Tensor::Empty({x2d.size(0), out_features});
  const float* bias_data = b.defined() ? b.data<float>() : nullptr;
  if (w_prepared.packed) {
    dnnl_backend::MatmulPackedWeight(AsOperand(x_op, false), w_op.raw_data(), out_features,
                                     bias_data, out2d.data<float>());
  } else {
    // y = x W^T + b: W [out, in] read as its transpose [in, out] through strides.
    dnnl_backend::Matmul(AsOperand(x_op, false), AsOperand(w_op, true), bias_data,
                         out2d.data<float>());
  }
  if (record) {
    autograd::Record(OpKind::kLinear, out2d, {&x2d, &weight, &b},
                     [x_op = x_op.detach(), w_op = w_op.detach(), dtype](
                         const Tensor& grad_f32, autograd::GradientSink& sink) {
                       // In bf16 the bias gradient comes from the pass that rounds G.
                       Tensor grad, grad_bias;
                       if (dtype == DType::kBF16 && grad_f32.is_contiguous()) {
                         grad = RoundToBf16WithColumnSums(grad_f32,
                                                          sink.NeedsGrad(2) ? &grad_bias : nullptr);
                       } else {
                         grad = ContiguousAs(grad_f32, dtype);
                         if (sink.NeedsGrad(2)) grad_bias = Sum(grad_f32, {0});
                       }
                       if (sink.NeedsGrad(0))
                         sink.Add(0, MatmulForward(grad, w_op, false, false));  // G W
                       if (sink.NeedsGrad(1))
                         sink.Add(1, MatmulForward(grad, x_op, true, false));  // G^T X
                       if (sink.NeedsGrad(2)) sink.Add(2, grad_bias);
                     });
  }
  Shape out_shape(x.shape().begin(), x.shape().end() - 1);
  out_shape.push_back(out_features);
  return Reshape(out2d, out_shape);
}

}  // namespace attnlab
