// Decoder: a stack of N DecoderLayers (Vaswani et al. 2017, section 3.1). A pre-LN stack
// ends with a LayerNorm (Xiong et al. 2020); a post-LN stack has none.
//
// Parameters: layers.<i>.* (see decoder_layer.h) for i in [0, N); norm.{weight, bias}
// [d_model] when pre-LN.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/random/generator.h"
#include "layers/model_options.h"
#include "layers/transformer/decoder_layer.h"
#include "layers/transformer/layer_stack.h"

namespace attnlab::nn {

class Decoder : public LayerStack<DecoderLayer> {
 public:
  static absl::StatusOr<std::shared_ptr<Decoder>> Create(const ModelOptions& options, bool rotary,
                                                         Generator& generator);

  // x: embedded target [batch, tgt, d_model]; memory: [batch, src, d_model];
  // src_padding_mask: f32 [batch, src], 1 at padding, or undefined -> [batch, tgt, d_model].
  // `caches` (incremental decoding) holds one entry per layer; `weights`, if given,
  // receives one entry per layer.
  Tensor Forward(const Tensor& x, const Tensor& memory, const Tensor& src_padding_mask,
                 std::vector<DecoderLayerCache>* caches = nullptr,
                 std::vector<DecoderLayerAttentionWeights>* weights = nullptr) const;

 private:
  Decoder() = default;
};

}  // namespace attnlab::nn
