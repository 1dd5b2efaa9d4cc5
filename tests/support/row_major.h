// Row-major index arithmetic for the naive reference loops of op tests: the coordinates
// of a shape's index-th element, and back.
#pragma once

#include <cstdint>

#include "framework/tensor/shape.h"

namespace attnlab::testing {

// Coordinates of row-major element `index` of `shape`.
inline Shape Coordinates(const Shape& shape, int64_t index) {
  Shape coords(shape.size());
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    coords[d] = index % shape[d];
    index /= shape[d];
  }
  return coords;
}

// The row-major index of the element at `coords` of `shape`.
inline int64_t Offset(const Shape& shape, const Shape& coords) {
  int64_t offset = 0;
  for (size_t d = 0; d < shape.size(); ++d) offset = offset * shape[d] + coords[d];
  return offset;
}

}  // namespace attnlab::testing
