// A caching allocator for tensor storage.
//
// Training repeats the same shapes every step, so freed blocks are kept in per-size
// free lists and handed out again: after the first step, a training step asks the
// system allocator for nothing. Blocks are 64-byte aligned (a cache line, and what
// AVX-512 loads like). Sizes are rounded up to a size class (four classes per power of
// two) so that nearby sizes share blocks while wasting at most 25%.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace attnlab {

struct AllocatorStats {
  size_t current_bytes = 0;         // bytes in live tensors (rounded to size classes)
  size_t peak_bytes = 0;            // high-water mark of current_bytes
  size_t cached_bytes = 0;          // bytes held in free lists, ready for reuse
  uint64_t system_allocations = 0;  // blocks obtained from the system allocator, ever
  uint64_t allocations = 0;         // Allocate() calls, ever
  uint64_t allocated_bytes = 0;     // bytes handed out by Allocate() (size classes), ever
};

class CachingAllocator {
 public:
  static constexpr size_t kAlignment = 64;

  // The process-wide allocator used by every Tensor.
  static CachingAllocator& Global();

  // Returns a block of at least `bytes` bytes, 64-byte aligned. `bytes` may be 0.
  void* Allocate(size_t bytes);
  // Returns a block obtained from Allocate(bytes) to the cache.
  void Release(void* block, size_t bytes);

  AllocatorStats Stats() const;
  // Starts a new peak measurement at the current usage.
  void ResetPeak();
  // Gives every cached block back to the system.
  void EmptyCache();

  // The size class a request of `bytes` is served from.
  static size_t SizeClass(size_t bytes);

  ~CachingAllocator();

 private:
  mutable std::mutex mutex_;
  absl::flat_hash_map<size_t, std::vector<void*>> free_blocks_;
  AllocatorStats stats_;
};

}  // namespace attnlab
