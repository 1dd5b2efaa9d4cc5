#include "framework/ops/mixed_precision.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/core/error.h"
#include "framework/parallel/chunk_partials.h"
#include "framework/parallel/parallel_for.h"

namespace attnlab {
namespace {

thread_local DType matmul_input_dtype = DType::kF32;

// f32 -> bf16 as vcvtneps2bf16 does it; branch-free, so that the loop vectorises.
inline uint16_t RoundToBf16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint32_t magnitude = bits & 0x7fffffffu;
  const uint32_t nearest_even = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
  const uint32_t quiet_nan = (bits >> 16) | 0x40u;
  const uint32_t signed_zero = (bits >> 16) & 0x8000u;
  return static_cast<uint16_t>(magnitude > 0x7f800000u   ? quiet_nan
                               : magnitude < 0x00800000u ? signed_zero
                                                         : nearest_even);
}

constexpr int64_t kColumnSumRows = 32;  // rows per partial column sum

}  // namespace

DType MatmulInputDType() { return matmul_input_dtype; }

absl::Status CheckMatmulInputDType(DType matmul_inputs) {
  if (matmul_inputs != DType::kF32 && matmul_inputs != DType::kBF16) {
    return absl::InvalidArgumentError(absl::StrCat("matmul inputs must be f32 or bf16, got ",
                                                   std::string(DTypeName(matmul_inputs))));
  }
  if (matmul_inputs == DType::kBF16 && !dnnl_backend::HasNativeBF16()) {
    return absl::FailedPreconditionError(
        absl::StrCat("bf16 needs a CPU with AVX512-BF16 or AMX instructions; oneDNN reports ",
                     dnnl_backend::CpuIsaName(), " here (use f32)"));
  }
  return absl::OkStatus();
}

MixedPrecision::MixedPrecision(DType matmul_inputs) : previous_(matmul_input_dtype) {
  const absl::Status usable = CheckMatmulInputDType(matmul_inputs);
  ATTNLAB_CHECK(usable.ok(), "mixed precision: ", std::string(usable.message()));
  matmul_input_dtype = matmul_inputs;
}

MixedPrecision::~MixedPrecision() { matmul_input_dtype = previous_; }

Tensor ContiguousAs(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype && x.is_contiguous()) return x;
  ATTNLAB_CHECK(x.dtype() != DType::kI32 && dtype != DType::kI32,
                "ContiguousAs: converts between f32 and bf16, got ", x.Describe(), " to ",
                DTypeName(dtype));
  Tensor out = Tensor::Empty(x.shape(), dtype);
  dnnl_backend::ConvertingReorder(x.dtype(), x.shape(), x.raw_data(), x.strides(), dtype,
                                  out.raw_data(), ContiguousStrides(x.shape()));
  return out;
}

Tensor RoundToBf16WithColumnSums(const Tensor& x, Tensor* column_sums) {
  ATTNLAB_CHECK(x.rank() == 2 && x.dtype() == DType::kF32 && x.is_contiguous(),
                "RoundToBf16WithColumnSums: expects a contiguous f32 matrix, got ", x.Describe());
  const int64_t rows = x.size(0), cols = x.size(1);
  const int64_t chunks = (rows + kColumnSumRows - 1) / kColumnSumRows;
  Tensor out = Tensor::Empty({rows, cols}, DType::kBF16);
  Tensor partials = column_sums != nullptr ? Tensor::Empty({chunks, cols}) : Tensor();
  const float* in = x.data<float>();
  auto* rounded = static_cast<uint16_t*>(out.raw_data());
  float* partial_data = column_sums != nullptr ? partials.data<float>() : nullptr;
  ParallelFor(chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t chunk = begin; chunk < end; ++chunk) {
      float* sums = partial_data != nullptr ? partial_data + chunk * cols : nullptr;
      if (sums != nullptr) std::fill(sums, sums + cols, 0.0f);
      for (int64_t r = chunk * kColumnSumRows; r < std::min(rows, (chunk + 1) * kColumnSumRows);
           ++r) {
        const float* row = in + r * cols;
        uint16_t* row_out = rounded + r * cols;
        for (int64_t c = 0; c < cols; ++c) row_out[c] = RoundToBf16(row[c]);
        if (sums != nullptr) {
          for (int64_t c = 0; c < cols; ++c) sums[c] += row[c];
        }
      }
    }
  });
  if (column_sums != nullptr) {
    *column_sums = Tensor::Empty({cols});
    SumChunkPartials(partial_data, chunks, cols, column_sums->data<float>());
  }
  return out;
}

}  // namespace attnlab
