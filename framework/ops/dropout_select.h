// Dropout's inner loops on one 64-element mask word (dropout.cc runs them over a tensor):
// the forward's select, which applies the stream's keep decisions and writes the mask
// bits, and the backward's, which multiplies a gradient by the mask bits times scale.
//
// Each has a portable form and, where the compiler targets AVX-512 (F and BW: every
// AVX-512 CPU since Skylake-SP), an AVX-512 form that does the same float operations in
// the same order, so both give the same bits (tests/framework/dropout_select_test.cc
// compares them). DropWord and ScaleByMaskWord pick the AVX-512 form when it is there.
// The portable forms are what GCC vectorised on its own; on a Zen 5 it spilled the mask
// bytes to the stack and loaded x under a mask, and dropout ran at a third of a plain
// ReLU's bandwidth in training (the AVX-512 forms: 1.6-1.9x on dropout's op benchmark).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__) && defined(__AVX512BW__)
#define ATTNLAB_DROPOUT_AVX512 1
#include <immintrin.h>
#endif

namespace attnlab::dropout_select {

// What the forward writes for element i of x, given whether the stream keeps it. The mask
// bit is what backward multiplies the gradient by (times scale): for ReLU it folds in
// ReLU's own gradient, x > 0, so backward needs neither x nor ReLU's output.
enum class Epilogue {
  kPlain,     // out = keep ? x * scale : 0;               bit = keep
  kRelu,      // out = keep && x > 0 ? x * scale : 0;      bit = keep && x > 0
  kResidual,  // out = residual + (keep ? x * scale : 0);  bit = keep
};

// Element i alone (a tensor's partial last word, and the portable loop); returns its bit.
template <Epilogue kEpilogue>
inline bool DropElement(bool stream_keeps, float scale, const float* __restrict in,
                        const float* __restrict residual, float* __restrict out, int64_t i) {
  bool keep = stream_keeps;
  if constexpr (kEpilogue == Epilogue::kRelu) keep = keep && in[i] > 0.0f;
  const float dropped = keep ? in[i] * scale : 0.0f;
  if constexpr (kEpilogue == Epilogue::kResidual) {
    out[i] = residual[i] + dropped;
  } else {
    out[i] = dropped;
  }
  return keep;
}

// The portable forms move the mask between a word and bytes 8 at a time, so that their
// loops over bytes vectorise (a loop testing bit i of a word did not: dropout got 1.8x
// slower).
//
// bytes[0..64) in {0, 1} -> a word with bit i = bytes[i]. The multiply gathers the low
// bit of each of 8 bytes into the top byte of the product (byte k lands on bit 56 + k).
inline uint64_t PackKeepBytes(const uint8_t* bytes) {
  constexpr uint64_t kGather = 0x0102040810204080ULL;
  uint64_t bits = 0;
  for (int group = 0; group < 8; ++group) {
    uint64_t eight;
    std::memcpy(&eight, bytes + 8 * group, 8);
    bits |= ((eight * kGather) >> 56) << (8 * group);
  }
  return bits;
}

// The inverse: bytes[i] = bit i of `bits`, through a table of the 256 byte patterns.
constexpr std::array<uint64_t, 256> MakeByteExpansionTable() {
  std::array<uint64_t, 256> table{};
  for (uint64_t pattern = 0; pattern < 256; ++pattern) {
    for (int bit = 0; bit < 8; ++bit) table[pattern] |= ((pattern >> bit) & 1) << (8 * bit);
  }
  return table;
}
inline constexpr std::array<uint64_t, 256> kByteExpansion = MakeByteExpansionTable();

inline void UnpackKeepBits(uint64_t bits, uint8_t* bytes) {
  for (int group = 0; group < 8; ++group) {
    std::memcpy(bytes + 8 * group, &kByteExpansion[(bits >> (8 * group)) & 0xFF], 8);
  }
}

// The forward on one word's 64 elements, keep(i) = halves[i] >= threshold; returns the
// word, bit i set iff element i's mask bit is. residual is read for kResidual only.
template <Epilogue kEpilogue>
inline uint64_t DropWordPortable(const uint16_t* __restrict halves, uint16_t threshold, float scale,
                                 const float* __restrict in, const float* __restrict residual,
                                 float* __restrict out) {
  alignas(64) uint8_t keep_bytes[64];
  for (int i = 0; i < 64; ++i) {
    keep_bytes[i] = DropElement<kEpilogue>(halves[i] >= threshold, scale, in, residual, out, i);
  }
  return PackKeepBytes(keep_bytes);
}

// The backward on one word: out[i] = bit i of bits ? grad[i] * scale : 0, for 64 elements.
inline void ScaleByMaskWordPortable(uint64_t bits, float scale, const float* __restrict grad,
                                    float* __restrict out) {
  alignas(64) uint8_t keep_bytes[64];
  UnpackKeepBits(bits, keep_bytes);
  for (int i = 0; i < 64; ++i) out[i] = keep_bytes[i] != 0 ? grad[i] * scale : 0.0f;
}

#ifdef ATTNLAB_DROPOUT_AVX512
// 16 elements per instruction with the mask in a mask register: one compare of 32 halves
// gives 32 keep bits, and the zero-masking multiply is DropElement's select.
template <Epilogue kEpilogue>
inline uint64_t DropWordAvx512(const uint16_t* halves, uint16_t threshold, float scale,
                               const float* in, const float* residual, float* out) {
  const __m512i limit = _mm512_set1_epi16(static_cast<int16_t>(threshold));
  const __m512 scale_vector = _mm512_set1_ps(scale);
  uint64_t bits = 0;
  for (int half = 0; half < 2; ++half) {
    const __mmask32 stream_keeps =
        _mm512_cmpge_epu16_mask(_mm512_loadu_si512(halves + 32 * half), limit);
    for (int quarter = 0; quarter < 2; ++quarter) {
      const int offset = 32 * half + 16 * quarter;
      auto keep = static_cast<__mmask16>(stream_keeps >> (16 * quarter));
      const __m512 x = _mm512_loadu_ps(in + offset);
      // Ordered greater-than: false for NaN, as `x > 0.0f` is.
      if constexpr (kEpilogue == Epilogue::kRelu) {
        keep &= _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ);
      }
      __m512 value = _mm512_maskz_mul_ps(keep, x, scale_vector);  // dropped lanes: +0
      if constexpr (kEpilogue == Epilogue::kResidual) {
        value = _mm512_add_ps(_mm512_loadu_ps(residual + offset), value);
      }
      _mm512_storeu_ps(out + offset, value);
      bits |= static_cast<uint64_t>(keep) << offset;
    }
  }
  return bits;
}

inline void ScaleByMaskWordAvx512(uint64_t bits, float scale, const float* grad, float* out) {
  const __m512 scale_vector = _mm512_set1_ps(scale);
  for (int quarter = 0; quarter < 4; ++quarter) {
    const auto keep = static_cast<__mmask16>(bits >> (16 * quarter));
    _mm512_storeu_ps(out + 16 * quarter,
                     _mm512_maskz_mul_ps(keep, _mm512_loadu_ps(grad + 16 * quarter), scale_vector));
  }
}
#endif  // ATTNLAB_DROPOUT_AVX512

template <Epilogue kEpilogue>
inline uint64_t DropWord(const uint16_t* halves, uint16_t threshold, float scale, const float* in,
                         const float* residual, float* out) {
#ifdef ATTNLAB_DROPOUT_AVX512
  return DropWordAvx512<kEpilogue>(halves, threshold, scale, in, residual, out);
#else
  return DropWordPortable<kEpilogue>(halves, threshold, scale, in, residual, out);
#endif
}

inline void ScaleByMaskWord(uint64_t bits, float scale, const float* grad, float* out) {
#ifdef ATTNLAB_DROPOUT_AVX512
  ScaleByMaskWordAvx512(bits, scale, grad, out);
#else
  ScaleByMaskWordPortable(bits, scale, grad, out);
#endif
}

}  // namespace attnlab::dropout_select
