// oneDNN matmul and sgemm.
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
    const dnnl::memory::desc a_desc = OperandDesc(a);
    const dnnl::memory::desc w_desc = OperandDesc(w);
    const dnnl::memory::desc c_desc({a.batch, a.rows, w.cols}, dnnl::memory::data_type::f32,
                                    dnnl::memory::format_tag::abc);
    const dnnl::memory::desc bias_desc({1, 1, w.cols}, dnnl::memory::data_type::f32,
                                       dnnl::memory::format_tag::abc);
    const auto desc = bias != nullptr ? dnnl::matmul::desc(a_desc, w_desc, bias_desc, c_desc)
                                      : dnnl::matmul::desc(a_desc, w_desc, c_desc);
    const dnnl::matmul::primitive_desc pd(desc, DefaultAttr(), CpuEngine());
    CachedPrimitive cached = MakeCachedPrimitive<dnnl::matmul>(pd);
    cached.AddArg(DNNL_ARG_SRC, a_desc);
    cached.AddArg(DNNL_ARG_WEIGHTS, w_desc);
    cached.AddArg(DNNL_ARG_DST, c_desc);
    if (bias != nullptr) cached.AddArg(DNNL_ARG_BIAS, bias_desc);
    return cached;
  });
  if (bias != nullptr) {
    primitive.Run({{DNNL_ARG_SRC, a.data},
                   {DNNL_ARG_WEIGHTS, w.data},
                   {DNNL_ARG_DST, c},
                   {DNNL_ARG_BIAS, bias}});
  } else {
    primitive.Run({{DNNL_ARG_SRC, a.data}, {DNNL_ARG_WEIGHTS, w.data}, {DNNL_ARG_DST, c}});
  }
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
