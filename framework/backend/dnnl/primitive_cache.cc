#include "framework/backend/dnnl/primitive_cache.h"

#include <omp.h>

#include <atomic>

#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/core/error.h"
#include "framework/profiler/profiler.h"
#include "framework/tensor/allocator.h"

namespace attnlab::dnnl_backend {
namespace {

// Primitives are cached per thread: a CachedPrimitive binds its buffers by setting the
// data handles of its own memory objects, so two threads must never run the same one at
// once. Ops call oneDNN from the main thread, except the bf16 weight gradient, whose
// output tiles run in parallel, one single-threaded primitive per tile (matmul.cc).
using Cache = absl::flat_hash_map<PrimitiveKey, std::unique_ptr<CachedPrimitive>>;

Cache& ThreadCache() {
  thread_local Cache cache;
  return cache;
}

std::atomic<uint64_t> primitives_created{0}, cache_hits{0};

}  // namespace

dnnl::engine& CpuEngine() {
  static dnnl::engine* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

dnnl::stream& CpuStream() {
  thread_local dnnl::stream stream(CpuEngine());  // per thread, as the primitives
  return stream;
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
  Cache& cache = ThreadCache();
  // A oneDNN primitive fixes its thread decomposition when it is created (oneDNN's own
  // cache keys on the thread count too), so one made before SetNumThreads() must not be
  // reused after it: it would keep the old thread count.
  PrimitiveKey full_key = key;
  full_key.push_back(omp_get_max_threads());
  auto it = cache.find(full_key);
  if (it != cache.end()) {
    cache_hits.fetch_add(1, std::memory_order_relaxed);
    return *it->second;
  }
  primitives_created.fetch_add(1, std::memory_order_relaxed);
  auto primitive = std::make_unique<CachedPrimitive>(create());
  CachedPrimitive& result = *primitive;
  cache.emplace(std::move(full_key), std::move(primitive));
  return result;
}

dnnl::primitive_attr DefaultAttr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

BackendStats Stats() {
  BackendStats stats;
  stats.primitives_created = primitives_created.load(std::memory_order_relaxed);
  stats.cache_hits = cache_hits.load(std::memory_order_relaxed);
  return stats;
}

}  // namespace attnlab::dnnl_backend
