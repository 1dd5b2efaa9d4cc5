// oneDNN matmul (on weights as they are, or packed once: dnnl_backend.h) and sgemm.
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/backend/dnnl/primitive_cache.h"
#include "framework/core/error.h"
#include "framework/profiler/profiler.h"

namespace attnlab::dnnl_backend {
namespace {

// A 3-D [batch, rows, cols] descriptor with explicit strides, so transposed operands
// reach oneDNN as strides rather than copies.
dnnl::memory::desc OperandDesc(const MatrixOperand& m) {
  return dnnl::memory::desc(
      {m.batch, m.rows, m.cols}, ToDnnl(m.dtype),
      {m.batch == 1 ? m.rows * m.cols : m.batch_stride, m.row_stride, m.col_stride});
}

// A matmul primitive c = a @ w (+ bias, when bias_desc is given) on these descriptors.
CachedPrimitive CreateMatmul(const dnnl::memory::desc& a_desc, const dnnl::memory::desc& w_desc,
                             const dnnl::memory::desc& c_desc,
                             const dnnl::memory::desc* bias_desc) {
  const auto desc = bias_desc != nullptr ? dnnl::matmul::desc(a_desc, w_desc, *bias_desc, c_desc)
                                         : dnnl::matmul::desc(a_desc, w_desc, c_desc);
  const dnnl::matmul::primitive_desc pd(desc, DefaultAttr(), CpuEngine());
  CachedPrimitive cached = MakeCachedPrimitive<dnnl::matmul>(pd);
  cached.AddArg(DNNL_ARG_SRC, a_desc);
  cached.AddArg(DNNL_ARG_WEIGHTS, w_desc);
  cached.AddArg(DNNL_ARG_DST, c_desc);
  if (bias_desc != nullptr) cached.AddArg(DNNL_ARG_BIAS, *bias_desc);
  return cached;
}

void RunMatmul(CachedPrimitive& primitive, const void* a, const void* w, const float* bias,
               float* c) {
  if (bias != nullptr) {
    primitive.Run(
        {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, c}, {DNNL_ARG_BIAS, bias}});
  } else {
    primitive.Run({{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, c}});
  }
}

// The rows of the product asked about when choosing the layout. oneDNN 2.6's brgemm
// matmul picks the weights' blocking from their extents and the ISA, not from the rows
// (checked from 1 to 2,048 rows), so a weight packed once serves every row count.
constexpr int64_t kLayoutQueryRows = 32;

bool IsPlain(const dnnl::memory::desc& desc) {
  return desc.data.format_kind == dnnl_blocked && desc.data.format_desc.blocking.inner_nblks == 0;
}

// The packed layout of a [rows, cols] weight in `dtype`; a zero desc where oneDNN
// prefers a plain one. Cached: asking oneDNN means building a primitive descriptor.
// Asked with 2-D descriptors: given a batch dim, even of 1, oneDNN 2.6 keeps the weights
// plain (abc), so the packed products run on 2-D descriptors too.
const dnnl::memory::desc& PackedDesc(DType dtype, int64_t rows, int64_t cols) {
  // Per thread, like the primitive cache.
  thread_local absl::flat_hash_map<std::tuple<DType, int64_t, int64_t>, dnnl::memory::desc> layouts;
  auto [entry, inserted] = layouts.try_emplace(std::make_tuple(dtype, rows, cols));
  if (inserted) {
    const dnnl::memory::desc a_desc({kLayoutQueryRows, rows}, ToDnnl(dtype),
                                    dnnl::memory::format_tag::ab);
    const dnnl::memory::desc w_any({rows, cols}, ToDnnl(dtype), dnnl::memory::format_tag::any);
    const dnnl::memory::desc c_desc({kLayoutQueryRows, cols}, dnnl::memory::data_type::f32,
                                    dnnl::memory::format_tag::ab);
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_desc, w_any, c_desc), DefaultAttr(),
                                          CpuEngine());
    const dnnl::memory::desc chosen = pd.weights_desc();
    entry->second = IsPlain(chosen) ? dnnl::memory::desc() : chosen;
  }
  return entry->second;
}

}  // namespace

void Matmul(const MatrixOperand& a, const MatrixOperand& w, const float* bias, float* c) {
  ATTNLAB_CHECK(a.cols == w.rows, "matmul: inner extents differ (", a.rows, "x", a.cols, " @ ",
                w.rows, "x", w.cols, ")");
  ATTNLAB_CHECK(w.batch == a.batch || w.batch == 1, "matmul: batch ", a.batch, " vs ", w.batch);
  const PrimitiveKey key = {static_cast<int64_t>(PrimitiveKind::kMatmul),
                            a.batch,
                            a.rows,
                            a.cols,
                            a.batch_stride,
                            a.row_stride,
                            a.col_stride,
                            static_cast<int64_t>(a.dtype),
                            w.batch,
                            w.rows,
                            w.cols,
                            w.batch_stride,
                            w.row_stride,
                            w.col_stride,
                            static_cast<int64_t>(w.dtype),
                            bias != nullptr};
  CachedPrimitive& primitive = GetOrCreatePrimitive(key, [&] {
    const dnnl::memory::desc c_desc({a.batch, a.rows, w.cols}, dnnl::memory::data_type::f32,
                                    dnnl::memory::format_tag::abc);
    const dnnl::memory::desc bias_desc({1, 1, w.cols}, dnnl::memory::data_type::f32,
                                       dnnl::memory::format_tag::abc);
    return CreateMatmul(OperandDesc(a), OperandDesc(w), c_desc,
                        bias != nullptr ? &bias_desc : nullptr);
  });
  RunMatmul(primitive, a.data, w.data, bias, c);
}

int64_t PackedWeightBytes(DType dtype, int64_t rows, int64_t cols) {
  ATTNLAB_CHECK(dtype == DType::kF32 || dtype == DType::kBF16, "packed weights: f32 or bf16, got ",
                DTypeName(dtype));
  return static_cast<int64_t>(PackedDesc(dtype, rows, cols).get_size());
}

void PackWeight(const MatrixOperand& w, DType dtype, void* packed) {
  ATTNLAB_CHECK(w.batch == 1, "packed weights: one matrix, got a batch of ", w.batch);
  const dnnl::memory::desc& packed_desc = PackedDesc(dtype, w.rows, w.cols);
  ATTNLAB_CHECK(packed_desc.get_size() > 0, "packed weights: oneDNN keeps a ", w.rows, "x", w.cols,
                " ", DTypeName(dtype), " weight plain; check PackedWeightBytes first");
  const PrimitiveKey key = {static_cast<int64_t>(PrimitiveKind::kPackWeight),
                            static_cast<int64_t>(w.dtype),
                            static_cast<int64_t>(dtype),
                            w.rows,
                            w.cols,
                            w.row_stride,
                            w.col_stride};
  CachedPrimitive& primitive = GetOrCreatePrimitive(key, [&] {
    const dnnl::memory::desc src_desc({w.rows, w.cols}, ToDnnl(w.dtype),
                                      {w.row_stride, w.col_stride});
    const dnnl::reorder::primitive_desc pd(CpuEngine(), src_desc, CpuEngine(), packed_desc,
                                           DefaultAttr());
    CachedPrimitive cached = MakeCachedPrimitive<dnnl::reorder>(pd);
    cached.AddArg(DNNL_ARG_FROM, src_desc);
    cached.AddArg(DNNL_ARG_TO, packed_desc);
    return cached;
  });
  primitive.Run({{DNNL_ARG_FROM, w.data}, {DNNL_ARG_TO, packed}});
}

void MatmulPackedWeight(const MatrixOperand& a, const void* packed_w, int64_t w_cols,
                        const float* bias, float* c) {
  ATTNLAB_CHECK(a.batch == 1, "matmul with packed weights: one matrix, got a batch of ", a.batch);
  if (a.rows == 0) return;  // nothing to write (oneDNN 2.6's brgemm divides by zero rows)
  const PrimitiveKey key = {static_cast<int64_t>(PrimitiveKind::kMatmulPackedWeight),
                            a.rows,
                            a.cols,
                            a.row_stride,
                            a.col_stride,
                            static_cast<int64_t>(a.dtype),
                            w_cols,
                            bias != nullptr};
  CachedPrimitive& primitive = GetOrCreatePrimitive(key, [&] {
    const dnnl::memory::desc& w_desc = PackedDesc(a.dtype, a.cols, w_cols);
    ATTNLAB_CHECK(w_desc.get_size() > 0, "matmul with packed weights: oneDNN keeps a ", a.cols, "x",
                  w_cols, " weight plain");
    const dnnl::memory::desc a_desc({a.rows, a.cols}, ToDnnl(a.dtype),
                                    {a.row_stride, a.col_stride});
    const dnnl::memory::desc c_desc({a.rows, w_cols}, dnnl::memory::data_type::f32,
                                    dnnl::memory::format_tag::ab);
    const dnnl::memory::desc bias_desc({1, w_cols}, dnnl::memory::data_type::f32,
                                       dnnl::memory::format_tag::ab);
    return CreateMatmul(a_desc, w_desc, c_desc, bias != nullptr ? &bias_desc : nullptr);
  });
  RunMatmul(primitive, a.data, packed_w, bias, c);
}

void Sgemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc) {
  // Threaded inside oneDNN when called outside a parallel region.
  profiler::RegionScope region("sgemm");
  const dnnl_status_t status = dnnl_sgemm(transpose_a ? 'T' : 'N', transpose_b ? 'T' : 'N', m, n, k,
                                          alpha, a, lda, b, ldb, beta, c, ldc);
  ATTNLAB_CHECK(status == dnnl_success, "dnnl_sgemm failed with status ", status);
}

}  // namespace attnlab::dnnl_backend
