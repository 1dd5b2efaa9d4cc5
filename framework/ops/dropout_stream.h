// Where a dropout mask's random bits come from: one definition for Dropout, the fused
// attention's dropout on its weights, and the tests that check both element by element.
//
// A dropout call on n elements reserves DropoutBlocks(n) = ceil(n / 8) Philox blocks of
// the default generator, from first_block on. Stream element g (local element i plus the
// call's element_offset, which a batch shard sets) reads the 16-bit half g % 2 (the low
// half first) of word (g / 2) % 4 of block first_block + g / 8, and is kept iff that half
// is >= DropoutThreshold(p) = round(65536 p). So the drop probability is p rounded to a
// multiple of 1/65536 (off by at most 7.6e-6) and the mask depends only on (seed,
// first_block, g): the same for any thread count.
//
// Why 16 bits and not a 32-bit word per element: generating Philox words was most of
// dropout's time (7.4 GB/s forward on a Zen 5, 11% of the small model's training step);
// half the words is half that cost, and a 16-bit compare vectorises twice as wide.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "framework/random/philox.h"

namespace attnlab {

static_assert(std::endian::native == std::endian::little,
              "the halves of a Philox word are read low half first");

// The part of the default generator's stream that one dropout call draws from.
struct DropoutStream {
  uint64_t seed = 0;
  uint64_t first_block = 0;     // the first block the call reserved
  uint64_t element_offset = 0;  // stream index of local element 0 (0 without a shard)
};

constexpr int64_t kDropoutElementsPerBlock = 8;  // 4 words of 2 halves
// Elements per PhiloxBlocks call (16 blocks): two 64-element mask words.
constexpr int64_t kDropoutGroup = kDropoutElementsPerBlock * kPhiloxLanes;

// Philox blocks a dropout call on `count` elements reserves.
inline uint64_t DropoutBlocks(int64_t count) {
  return static_cast<uint64_t>((count + kDropoutElementsPerBlock - 1) / kDropoutElementsPerBlock);
}

// Elements whose 16-bit half is below this are dropped: round(65536 p), for p in [0, 1)
// (at most 65535, so p just under 1 still keeps 1 element in 65536).
inline uint16_t DropoutThreshold(float p) {
  return static_cast<uint16_t>(
      std::min<long>(65535, std::lround(static_cast<double>(p) * 65536.0)));
}

// The definition for one element, g counted from first_block's element 0: kept or not.
// Kernels use DropoutHalves; this is for tests and spot checks.
inline bool DropoutKeeps(uint64_t seed, uint64_t first_block, uint64_t g, uint16_t threshold) {
  const uint32_t word = PhiloxBlock(seed, first_block + g / 8)[(g / 2) % 4];
  return static_cast<uint16_t>(word >> (16 * (g % 2))) >= threshold;
}

// The halves of consecutive groups of kDropoutGroup stream elements from element `start`
// (any start, aligned to a group or not): Next() returns the halves of elements [start +
// k * kDropoutGroup, start + (k + 1) * kDropoutGroup) for k = 0, 1, ... Unaligned starts
// slide a window over two generated groups, so every call still costs one PhiloxBlocks
// (plus one for the first) and a 256-byte copy. Halves past the call's reservation are
// generated when the last group is partial; callers use only those of their elements.
class DropoutHalves {
 public:
  DropoutHalves(uint64_t seed, uint64_t first_block, uint64_t start)
      : seed_(seed),
        first_block_(first_block),
        next_group_(start / kDropoutGroup),
        lag_(static_cast<int64_t>(start % kDropoutGroup)) {}

  const uint16_t* Next() {
    if (lag_ == 0) {
      Generate(next_group_++, window_.data());
      return window_.data();
    }
    if (!primed_) {
      Generate(next_group_++, window_.data() + kDropoutGroup);
      primed_ = true;
    }
    std::copy_n(window_.data() + kDropoutGroup, kDropoutGroup, window_.data());
    Generate(next_group_++, window_.data() + kDropoutGroup);
    return window_.data() + lag_;
  }

 private:
  // halves[0, kDropoutGroup) = the halves of stream group `group`, in stream order.
  void Generate(uint64_t group, uint16_t* halves) {
    PhiloxBlocks(seed_, first_block_ + group * kPhiloxLanes, words_);
    std::memcpy(halves, words_.data(), sizeof(words_));
  }

  uint64_t seed_, first_block_, next_group_;
  int64_t lag_;
  bool primed_ = false;
  PhiloxWords words_;
  alignas(64) std::array<uint16_t, 2 * kDropoutGroup> window_;
};
static_assert(sizeof(PhiloxWords) == kDropoutGroup * sizeof(uint16_t));

}  // namespace attnlab
