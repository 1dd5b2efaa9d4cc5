#include "experiments/bench/flop_count.h"

namespace attnlab::experiments {

TrainingStepFlops CountTrainingStepFlops(const ReferenceConfig& config) {
  const double batch = static_cast<double>(config.batch);
  const double source = static_cast<double>(config.length), target = source;
  const double d = static_cast<double>(config.model.d_model),
               f = static_cast<double>(config.model.d_ff);
  const double vocab = static_cast<double>(config.vocab);
  TrainingStepFlops flops;
  flops.encoder_layer =
      8 * batch * source * d * d + 4 * batch * source * source * d + 4 * batch * source * d * f;
  flops.decoder_layer = 8 * batch * target * d * d + 4 * batch * target * target * d +
                        4 * batch * target * d * d + 4 * batch * source * d * d +
                        4 * batch * target * source * d + 4 * batch * target * d * f;
  flops.generator = 2 * batch * target * d * vocab;
  flops.forward = static_cast<double>(config.model.encoder_layers) * flops.encoder_layer +
                  static_cast<double>(config.model.decoder_layers) * flops.decoder_layer +
                  flops.generator;
  flops.training_step = 3 * flops.forward;
  return flops;
}

}  // namespace attnlab::experiments
