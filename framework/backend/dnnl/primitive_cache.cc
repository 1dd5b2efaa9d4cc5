#include "framework/backend/dnnl/primitive_cache.h"

#include <omp.h>

#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/core/error.h"
#include "framework/profiler/profiler.h"
#include "framework/tensor/allocator.h"

namespace attnlab::dnnl_backend {
namespace {

struct Cache {
  absl::flat_hash_map<PrimitiveKey, std::unique_ptr<CachedPrimitive>> primitives;
  BackendStats stats;
};

Cache& GlobalCache() {
  static Cache* cache = new Cache();
  return *cache;
}

}  // namespace

dnnl::engine& CpuEngine() {
  static dnnl::engine* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

dnnl::stream& CpuStream() {
  static dnnl::stream* stream = new dnnl::stream(CpuEngine());
  return *stream;
}

dnnl::memory::data_type ToDnnl(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return dnnl::memory::data_type::f32;
    case DType::kI32:
      return dnnl::memory::data_type::s32;
    case DType::kBF16:
      return dnnl::memory::data_type::bf16;
  }
  return dnnl::memory::data_type::undef;
}

dnnl::memory::dims ToDims(const Shape& shape) {
  return dnnl::memory::dims(shape.begin(), shape.end());
}

void CachedPrimitive::AddArg(int arg, const dnnl::memory::desc& desc) {
  args.emplace(arg, dnnl::memory(desc, CpuEngine(), DNNL_MEMORY_NONE));
}

void CachedPrimitive::Run(std::initializer_list<std::pair<int, const void*>> pointers) {
  for (const auto& [arg, pointer] : pointers) {
    auto it = args.find(arg);
    ATTNLAB_CHECK(it != args.end(), "oneDNN backend: primitive has no argument ", arg);
    it->second.set_data_handle(const_cast<void*>(pointer));
  }
  void* scratchpad = nullptr;
  if (scratchpad_bytes > 0) {
    scratchpad = CachingAllocator::Global().Allocate(scratchpad_bytes);
    args.at(DNNL_ARG_SCRATCHPAD).set_data_handle(scratchpad);
  }
  {
    // oneDNN threads inside the primitive: a parallel region the profiler cannot look into.
    profiler::RegionScope region("onednn");
    primitive.execute(CpuStream(), args);
    CpuStream().wait();
  }
  if (scratchpad != nullptr) CachingAllocator::Global().Release(scratchpad, scratchpad_bytes);
}

CachedPrimitive& GetOrCreatePrimitive(const PrimitiveKey& key,
                                      const std::function<CachedPrimitive()>& create) {
  Cache& cache = GlobalCache();
  // A oneDNN primitive fixes its thread decomposition when it is created (oneDNN's own
  // cache keys on the thread count too), so one made before SetNumThreads() must not be
  // reused after it: it would keep the old thread count.
  PrimitiveKey full_key = key;
  full_key.push_back(omp_get_max_threads());
  auto it = cache.primitives.find(full_key);
  if (it != cache.primitives.end()) {
    ++cache.stats.cache_hits;
    return *it->second;
  }
  ++cache.stats.primitives_created;
  auto primitive = std::make_unique<CachedPrimitive>(create());
  CachedPrimitive& result = *primitive;
  cache.primitives.emplace(std::move(full_key), std::move(primitive));
  return result;
}

dnnl::primitive_attr DefaultAttr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

BackendStats Stats() { return GlobalCache().stats; }

}  // namespace attnlab::dnnl_backend
