// oneDNN reorder: copies between two strided layouts of the same extents (permute,
// contiguous()), converting the element type on the way if asked (f32 -> bf16 for mixed
// precision, rounding to nearest even).
#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/backend/dnnl/primitive_cache.h"

namespace attnlab::dnnl_backend {

void Reorder(DType dtype, const Shape& dims, const void* src, const Strides& src_strides, void* dst,
             const Strides& dst_strides) {
  ConvertingReorder(dtype, dims, src, src_strides, dtype, dst, dst_strides);
}

void ConvertingReorder(DType src_dtype, const Shape& dims, const void* src,
                       const Strides& src_strides, DType dst_dtype, void* dst,
                       const Strides& dst_strides) {
  if (NumElements(dims) == 0) return;
  if (dims.empty()) {  // a scalar: oneDNN needs at least one dim
    ConvertingReorder(src_dtype, Shape{1}, src, Strides{1}, dst_dtype, dst, Strides{1});
    return;
  }
  PrimitiveKey key = {static_cast<int64_t>(PrimitiveKind::kReorder),
                      static_cast<int64_t>(src_dtype), static_cast<int64_t>(dst_dtype),
                      static_cast<int64_t>(dims.size())};
  key.insert(key.end(), dims.begin(), dims.end());
  key.insert(key.end(), src_strides.begin(), src_strides.end());
  key.insert(key.end(), dst_strides.begin(), dst_strides.end());
  CachedPrimitive& primitive = GetOrCreatePrimitive(key, [&] {
    const dnnl::memory::desc src_desc(ToDims(dims), ToDnnl(src_dtype), ToDims(src_strides));
    const dnnl::memory::desc dst_desc(ToDims(dims), ToDnnl(dst_dtype), ToDims(dst_strides));
    const dnnl::reorder::primitive_desc pd(CpuEngine(), src_desc, CpuEngine(), dst_desc,
                                           DefaultAttr());
    CachedPrimitive cached = MakeCachedPrimitive<dnnl::reorder>(pd);
    cached.AddArg(DNNL_ARG_FROM, src_desc);
    cached.AddArg(DNNL_ARG_TO, dst_desc);
    return cached;
  });
  primitive.Run({{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}});
}

}  // namespace attnlab::dnnl_backend
