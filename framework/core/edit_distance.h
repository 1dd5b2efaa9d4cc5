// Levenshtein distance between two sequences (strings, token lists): the fewest
// insertions, deletions and substitutions turning one into the other. Used for "did you
// mean" suggestions (config keys, flags) and for error-rate metrics.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace attnlab {

template <typename Sequence>
int64_t EditDistance(const Sequence& a, const Sequence& b) {
  // One row of the dynamic-programming table at a time: O(|b|) memory.
  std::vector<int64_t> previous(b.size() + 1), current(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) previous[j] = static_cast<int64_t>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    current[0] = static_cast<int64_t>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      current[j] = std::min(
          {previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(previous, current);
  }
  return previous[b.size()];
}

}  // namespace attnlab
