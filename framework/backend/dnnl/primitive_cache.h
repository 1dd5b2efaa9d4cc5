// Internal to the oneDNN backend: the CPU engine and stream, and the primitive cache.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "framework/tensor/dtype.h"
#include "framework/tensor/shape.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace attnlab::dnnl_backend {

dnnl::engine& CpuEngine();
dnnl::stream& CpuStream();
dnnl::memory::data_type ToDnnl(DType dtype);
dnnl::memory::dims ToDims(const Shape& shape);

// A primitive ready to run: its argument memory objects are created once (with no
// data) and re-pointed at each call, so running it allocates nothing.
struct CachedPrimitive {
  dnnl::primitive primitive;
  std::unordered_map<int, dnnl::memory> args;
  size_t scratchpad_bytes = 0;

  // Adds an argument memory object of descriptor `desc`, initially pointing nowhere.
  void AddArg(int arg, const dnnl::memory::desc& desc);
  // Points the arguments at `pointers` ({DNNL_ARG_*, pointer} pairs), lends a
  // scratchpad from the caching allocator, and runs the primitive to completion.
  void Run(std::initializer_list<std::pair<int, const void*>> pointers);
};

// Key: the op kind first, then every shape, stride, dtype and attribute value that
// distinguishes one primitive from another.
using PrimitiveKey = absl::InlinedVector<int64_t, 32>;

enum class PrimitiveKind : int64_t {
  kMatmul = 1,
  kMatmulPackedWeight,
  kPackWeight,
  kEltwiseForward,
  kEltwiseBackward,
  kSoftmaxForward,
  kSoftmaxBackward,
  kLayerNormForward,
  kReorder,
};

// Returns the cached primitive for `key`, calling `create` the first time.
CachedPrimitive& GetOrCreatePrimitive(const PrimitiveKey& key,
                                      const std::function<CachedPrimitive()>& create);

// Wraps a primitive made from `pd`, with its scratchpad argument if it needs one.
template <typename Primitive, typename PrimitiveDesc>
CachedPrimitive MakeCachedPrimitive(const PrimitiveDesc& pd) {
  CachedPrimitive cached;
  cached.primitive = Primitive(pd);
  const dnnl::memory::desc scratchpad = pd.scratchpad_desc();
  cached.scratchpad_bytes = scratchpad.get_size();
  if (cached.scratchpad_bytes > 0) cached.AddArg(DNNL_ARG_SCRATCHPAD, scratchpad);
  return cached;
}

// Attributes every primitive uses: user-managed scratchpad (so it comes from our
// allocator rather than from oneDNN's own on each call).
dnnl::primitive_attr DefaultAttr();

}  // namespace attnlab::dnnl_backend
