// The analytic FLOP count of one training step of a reference Transformer, the numerator
// of the achieved GFLOP/s and of MFU in `attnlab bench` (and in tools/compare_pytorch.py,
// which repeats the formula).
//
// Matrix products only, 2 FLOPs per multiply-add; B = batch, S = source length,
// T = target length, d = d_model, f = d_ff, V = target vocabulary. Attention counts all
// heads together (heads x head_dim = d) and the full T x T score matrix of the decoder's
// causal self-attention (the masked half is computed, then masked):
//   encoder layer   8·B·S·d²                     Q, K, V, output projections
//                 + 4·B·S²·d                     scores Q·Kᵀ and the weighted sum of V
//                 + 4·B·S·d·f                    feed-forward, two linears
//   decoder layer   8·B·T·d² + 4·B·T²·d          masked self-attention
//                 + 4·B·T·d² + 4·B·S·d²          cross-attention: Q, out on T; K, V on S
//                 + 4·B·T·S·d                    cross-attention scores and weighted sum
//                 + 4·B·T·d·f                    feed-forward
//   generator       2·B·T·d·V
//   training step   3 x forward                  backward = 2 x forward (input and weight
//                                                gradients of every product)
// Embedding lookups, layer norms, softmaxes, dropout, the loss and Adam are not counted
// (they are memory-bound and small next to the products); neither is the sinusoidal table.
#pragma once

#include "experiments/bench/reference_config.h"

namespace attnlab::experiments {

struct TrainingStepFlops {
  double encoder_layer = 0;  // one encoder layer, forward
  double decoder_layer = 0;  // one decoder layer, forward
  double generator = 0;      // the output projection, forward
  double forward = 0;        // the whole model, forward
  double training_step = 0;  // forward + backward = 3 x forward
};

TrainingStepFlops CountTrainingStepFlops(const ReferenceConfig& config);

}  // namespace attnlab::experiments
