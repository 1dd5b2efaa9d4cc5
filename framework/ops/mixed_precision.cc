#include "framework/ops/mixed_precision.h"

#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/core/error.h"

namespace attnlab {
namespace {

thread_local DType matmul_input_dtype = DType::kF32;

}  // namespace

struct FrozenWeights::Copies {
  struct Copy {
    Tensor weight;     // kept alive, so its address stays its own
    Tensor converted;  // the weight in `converted.dtype()`, contiguous
  };
  // By the weight's data address; one copy per address and dtype (a weight is read in
  // one layout, so a second layout at the same address is converted without caching).
  absl::flat_hash_map<std::pair<const void*, DType>, Copy> by_address;
};

namespace {

thread_local FrozenWeights::Copies* frozen_weight_copies = nullptr;

}  // namespace

FrozenWeights::FrozenWeights() {
  if (frozen_weight_copies == nullptr) {
    copies_ = std::make_unique<Copies>();
    frozen_weight_copies = copies_.get();
  }
}

FrozenWeights::~FrozenWeights() {
  if (copies_ != nullptr) frozen_weight_copies = nullptr;
}

Tensor WeightAs(const Tensor& weight, DType dtype) {
  if (frozen_weight_copies == nullptr || (weight.dtype() == dtype && weight.is_contiguous())) {
    return ContiguousAs(weight, dtype);
  }
  auto [entry, inserted] = frozen_weight_copies->by_address.try_emplace({weight.raw_data(), dtype});
  FrozenWeights::Copies::Copy& copy = entry->second;
  if (inserted) {
    copy = {weight, ContiguousAs(weight, dtype)};
  } else if (copy.weight.shape() != weight.shape() || copy.weight.strides() != weight.strides()) {
    return ContiguousAs(weight, dtype);
  }
  return copy.converted;
}

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

}  // namespace attnlab
