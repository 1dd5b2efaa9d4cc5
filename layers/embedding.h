// Embedding: token ids -> vectors. weight [vocab, dim], initialised N(0, dim^-1/2) as in
// fairseq's Transformer (so that scaling by sqrt(dim) gives unit variance). The padding
// row is zeroed and receives no gradient.
#pragma once

#include "framework/random/generator.h"
#include "layers/module.h"

namespace attnlab::nn {

class Embedding : public Module {
 public:
  Embedding(int64_t vocab_size, int64_t dim, int64_t padding_index, Generator& generator);
  // ids: i32 [...] -> [..., dim]
  Tensor Forward(const Tensor& ids) const;

  const Tensor& weight() const { return weight_; }
  int64_t padding_index() const { return padding_index_; }

 private:
  Tensor weight_;
  int64_t padding_index_;
};

}  // namespace attnlab::nn
