#include "framework/ops/frozen_weights.h"

#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/ops/matmul_product.h"
#include "framework/ops/mixed_precision.h"

namespace attnlab {

struct FrozenWeights::Copies {
  struct Copy {
    Tensor weight;  // kept alive, so its address stays its own
    PreparedWeight prepared;
  };
  // By the weight's data address, dtype and whether packing was allowed. A weight is read
  // in one layout, so a second layout at the same address is prepared without caching.
  absl::flat_hash_map<std::tuple<const void*, DType, bool>, Copy> by_address;
};

namespace {

thread_local FrozenWeights::Copies* frozen_weight_copies = nullptr;

// The packed copy of `weight` [out, in], or a plain one where oneDNN keeps it plain.
PreparedWeight Prepare(const Tensor& weight, DType dtype, bool packing_allowed) {
  const int64_t in = weight.size(1), out = weight.size(0);
  const int64_t packed_bytes =
      packing_allowed && weight.numel() > 0 ? dnnl_backend::PackedWeightBytes(dtype, in, out) : 0;
  if (packed_bytes == 0) return {ContiguousAs(weight, dtype), false};
  const int64_t element_bytes = static_cast<int64_t>(ElementSize(dtype));
  Tensor packed = Tensor::Empty({(packed_bytes + element_bytes - 1) / element_bytes}, dtype);
  // weight^T [in, out], as the product reads it, through strides.
  dnnl_backend::PackWeight(AsOperand(weight, /*transpose=*/true), dtype, packed.raw_data());
  return {packed, true};
}

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

PreparedWeight PrepareLinearWeight(const Tensor& weight, DType dtype, bool packing_allowed) {
  if (frozen_weight_copies == nullptr) return {ContiguousAs(weight, dtype), false};
  auto [entry, inserted] = frozen_weight_copies->by_address.try_emplace(
      std::make_tuple(weight.raw_data(), dtype, packing_allowed));
  FrozenWeights::Copies::Copy& copy = entry->second;
  if (inserted) {
    copy = {weight, Prepare(weight, dtype, packing_allowed)};
  } else if (copy.weight.shape() != weight.shape() || copy.weight.strides() != weight.strides()) {
    return Prepare(weight, dtype, packing_allowed);
  }
  return copy.prepared;
}

}  // namespace attnlab
