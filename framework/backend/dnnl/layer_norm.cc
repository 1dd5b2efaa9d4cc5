// oneDNN layer normalization forward (training: saves mean and variance). The backward
// is the op's own single pass (framework/ops/layer_norm.cc).
#include <bit>

#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/backend/dnnl/primitive_cache.h"

namespace attnlab::dnnl_backend {
namespace {

using dnnl::memory;

memory::desc DataDesc(int64_t rows, int64_t cols) {
  return memory::desc({rows, cols}, memory::data_type::f32, memory::format_tag::ab);
}
memory::desc VectorDesc(int64_t count) {
  return memory::desc({count}, memory::data_type::f32, memory::format_tag::a);
}

const auto kFlags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;

dnnl::layer_normalization_forward::primitive_desc ForwardDesc(int64_t rows, int64_t cols,
                                                              float epsilon) {
  const dnnl::layer_normalization_forward::desc desc(
      dnnl::prop_kind::forward_training, DataDesc(rows, cols), VectorDesc(rows), epsilon, kFlags);
  return dnnl::layer_normalization_forward::primitive_desc(desc, DefaultAttr(), CpuEngine());
}

}  // namespace

void LayerNormForward(const float* src, const float* gamma, const float* beta, float* dst,
                      float* mean, float* variance, int64_t rows, int64_t cols, float epsilon) {
  if (rows == 0) return;
  const PrimitiveKey key = {static_cast<int64_t>(PrimitiveKind::kLayerNormForward), rows, cols,
                            std::bit_cast<int32_t>(epsilon)};
  CachedPrimitive& primitive = GetOrCreatePrimitive(key, [&] {
    CachedPrimitive cached =
        MakeCachedPrimitive<dnnl::layer_normalization_forward>(ForwardDesc(rows, cols, epsilon));
    cached.AddArg(DNNL_ARG_SRC, DataDesc(rows, cols));
    cached.AddArg(DNNL_ARG_DST, DataDesc(rows, cols));
    cached.AddArg(DNNL_ARG_SCALE, VectorDesc(cols));
    cached.AddArg(DNNL_ARG_SHIFT, VectorDesc(cols));
    cached.AddArg(DNNL_ARG_MEAN, VectorDesc(rows));
    cached.AddArg(DNNL_ARG_VARIANCE, VectorDesc(rows));
    return cached;
  });
  primitive.Run({{DNNL_ARG_SRC, src},
                 {DNNL_ARG_DST, dst},
                 {DNNL_ARG_SCALE, gamma},
                 {DNNL_ARG_SHIFT, beta},
                 {DNNL_ARG_MEAN, mean},
                 {DNNL_ARG_VARIANCE, variance}});
}

}  // namespace attnlab::dnnl_backend
