// What the Encoder and the Decoder share (Vaswani et al. 2017, section 3.1: "a stack of
// N = 6 identical layers"): N layers of one kind, and the LayerNorm that ends a pre-LN
// stack (Xiong et al. 2020; a post-LN stack has none). Each derives from LayerStack of its
// layer and adds its own Forward.
//
// Parameters: layers.<i>.* for i in [0, N) (the child's name holds the dot, so they read
// `layers.0.self_attn...` as in PyTorch); norm.{weight, bias} [d_model] when pre-LN.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "framework/core/error.h"
#include "framework/random/generator.h"
#include "layers/layer_norm.h"
#include "layers/model_options.h"
#include "layers/module.h"

namespace attnlab::nn {

template <typename Layer>
class LayerStack : public Module {
 public:
  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }
  const Layer& layer(int64_t index) const { return *layers_.at(index); }
  bool has_final_norm() const { return norm_ != nullptr; }

 protected:
  // Registers `count` layers made by Layer::Create(options, rotary, generator), then the
  // final norm when options.norm is pre-LN.
  absl::Status BuildLayers(const ModelOptions& options, int64_t count, bool rotary,
                           Generator& generator) {
    for (int64_t index = 0; index < count; ++index) {
      ASSIGN_OR_RETURN(std::shared_ptr<Layer> layer, Layer::Create(options, rotary, generator));
      layers_.push_back(RegisterModule(absl::StrCat("layers.", index), layer));
    }
    if (options.norm == NormPosition::kPre) {
      norm_ = RegisterModule("norm", std::make_shared<LayerNorm>(options.d_model));
    }
    return absl::OkStatus();
  }

  // The stack's output: `hidden` after the last layer, through the final norm if any.
  Tensor FinalNorm(const Tensor& hidden) const {
    return norm_ != nullptr ? norm_->Forward(hidden) : hidden;
  }

  std::vector<std::shared_ptr<Layer>> layers_;

 private:
  std::shared_ptr<LayerNorm> norm_;  // pre-LN only
};

}  // namespace attnlab::nn
