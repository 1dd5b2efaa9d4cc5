// oneDNN softmax / logsoftmax (v2 API: two primitive families) over the last dim.
#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/backend/dnnl/primitive_cache.h"

namespace attnlab::dnnl_backend {
namespace {

dnnl::memory::desc MatrixDesc(int64_t rows, int64_t cols) {
  return dnnl::memory::desc({rows, cols}, dnnl::memory::data_type::f32,
                            dnnl::memory::format_tag::ab);
}

template <typename Forward>
typename Forward::primitive_desc ForwardDesc(int64_t rows, int64_t cols) {
  const typename Forward::desc desc(dnnl::prop_kind::forward_training, MatrixDesc(rows, cols), 1);
  return typename Forward::primitive_desc(desc, DefaultAttr(), CpuEngine());
}

template <typename Forward>
CachedPrimitive CreateForward(int64_t rows, int64_t cols) {
  CachedPrimitive cached = MakeCachedPrimitive<Forward>(ForwardDesc<Forward>(rows, cols));
  cached.AddArg(DNNL_ARG_SRC, MatrixDesc(rows, cols));
  cached.AddArg(DNNL_ARG_DST, MatrixDesc(rows, cols));
  return cached;
}

template <typename Forward, typename Backward>
CachedPrimitive CreateBackward(int64_t rows, int64_t cols) {
  const typename Backward::desc desc(MatrixDesc(rows, cols), MatrixDesc(rows, cols), 1);
  const typename Backward::primitive_desc pd(desc, DefaultAttr(), CpuEngine(),
                                             ForwardDesc<Forward>(rows, cols));
  CachedPrimitive cached = MakeCachedPrimitive<Backward>(pd);
  cached.AddArg(DNNL_ARG_DST, MatrixDesc(rows, cols));
  cached.AddArg(DNNL_ARG_DIFF_DST, MatrixDesc(rows, cols));
  cached.AddArg(DNNL_ARG_DIFF_SRC, MatrixDesc(rows, cols));
  return cached;
}

}  // namespace

void SoftmaxForward(bool log_softmax, const float* src, float* dst, int64_t rows, int64_t cols) {
  if (rows * cols == 0) return;
  const PrimitiveKey key = {static_cast<int64_t>(PrimitiveKind::kSoftmaxForward), log_softmax, rows,
                            cols};
  CachedPrimitive& primitive = GetOrCreatePrimitive(key, [&] {
    return log_softmax ? CreateForward<dnnl::logsoftmax_forward>(rows, cols)
                       : CreateForward<dnnl::softmax_forward>(rows, cols);
  });
  primitive.Run({{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
}

void SoftmaxBackward(bool log_softmax, const float* dst, const float* diff_dst, float* diff_src,
                     int64_t rows, int64_t cols) {
  if (rows * cols == 0) return;
  const PrimitiveKey key = {static_cast<int64_t>(PrimitiveKind::kSoftmaxBackward), log_softmax,
                            rows, cols};
  CachedPrimitive& primitive = GetOrCreatePrimitive(key, [&] {
    return log_softmax
               ? CreateBackward<dnnl::logsoftmax_forward, dnnl::logsoftmax_backward>(rows, cols)
               : CreateBackward<dnnl::softmax_forward, dnnl::softmax_backward>(rows, cols);
  });
  primitive.Run(
      {{DNNL_ARG_DST, dst}, {DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_SRC, diff_src}});
}

}  // namespace attnlab::dnnl_backend
