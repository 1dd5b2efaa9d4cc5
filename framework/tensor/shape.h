// Shapes and strides: small inline vectors of int64, row-major (last dim fastest).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

#include "absl/container/inlined_vector.h"

namespace attnlab {

using Shape = absl::InlinedVector<int64_t, 6>;
using Strides = absl::InlinedVector<int64_t, 6>;

// "[2, 3, 4]"
std::string ShapeToString(const Shape& shape);
int64_t NumElements(const Shape& shape);
// Row-major strides of a contiguous tensor of this shape, in elements.
Strides ContiguousStrides(const Shape& shape);
// Resolves a possibly negative dimension index against `rank`; throws if out of range.
int64_t NormalizeDim(int64_t dim, int64_t rank, const char* op_name);
// NumPy broadcasting of two shapes; throws naming `op_name` and both shapes if incompatible.
Shape BroadcastShapes(const Shape& a, const Shape& b, const char* op_name);

}  // namespace attnlab
