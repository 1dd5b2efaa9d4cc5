#include "framework/tensor/allocator.h"

#include <bit>
#include <cstdlib>
#include <new>

namespace attnlab {

CachingAllocator& CachingAllocator::Global() {
  // Never destroyed: tensors with static storage duration may outlive main().
  static CachingAllocator* allocator = new CachingAllocator();
  return *allocator;
}

size_t CachingAllocator::SizeClass(size_t bytes) {
  if (bytes == 0) return kAlignment;
  if (bytes <= 1024) return (bytes + kAlignment - 1) / kAlignment * kAlignment;
  // Four classes per power of two: 1, 1.25, 1.5, 1.75 times 2^k.
  const size_t power = std::bit_floor(bytes);
  const size_t step = power / 4;
  return (bytes + step - 1) / step * step;
}

void* CachingAllocator::Allocate(size_t bytes) {
  const size_t size_class = SizeClass(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  ++stats_.allocations;
  stats_.allocated_bytes += size_class;
  stats_.current_bytes += size_class;
  if (stats_.current_bytes > stats_.peak_bytes) stats_.peak_bytes = stats_.current_bytes;
  auto it = free_blocks_.find(size_class);
  if (it != free_blocks_.end() && !it->second.empty()) {
    void* block = it->second.back();
    it->second.pop_back();
    stats_.cached_bytes -= size_class;
    return block;
  }
  ++stats_.system_allocations;
  void* block = std::aligned_alloc(kAlignment, size_class);
  if (block == nullptr) throw std::bad_alloc();
  return block;
}

void CachingAllocator::Release(void* block, size_t bytes) {
  if (block == nullptr) return;
  const size_t size_class = SizeClass(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.current_bytes -= size_class;
  stats_.cached_bytes += size_class;
  free_blocks_[size_class].push_back(block);
}

AllocatorStats CachingAllocator::Stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CachingAllocator::ResetPeak() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_bytes = stats_.current_bytes;
}

void CachingAllocator::EmptyCache() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [size_class, blocks] : free_blocks_) {
    for (void* block : blocks) std::free(block);
  }
  free_blocks_.clear();
  stats_.cached_bytes = 0;
}

CachingAllocator::~CachingAllocator() { EmptyCache(); }

}  // namespace attnlab
