// A caching allocator for tensor storage.
//
// Training repeats the same shapes every step, so freed blocks are kept in per-size
// free lists and handed out again: after the first step, a training step asks the
// system allocator for nothing. Blocks are 64-byte aligned (a cache line, and what
// AVX-512 loads like). Sizes are rounded up to a size class (four classes per power of
// two) so that nearby sizes share blocks while wasting at most 25%.
//
// Backward borrows. Inside a BorrowingScope (autograd's RunBackward opens one), a
// request of at least kMinBorrowBytes whose class has no cached block takes a cached
// block of a larger class, up to kMaxBorrowRatio times its own, before asking the system,
// and the block goes back to its own class when released. Backward frees forward's
// activations while it makes the parameters' gradients, whose sizes differ; without
// borrowing, each gradient's block would sit idle in its own class through the next
// forward, when memory peaks (base's [512, 512] weight gradients kept 73 MiB of 1 MiB
// blocks that way; they now use the 4 MiB blocks backward frees). Forward does not
// borrow: what it takes it keeps until backward, so a block it borrowed would be missed
// by its own class for the whole step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"

namespace attnlab {

struct AllocatorStats {
  size_t current_bytes = 0;         // bytes of the blocks live tensors hold (size classes)
  size_t peak_bytes = 0;            // high-water mark of current_bytes
  size_t cached_bytes = 0;          // bytes held in free lists, ready for reuse
  uint64_t system_allocations = 0;  // blocks obtained from the system allocator, ever
  uint64_t allocations = 0;         // Allocate() calls, ever
  uint64_t allocated_bytes = 0;     // bytes asked of Allocate() (size classes), ever
};

// What Allocate() throws when the system has no block of the requested size: a
// std::bad_alloc (so existing handlers still apply) whose what() says how much was asked
// for and how much this process already holds, e.g. "out of memory: cannot allocate
// 4.0 GiB for a tensor (tensors in use: 1.2 GiB, cached: 0.3 GiB)".
class OutOfMemoryError : public std::bad_alloc {
 public:
  explicit OutOfMemoryError(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

// "4.0 GiB", "512 B": sizes in messages.
std::string FormatBytes(double bytes);

// Memory this process can still obtain: MemAvailable plus free swap (/proc/meminfo),
// lowered by a cgroup memory limit or an address-space rlimit; nullopt where unknown.
std::optional<double> AvailableMemoryBytes();
// OK if `bytes` fits in AvailableMemoryBytes() (or that is unknown); otherwise
// ResourceExhausted: "<purpose> needs at least 9.1 GiB; this machine has 3.2 GiB
// available". `bytes` is a double so that estimates of absurd sizes cannot wrap.
absl::Status CheckMemoryAvailable(double bytes, const std::string& purpose);

class CachingAllocator {
 public:
  static constexpr size_t kAlignment = 64;

  // The process-wide allocator used by every Tensor.
  static CachingAllocator& Global();

  // Returns a block of at least `bytes` bytes, 64-byte aligned. `bytes` may be 0. When
  // the system refuses, the cached blocks are given back and the request retried once;
  // then it throws OutOfMemoryError.
  void* Allocate(size_t bytes);
  // Returns a block obtained from Allocate(bytes) to the cache.
  void Release(void* block, size_t bytes);

  AllocatorStats Stats() const;
  // Starts a new peak measurement at the current usage.
  void ResetPeak();
  // Gives every cached block back to the system.
  void EmptyCache();

  // The size class a request of `bytes` is served from, unless it borrows a larger block.
  static size_t SizeClass(size_t bytes);
  static constexpr size_t kMinBorrowBytes = size_t{64} << 10;
  static constexpr size_t kMaxBorrowRatio = 4;

  // While one is alive (on any thread), requests to `allocator` may borrow larger blocks.
  class BorrowingScope {
   public:
    explicit BorrowingScope(CachingAllocator& allocator = Global());
    ~BorrowingScope();
    BorrowingScope(const BorrowingScope&) = delete;
    BorrowingScope& operator=(const BorrowingScope&) = delete;

   private:
    CachingAllocator& allocator_;
  };

  ~CachingAllocator();

 private:
  mutable std::mutex mutex_;
  absl::flat_hash_map<size_t, std::vector<void*>> free_blocks_;
  // Blocks in use by a request of a smaller class, with their own class.
  absl::flat_hash_map<void*, size_t> borrowed_;
  int borrowing_scopes_ = 0;
  // A cached block of class size_class, or of the smallest larger class it may borrow
  // (whose size is then stored in block_class); null when there is none.
  void* TakeCachedLocked(size_t size_class, size_t& block_class);
  void EmptyCacheLocked();

  AllocatorStats stats_;
};

}  // namespace attnlab
