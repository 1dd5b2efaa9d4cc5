// Linear: y = x W^T + b, weight [out, in] (as PyTorch stores it), bias [out].
// Initialisation: Xavier-uniform weight, zero bias (the Transformer paper's choice).
#pragma once

#include "framework/random/generator.h"
#include "layers/module.h"

namespace attnlab::nn {

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias, Generator& generator);
  // x: [..., in] -> [..., out]
  Tensor Forward(const Tensor& x) const;

  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }  // undefined when built without bias

 private:
  Tensor weight_;
  Tensor bias_;
};

}  // namespace attnlab::nn
