// Element types. f32 is the compute type, i32 holds token ids and indices, bf16 is
// reserved for mixed precision (matmul inputs), so every switch over DType handles it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace attnlab {

enum class DType : uint8_t { kF32, kI32, kBF16 };

constexpr size_t ElementSize(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return 4;
    case DType::kI32:
      return 4;
    case DType::kBF16:
      return 2;
  }
  return 0;
}

constexpr std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "f32";
    case DType::kI32:
      return "i32";
    case DType::kBF16:
      return "bf16";
  }
  return "?";
}

// Maps a C++ element type to its DType, for typed data access.
template <typename T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::kF32;
};
template <>
struct DTypeOf<int32_t> {
  static constexpr DType value = DType::kI32;
};

}  // namespace attnlab
