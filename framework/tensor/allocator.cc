#include "framework/tensor/allocator.h"

#include <sys/resource.h>
#include <sys/sysinfo.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace attnlab {

std::string FormatBytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int unit = 0;
  while (bytes >= 1024 && unit + 1 < static_cast<int>(std::size(units))) {
    bytes /= 1024;
    ++unit;
  }
  return unit == 0 ? absl::StrFormat("%.0f B", bytes)
                   : absl::StrFormat("%.1f %s", bytes, units[unit]);
}

namespace {

// A "Key:   123 kB" field of /proc/meminfo, in bytes.
std::optional<double> MeminfoField(const std::string& meminfo, std::string_view key) {
  std::istringstream lines(meminfo);
  std::string name;
  double kilobytes = 0;
  std::string unit;
  while (lines >> name >> kilobytes >> unit) {
    if (name.size() == key.size() + 1 && name.compare(0, key.size(), key) == 0) {
      return kilobytes * 1024;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<double> AvailableMemoryBytes() {
  std::ifstream meminfo_file("/proc/meminfo");
  std::stringstream meminfo;
  meminfo << meminfo_file.rdbuf();
  const std::optional<double> available = MeminfoField(meminfo.str(), "MemAvailable");
  if (!available) return std::nullopt;
  double bytes = *available + MeminfoField(meminfo.str(), "SwapFree").value_or(0);
  // A container's limit ("max" when there is none) caps what the machine could give.
  std::ifstream limit_file("/sys/fs/cgroup/memory.max"),
      usage_file("/sys/fs/cgroup/memory.current");
  std::string limit_text, usage_text;
  double limit = 0, usage = 0;
  if (limit_file >> limit_text && usage_file >> usage_text &&
      absl::SimpleAtod(limit_text, &limit) && absl::SimpleAtod(usage_text, &usage)) {
    bytes = std::min(bytes, std::max(0.0, limit - usage));
  }
  rlimit address_space{};
  if (getrlimit(RLIMIT_AS, &address_space) == 0 && address_space.rlim_cur != RLIM_INFINITY) {
    bytes = std::min(bytes, static_cast<double>(address_space.rlim_cur));
  }
  return bytes;
}

absl::Status CheckMemoryAvailable(double bytes, const std::string& purpose) {
  const std::optional<double> available = AvailableMemoryBytes();
  if (!available || bytes <= *available) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(purpose, " needs at least ", FormatBytes(bytes),
                                                   "; this machine has ", FormatBytes(*available),
                                                   " available"));
}

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
  // Beyond this SizeClass() would wrap around, and no machine has that much memory.
  constexpr size_t kLargestRequest = std::numeric_limits<size_t>::max() / 4;
  if (bytes > kLargestRequest) {
    throw OutOfMemoryError(absl::StrFormat("out of memory: cannot allocate %s for a tensor",
                                           FormatBytes(static_cast<double>(bytes))));
  }
  const size_t size_class = SizeClass(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  size_t block_class = size_class;
  void* block = TakeCachedLocked(size_class, block_class);
  if (block != nullptr) {
    stats_.cached_bytes -= block_class;
    if (block_class != size_class) borrowed_.emplace(block, block_class);
  } else {
    // More than RAM and swap together can never succeed; asking anyway could get a
    // lazily backed block from an overcommitting kernel (and the OOM killer later), or
    // an abort from a sanitizer's allocator.
    struct sysinfo system {};
    if (sysinfo(&system) == 0 &&
        static_cast<double>(size_class) >
            (static_cast<double>(system.totalram) + static_cast<double>(system.totalswap)) *
                system.mem_unit) {
      throw OutOfMemoryError(absl::StrFormat(
          "out of memory: cannot allocate %s for a tensor (the machine has %s of memory)",
          FormatBytes(static_cast<double>(size_class)),
          FormatBytes(
              (static_cast<double>(system.totalram) + static_cast<double>(system.totalswap)) *
              system.mem_unit)));
    }
    block = std::aligned_alloc(kAlignment, size_class);
    if (block == nullptr) {
      // Cached blocks of other sizes may be what the system is missing.
      EmptyCacheLocked();
      block = std::aligned_alloc(kAlignment, size_class);
    }
    if (block == nullptr) {
      throw OutOfMemoryError(
          absl::StrFormat("out of memory: cannot allocate %s for a tensor (tensors in use: %s)",
                          FormatBytes(static_cast<double>(size_class)),
                          FormatBytes(static_cast<double>(stats_.current_bytes))));
    }
    ++stats_.system_allocations;
  }
  ++stats_.allocations;
  stats_.allocated_bytes += size_class;
  stats_.current_bytes += block_class;
  if (stats_.current_bytes > stats_.peak_bytes) stats_.peak_bytes = stats_.current_bytes;
  return block;
}

void* CachingAllocator::TakeCachedLocked(size_t size_class, size_t& block_class) {
  // (Classes beyond an eighth of the address space never borrow, so that neither the
  // limit nor the next class can wrap around.)
  const bool borrows = borrowing_scopes_ > 0 && size_class >= kMinBorrowBytes &&
                       size_class <= std::numeric_limits<size_t>::max() / 8;
  const size_t largest = borrows ? kMaxBorrowRatio * size_class : size_class;
  for (size_t candidate = size_class; candidate <= largest; candidate = SizeClass(candidate + 1)) {
    auto it = free_blocks_.find(candidate);
    if (it == free_blocks_.end() || it->second.empty()) continue;
    void* block = it->second.back();
    it->second.pop_back();
    block_class = candidate;
    return block;
  }
  return nullptr;
}

void CachingAllocator::Release(void* block, size_t bytes) {
  if (block == nullptr) return;
  size_t size_class = SizeClass(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  if (!borrowed_.empty()) {
    if (auto it = borrowed_.find(block); it != borrowed_.end()) {
      size_class = it->second;
      borrowed_.erase(it);
    }
  }
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
  EmptyCacheLocked();
}

void CachingAllocator::EmptyCacheLocked() {
  for (auto& [size_class, blocks] : free_blocks_) {
    for (void* block : blocks) std::free(block);
  }
  free_blocks_.clear();
  stats_.cached_bytes = 0;
}

CachingAllocator::BorrowingScope::BorrowingScope(CachingAllocator& allocator)
    : allocator_(allocator) {
  std::lock_guard<std::mutex> lock(allocator_.mutex_);
  ++allocator_.borrowing_scopes_;
}

CachingAllocator::BorrowingScope::~BorrowingScope() {
  std::lock_guard<std::mutex> lock(allocator_.mutex_);
  --allocator_.borrowing_scopes_;
}

CachingAllocator::~CachingAllocator() { EmptyCache(); }

}  // namespace attnlab
