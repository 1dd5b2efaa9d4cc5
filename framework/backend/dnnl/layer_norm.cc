// oneDNN layer normalization forward (training: saves mean and variance) and backward
// (prop_kind::backward: gradients for data, scale and shift).
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

void LayerNormBackward(const float* src, const float* scaled_diff_dst, const float* mean,
                       const float* variance, float* diff_src, int64_t rows, int64_t cols,
                       float epsilon) {
  if (rows == 0) return;
  const PrimitiveKey key = {static_cast<int64_t>(PrimitiveKind::kLayerNormBackward), rows, cols,
                            std::bit_cast<int32_t>(epsilon)};
  CachedPrimitive& primitive = GetOrCreatePrimitive(key, [&] {
    // backward_data without scale: the data gradient of a plain normalisation, fed with
    // dy * gamma (which is what the scaled form reduces to). The scale and shift
    // gradients are column sums that oneDNN would split over threads in a
    // thread-count-dependent order; the op computes them itself in a fixed order
    // (framework/ops/layer_norm.cc). oneDNN 2.6 offers backward_data only without flags.
    const dnnl::layer_normalization_backward::desc desc(
        dnnl::prop_kind::backward_data, DataDesc(rows, cols), DataDesc(rows, cols),
        VectorDesc(rows), epsilon, dnnl::normalization_flags::none);
    const dnnl::layer_normalization_backward::primitive_desc pd(desc, DefaultAttr(), CpuEngine(),
                                                                ForwardDesc(rows, cols, epsilon));
    CachedPrimitive cached = MakeCachedPrimitive<dnnl::layer_normalization_backward>(pd);
    cached.AddArg(DNNL_ARG_SRC, DataDesc(rows, cols));
    cached.AddArg(DNNL_ARG_DIFF_DST, DataDesc(rows, cols));
    cached.AddArg(DNNL_ARG_MEAN, VectorDesc(rows));
    cached.AddArg(DNNL_ARG_VARIANCE, VectorDesc(rows));
    cached.AddArg(DNNL_ARG_DIFF_SRC, DataDesc(rows, cols));
    return cached;
  });
  primitive.Run({{DNNL_ARG_SRC, src},
                 {DNNL_ARG_DIFF_DST, scaled_diff_dst},
                 {DNNL_ARG_MEAN, mean},
                 {DNNL_ARG_VARIANCE, variance},
                 {DNNL_ARG_DIFF_SRC, diff_src}});
}

}  // namespace attnlab::dnnl_backend
