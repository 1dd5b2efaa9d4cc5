// Bit-for-bit comparison of float sequences: what determinism and fused-versus-composite
// tests mean by "the same result" (memcmp, so -0 differs from +0 and NaNs compare by
// their bits).
#pragma once

#include <cstring>
#include <vector>

namespace attnlab::testing {

inline bool BitIdentical(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace attnlab::testing
