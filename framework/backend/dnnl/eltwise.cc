// oneDNN eltwise forward/backward for the activation ops.
#include <bit>

#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/backend/dnnl/primitive_cache.h"

namespace attnlab::dnnl_backend {
namespace {

dnnl::algorithm ForwardAlgorithm(EltwiseKind kind) {
  using A = dnnl::algorithm;
  switch (kind) {
    case EltwiseKind::kRelu:
      return A::eltwise_relu_use_dst_for_bwd;
    case EltwiseKind::kGeluErf:
      return A::eltwise_gelu_erf;
    case EltwiseKind::kGeluTanh:
      return A::eltwise_gelu_tanh;
    case EltwiseKind::kTanh:
      return A::eltwise_tanh_use_dst_for_bwd;
    case EltwiseKind::kLogistic:
      return A::eltwise_logistic_use_dst_for_bwd;
    case EltwiseKind::kExp:
      return A::eltwise_exp_use_dst_for_bwd;
    case EltwiseKind::kLog:
      return A::eltwise_log;
    case EltwiseKind::kSqrt:
      return A::eltwise_sqrt_use_dst_for_bwd;
    case EltwiseKind::kElu:
      return A::eltwise_elu_use_dst_for_bwd;
  }
  return A::undef;
}

dnnl::memory::desc FlatDesc(int64_t count) {
  return dnnl::memory::desc({count}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::a);
}

dnnl::eltwise_forward::primitive_desc ForwardDesc(EltwiseKind kind, float alpha, int64_t count) {
  const dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_training, ForwardAlgorithm(kind),
                                         FlatDesc(count), alpha, 0.0f);
  return dnnl::eltwise_forward::primitive_desc(desc, DefaultAttr(), CpuEngine());
}

}  // namespace

bool EltwiseBackwardUsesOutput(EltwiseKind kind) {
  return kind != EltwiseKind::kGeluErf && kind != EltwiseKind::kGeluTanh &&
         kind != EltwiseKind::kLog;
}

void EltwiseForward(EltwiseKind kind, float alpha, const float* src, float* dst, int64_t count) {
  if (count == 0) return;
  const PrimitiveKey key = {static_cast<int64_t>(PrimitiveKind::kEltwiseForward),
                            static_cast<int64_t>(kind), count, std::bit_cast<int32_t>(alpha)};
  CachedPrimitive& primitive = GetOrCreatePrimitive(key, [&] {
    CachedPrimitive cached =
        MakeCachedPrimitive<dnnl::eltwise_forward>(ForwardDesc(kind, alpha, count));
    cached.AddArg(DNNL_ARG_SRC, FlatDesc(count));
    cached.AddArg(DNNL_ARG_DST, FlatDesc(count));
    return cached;
  });
  primitive.Run({{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
}

void EltwiseBackward(EltwiseKind kind, float alpha, const float* saved, const float* diff_dst,
                     float* diff_src, int64_t count) {
  if (count == 0) return;
  const PrimitiveKey key = {static_cast<int64_t>(PrimitiveKind::kEltwiseBackward),
                            static_cast<int64_t>(kind), count, std::bit_cast<int32_t>(alpha)};
  const int saved_arg = EltwiseBackwardUsesOutput(kind) ? DNNL_ARG_DST : DNNL_ARG_SRC;
  CachedPrimitive& primitive = GetOrCreatePrimitive(key, [&] {
    const dnnl::eltwise_backward::desc desc(ForwardAlgorithm(kind), FlatDesc(count),
                                            FlatDesc(count), alpha, 0.0f);
    const dnnl::eltwise_backward::primitive_desc pd(desc, DefaultAttr(), CpuEngine(),
                                                    ForwardDesc(kind, alpha, count));
    CachedPrimitive cached = MakeCachedPrimitive<dnnl::eltwise_backward>(pd);
    cached.AddArg(saved_arg, FlatDesc(count));
    cached.AddArg(DNNL_ARG_DIFF_DST, FlatDesc(count));
    cached.AddArg(DNNL_ARG_DIFF_SRC, FlatDesc(count));
    return cached;
  });
  primitive.Run({{saved_arg, saved}, {DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_SRC, diff_src}});
}

}  // namespace attnlab::dnnl_backend
