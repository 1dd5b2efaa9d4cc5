// LayerNorm over the last dim with learned gain (ones) and bias (zeros), Ba et al. 2016.
#pragma once

#include "layers/module.h"

namespace attnlab::nn {

class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, float epsilon = 1e-5f);
  // x: [..., dim] -> [..., dim]
  Tensor Forward(const Tensor& x) const;

 private:
  Tensor weight_;
  Tensor bias_;
  float epsilon_;
};

}  // namespace attnlab::nn
