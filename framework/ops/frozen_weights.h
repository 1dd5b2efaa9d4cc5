// Weights that stay fixed for a while: decoding and scoring. Inside a FrozenWeights
// scope, Linear prepares each weight once and reuses it for the rest of the scope:
// converted to the matmul precision and packed into the blocked layout oneDNN's matmul
// prefers. Greedy decoding calls every decoder projection once per generated token, with
// one row per sentence; unprepared, each call would convert the weight (bf16) and let
// oneDNN re-block it, which costs more than such a product.
#pragma once

#include <memory>

#include "framework/tensor/tensor.h"

namespace attnlab {

// The prepared copies are keyed by the weight's data address; the scope holds each
// weight as well as its copy, so no other tensor can take that address while the scope
// lasts. The weights must not change inside the scope (no optimizer step). Per thread;
// an inner scope shares the outer one's copies.
class FrozenWeights {
 public:
  FrozenWeights();
  ~FrozenWeights();
  FrozenWeights(const FrozenWeights&) = delete;
  FrozenWeights& operator=(const FrozenWeights&) = delete;

  struct Copies;  // the prepared weights (frozen_weights.cc)

 private:
  std::unique_ptr<Copies> copies_;  // null in an inner scope
};

// A Linear weight [out, in] as the product reads it, in the matmul precision.
struct PreparedWeight {
  // Contiguous [out, in]; when `packed`, dnnl_backend::PackWeight's layout of its
  // transpose [in, out] (a flat buffer that only MatmulPackedWeight reads).
  Tensor data;
  bool packed = false;
};

// `weight` [out, in] in `dtype` for a Linear. Outside a FrozenWeights scope,
// ContiguousAs(weight, dtype), plain. Inside one, the scope's copy, made at the first
// call: packed when `packing_allowed` and oneDNN has a packed layout for it, plain
// otherwise. (Pass packing_allowed = false when autograd records the product: its
// backward multiplies the plain copy.)
PreparedWeight PrepareLinearWeight(const Tensor& weight, DType dtype, bool packing_allowed);

}  // namespace attnlab
