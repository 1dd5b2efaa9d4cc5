// exp(x) for f32 in a form GCC vectorises (no libm call, no branches): the loss kernels'
// inner loops run 16 lanes at a time with AVX-512 instead of one scalar std::exp per
// element. Pure arithmetic, so deterministic; within 1 ulp of std::exp over the whole
// float range, subnormal results included (tests/framework/vector_exp_test.cc).
//
// Method (Cephes expf): n = round(x / ln 2), r = x - n ln 2 with ln 2 split into a part
// exact in float and a remainder, exp(r) by a degree-6 polynomial on |r| <= ln 2 / 2,
// and the result scaled by 2^n through the exponent bits.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace attnlab {

inline float VectorExp(float x) {
  constexpr float kMax = 88.72283935546875f;     // log(FLT_MAX): above, exp overflows
  constexpr float kMin = -103.972076416015625f;  // log of the smallest subnormal: below, 0
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2High = 0.693359375f;       // exact in float
  constexpr float kLn2Low = -2.12194440e-4f;     // ln 2 - kLn2High
  constexpr float kRoundingShift = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  // Selects rather than branches or fmin/fmax, so that the loop around this vectorises.
  const float clamped = x < kMin ? kMin : (x > kMax ? kMax : x);
  const float n = (clamped * kLog2e + kRoundingShift) - kRoundingShift;  // round to nearest
  const float r = (clamped - n * kLn2High) - n * kLn2Low;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float exp_r = p * r * r + r + 1.0f;
  // 2^n = 2^half * 2^(n - half) through the exponent field: n is in [-150, 128], each
  // factor stays a normal float, and a subnormal result is rounded once, at the end.
  const int32_t n_int = static_cast<int32_t>(n);
  const int32_t half = n_int >> 1;  // floor(n / 2)
  const float first = std::bit_cast<float>((half + 127) << 23);
  const float second = std::bit_cast<float>((n_int - half + 127) << 23);
  const float result = exp_r * first * second;
  const float saturated = x < kMin ? 0.0f : (x > kMax ? INFINITY : result);
  return x == x ? saturated : x;
}

}  // namespace attnlab
