// Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel Random Numbers:
// As Easy as 1, 2, 3", SC 2011). The i-th random word of a stream depends only on
// (key, counter = i), never on which thread asks or in what order, so dropout masks and
// initialisations are identical for every thread count.
#pragma once

#include <array>
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace attnlab {

using PhiloxCounter = std::array<uint32_t, 4>;
using PhiloxKey = std::array<uint32_t, 2>;

// Philox4x32's round multipliers and key increments (Weyl constants).
constexpr uint32_t kPhiloxMultiplier0 = 0xD2511F53u, kPhiloxMultiplier1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxWeyl0 = 0x9E3779B9u, kPhiloxWeyl1 = 0xBB67AE85u;

inline PhiloxCounter Philox4x32(PhiloxCounter counter, PhiloxKey key) {
  for (int round = 0; round < 10; ++round) {
    const uint64_t product0 = static_cast<uint64_t>(kPhiloxMultiplier0) * counter[0];
    const uint64_t product1 = static_cast<uint64_t>(kPhiloxMultiplier1) * counter[2];
    counter = {static_cast<uint32_t>(product1 >> 32) ^ counter[1] ^ key[0],
               static_cast<uint32_t>(product1),
               static_cast<uint32_t>(product0 >> 32) ^ counter[3] ^ key[1],
               static_cast<uint32_t>(product0)};
    key[0] += kPhiloxWeyl0;
    key[1] += kPhiloxWeyl1;
  }
  return counter;
}

// Four random words for position `index` of the stream (seed, offset): block index/4.
inline PhiloxCounter PhiloxBlock(uint64_t seed, uint64_t block) {
  return Philox4x32({static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0u, 0u},
                    {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
}

// The words of kPhiloxLanes consecutive blocks first_block, first_block + 1, ... in
// stream order: words[4 * lane + w] is word w of block first_block + lane, i.e.
// PhiloxBlock(seed, first_block + lane)[w], bit for bit. Dropout spends most of its time
// here, so there are two bodies, both tested against PhiloxBlock:
//   * PhiloxBlocksAvx512, with AVX-512: one lane per block in 16-lane registers, each
//     32 x 32 -> 64-bit product as two vpmuludq (even and odd lanes) and blends;
//   * PhiloxBlocksPortable otherwise: the rounds lane-wise on arrays of 32-bit lanes,
//     which GCC vectorises for any target, but with AVX-512 it picks the slow 64-bit
//     vpmullq and shuffles (1.5x slower than the intrinsics on an Intel family 6
//     model 167).
constexpr int kPhiloxLanes = 16;
using PhiloxWords = std::array<uint32_t, 4 * kPhiloxLanes>;

inline void PhiloxBlocksPortable(uint64_t seed, uint64_t first_block, PhiloxWords& words) {
  alignas(64) uint32_t c0[kPhiloxLanes], c1[kPhiloxLanes], c2[kPhiloxLanes], c3[kPhiloxLanes];
  for (int lane = 0; lane < kPhiloxLanes; ++lane) {
    const uint64_t block = first_block + static_cast<uint64_t>(lane);
    c0[lane] = static_cast<uint32_t>(block);
    c1[lane] = static_cast<uint32_t>(block >> 32);
    c2[lane] = 0;
    c3[lane] = 0;
  }
  uint32_t key0 = static_cast<uint32_t>(seed), key1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    // Kept as a loop: fully unrolled, GCC 12 no longer vectorises it.
#pragma GCC unroll 1
    for (int lane = 0; lane < kPhiloxLanes; ++lane) {
      const uint64_t product0 = static_cast<uint64_t>(kPhiloxMultiplier0) * c0[lane];
      const uint64_t product1 = static_cast<uint64_t>(kPhiloxMultiplier1) * c2[lane];
      const uint32_t next0 = static_cast<uint32_t>(product1 >> 32) ^ c1[lane] ^ key0;
      const uint32_t next2 = static_cast<uint32_t>(product0 >> 32) ^ c3[lane] ^ key1;
      c1[lane] = static_cast<uint32_t>(product1);
      c3[lane] = static_cast<uint32_t>(product0);
      c0[lane] = next0;
      c2[lane] = next2;
    }
    key0 += kPhiloxWeyl0;
    key1 += kPhiloxWeyl1;
  }
  for (int lane = 0; lane < kPhiloxLanes; ++lane) {
    words[4 * lane + 0] = c0[lane];
    words[4 * lane + 1] = c1[lane];
    words[4 * lane + 2] = c2[lane];
    words[4 * lane + 3] = c3[lane];
  }
}

#if defined(__AVX512F__)
namespace philox_avx512 {

using U64x8 = uint64_t __attribute__((vector_size(64)));

// The high and low 32 bits of multiplier * x in every 32-bit lane of x. Shifts are
// written as vector operations and the multiply in its zero-masking form: the plain
// intrinsics pass an undefined vector through, which GCC 12 reports as "may be used
// uninitialized" (GCC bug 105593) in every caller.
inline void MultiplyHighLow(__m512i x, __m512i multiplier, __m512i& high, __m512i& low) {
  constexpr __mmask8 kAll = 0xFF;
  constexpr __mmask16 kOddLanes = 0xAAAA;
  const auto shift_down = [](__m512i v) { return (__m512i)((U64x8)v >> 32); };
  const auto shift_up = [](__m512i v) { return (__m512i)((U64x8)v << 32); };
  const __m512i even = _mm512_maskz_mul_epu32(kAll, x, multiplier);  // lanes 0, 2, ... as 64 bits
  const __m512i odd = _mm512_maskz_mul_epu32(kAll, shift_down(x), multiplier);  // 1, 3, ...
  high = _mm512_mask_blend_epi32(kOddLanes, shift_down(even), odd);
  low = _mm512_mask_blend_epi32(kOddLanes, even, shift_up(odd));
}

}  // namespace philox_avx512

inline void PhiloxBlocksAvx512(uint64_t seed, uint64_t first_block, PhiloxWords& words) {
  using philox_avx512::MultiplyHighLow;
  const __m512i multiplier0 = _mm512_set1_epi64(kPhiloxMultiplier0);
  const __m512i multiplier1 = _mm512_set1_epi64(kPhiloxMultiplier1);
  // Counter words 0 and 1 are the low and high halves of first_block + lane.
  const __m512i lanes = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
  const __m512i blocks_low = _mm512_add_epi64(_mm512_set1_epi64(first_block), lanes);
  const __m512i blocks_high = _mm512_add_epi64(_mm512_set1_epi64(first_block + 8), lanes);
  // [b0 b1 ... b15] as 64-bit values -> c0 = their low halves, c1 = their high halves.
  const __m512i even_words =
      _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd_words =
      _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  __m512i c0 = _mm512_permutex2var_epi32(blocks_low, even_words, blocks_high);
  __m512i c1 = _mm512_permutex2var_epi32(blocks_low, odd_words, blocks_high);
  __m512i c2 = _mm512_setzero_si512(), c3 = _mm512_setzero_si512();
  uint32_t key0 = static_cast<uint32_t>(seed), key1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    __m512i high0, low0, high1, low1;
    MultiplyHighLow(c0, multiplier0, high0, low0);
    MultiplyHighLow(c2, multiplier1, high1, low1);
    c0 = _mm512_xor_si512(_mm512_xor_si512(high1, c1), _mm512_set1_epi32(key0));
    c2 = _mm512_xor_si512(_mm512_xor_si512(high0, c3), _mm512_set1_epi32(key1));
    c1 = low1;
    c3 = low0;
    key0 += kPhiloxWeyl0;
    key1 += kPhiloxWeyl1;
  }
  // Back to stream order, block by block: interleave (c0, c1) and (c2, c3) word by word,
  // then the two pair streams 64 bits at a time.
  const __m512i first_half =
      _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i second_half =
      _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
  const __m512i c01_low = _mm512_permutex2var_epi32(c0, first_half, c1);    // blocks 0-7
  const __m512i c01_high = _mm512_permutex2var_epi32(c0, second_half, c1);  // blocks 8-15
  const __m512i c23_low = _mm512_permutex2var_epi32(c2, first_half, c3);
  const __m512i c23_high = _mm512_permutex2var_epi32(c2, second_half, c3);
  const __m512i pairs_first = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0);
  const __m512i pairs_second = _mm512_set_epi64(15, 7, 14, 6, 13, 5, 12, 4);
  uint32_t* out = words.data();
  _mm512_storeu_si512(out, _mm512_permutex2var_epi64(c01_low, pairs_first, c23_low));
  _mm512_storeu_si512(out + 16, _mm512_permutex2var_epi64(c01_low, pairs_second, c23_low));
  _mm512_storeu_si512(out + 32, _mm512_permutex2var_epi64(c01_high, pairs_first, c23_high));
  _mm512_storeu_si512(out + 48, _mm512_permutex2var_epi64(c01_high, pairs_second, c23_high));
}
#endif

inline void PhiloxBlocks(uint64_t seed, uint64_t first_block, PhiloxWords& words) {
#if defined(__AVX512F__)
  PhiloxBlocksAvx512(seed, first_block, words);
#else
  PhiloxBlocksPortable(seed, first_block, words);
#endif
}

// A float uniform in [0, 1) from the top 24 bits of a word.
inline float UniformFloat(uint32_t bits) { return static_cast<float>(bits >> 8) * 0x1.0p-24f; }

}  // namespace attnlab
