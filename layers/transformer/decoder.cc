#include "layers/transformer/decoder.h"

#include "framework/core/error.h"

namespace attnlab::nn {

absl::StatusOr<std::shared_ptr<Decoder>> Decoder::Create(const ModelOptions& options, bool rotary,
                                                         Generator& generator) {
  auto decoder = std::shared_ptr<Decoder>(new Decoder());
  RETURN_IF_ERROR(decoder->BuildLayers(options, options.decoder_layers, rotary, generator));
  return decoder;
}

Tensor Decoder::Forward(const Tensor& x, const Tensor& memory, const Tensor& src_padding_mask,
                        std::vector<DecoderLayerCache>* caches,
                        std::vector<DecoderLayerAttentionWeights>* weights) const {
  const auto profile_scope = ProfileScope("decoder");
  ATTNLAB_CHECK(caches == nullptr || caches->size() == layers_.size(),
                "decoder: ", caches == nullptr ? 0 : caches->size(), " caches for ", layers_.size(),
                " layers");
  if (weights != nullptr) weights->assign(layers_.size(), DecoderLayerAttentionWeights());
  Tensor hidden = x;  // [batch, tgt, d_model]
  for (size_t index = 0; index < layers_.size(); ++index) {
    hidden = layers_[index]->Forward(hidden, memory, src_padding_mask,
                                     caches != nullptr ? &(*caches)[index] : nullptr,
                                     weights != nullptr ? &(*weights)[index] : nullptr);
  }
  return FinalNorm(hidden);
}

}  // namespace attnlab::nn
