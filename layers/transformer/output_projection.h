// OutputProjection: the pre-softmax linear transformation of Vaswani et al. 2017 (Figure 1,
// "Linear"; the Annotated Transformer's Generator box), decoder output -> target-vocabulary
// logits. Its weight [tgt_vocab, d_model] is either its own (Xavier-uniform) or the
// target embedding table, shared as in section 3.4 ("we share the same weight matrix
// between the two embedding layers and the pre-softmax linear transformation"; Press &
// Wolf 2017). The Transformer registers it as `generator`.
//
// Parameters: weight [tgt_vocab, d_model] (only when not tied), bias [tgt_vocab].
#pragma once

#include "framework/random/generator.h"
#include "layers/module.h"

namespace attnlab::nn {

class OutputProjection : public Module {
 public:
  // Its own weight.
  OutputProjection(int64_t d_model, int64_t vocab_size, Generator& generator);
  // Tied: `shared_weight` [vocab, d_model] is registered elsewhere (the embedding) and
  // is not a parameter of this module, so optimizers and checkpoints see it once.
  explicit OutputProjection(const Tensor& shared_weight);

  // x: [..., d_model] -> logits [..., vocab]
  Tensor Forward(const Tensor& x) const;

  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  bool tied() const { return tied_; }

 private:
  Tensor weight_;
  Tensor bias_;
  bool tied_;
};

}  // namespace attnlab::nn
