// A shape seen as [outer, extent, inner] around one dim: the view of the ops that work
// along a dim (reductions, scans, index_select), which address a contiguous tensor as
// (o * extent + e) * inner + i.
#pragma once

#include <cstdint>

#include "framework/tensor/shape.h"

namespace attnlab {

struct DimSplit {
  int64_t outer = 1;   // the product of the dims before `dim`
  int64_t extent = 1;  // shape[dim]
  int64_t inner = 1;   // the product of the dims after `dim`
};

// `dim` is already normalized (0 <= dim < rank).
inline DimSplit SplitAroundDim(const Shape& shape, int64_t dim) {
  DimSplit split;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    if (d < dim) {
      split.outer *= shape[d];
    } else if (d == dim) {
      split.extent = shape[d];
    } else {
      split.inner *= shape[d];
    }
  }
  return split;
}

}  // namespace attnlab
