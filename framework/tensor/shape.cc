#include "framework/tensor/shape.h"

#include <algorithm>

#include "absl/strings/str_join.h"
#include "framework/core/error.h"

namespace attnlab {

std::string ShapeToString(const Shape& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

int64_t NumElements(const Shape& shape) {
  int64_t count = 1;
  for (int64_t extent : shape) {
    ATTNLAB_CHECK(extent >= 0, "shape ", ShapeToString(shape), " has a negative extent");
    // A wrapped product would size a small buffer for a huge tensor (and then a segfault).
    ATTNLAB_CHECK(!__builtin_mul_overflow(count, extent, &count), "shape ", ShapeToString(shape),
                  " has more elements than an int64 can count");
  }
  return count;
}

Strides ContiguousStrides(const Shape& shape) {
  Strides strides(shape.size());
  int64_t stride = 1;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    strides[d] = stride;
    stride *= shape[d];
  }
  return strides;
}

int64_t NormalizeDim(int64_t dim, int64_t rank, const char* op_name) {
  const int64_t resolved = dim < 0 ? dim + rank : dim;
  ATTNLAB_CHECK(resolved >= 0 && resolved < rank, op_name, ": dimension ", dim,
                " is out of range for a tensor of rank ", rank);
  return resolved;
}

Shape BroadcastShapes(const Shape& a, const Shape& b, const char* op_name) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t extent_a = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t extent_b = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    ATTNLAB_CHECK(extent_a == extent_b || extent_a == 1 || extent_b == 1, op_name, ": shapes ",
                  ShapeToString(a), " and ", ShapeToString(b), " cannot be broadcast together");
    out[i] = extent_a == 1 ? extent_b : extent_a;
  }
  return out;
}

}  // namespace attnlab
