#include "framework/optim/sgd.h"

#include <cmath>
#include <string>
#include <utility>

namespace attnlab {
namespace {

std::vector<std::string> SgdMomentNames(const SgdOptions& options) {
  if (options.momentum == 0.0) return {};
  return {"momentum_buffer"};
}

}  // namespace

Sgd::Sgd(NamedTensors parameters, const SgdOptions& options)
    : Optimizer(std::move(parameters), SgdMomentNames(options)), options_(options) {
  ATTNLAB_CHECK(options.momentum >= 0.0 && std::isfinite(options.momentum),
                "Sgd: invalid momentum ", options.momentum);
  ATTNLAB_CHECK(options.weight_decay >= 0.0 && std::isfinite(options.weight_decay),
                "Sgd: invalid weight_decay ", options.weight_decay);
  ATTNLAB_CHECK(!options.nesterov || (options.momentum > 0.0 && options.dampening == 0.0),
                "Sgd: nesterov momentum requires momentum > 0 and dampening == 0");
  first_step_.assign(parameter_count(), 0);
}

void Sgd::PrepareParameter(size_t index, int64_t step, double learning_rate) {
  learning_rate_ = static_cast<float>(learning_rate);
  first_step_[index] = step == 1;
}

void Sgd::UpdateRange(size_t index, int64_t begin, int64_t end, const float* gradient) {
  float* param = parameter_data(index);
  const float weight_decay = static_cast<float>(options_.weight_decay);
  const float momentum = static_cast<float>(options_.momentum);
  const float dampening_complement = static_cast<float>(1.0 - options_.dampening);
  const float learning_rate = learning_rate_;
  if (options_.momentum == 0.0) {
    for (int64_t i = begin; i < end; ++i) {
      const float g = weight_decay != 0.0f ? gradient[i] + weight_decay * param[i] : gradient[i];
      param[i] = param[i] - learning_rate * g;
    }
    return;
  }
  float* buffer = moment(0, index);
  const bool first = first_step_[index] != 0;
  const bool nesterov = options_.nesterov;
  for (int64_t i = begin; i < end; ++i) {
    float g = weight_decay != 0.0f ? gradient[i] + weight_decay * param[i] : gradient[i];
    buffer[i] = first ? g : momentum * buffer[i] + dampening_complement * g;
    g = nesterov ? g + momentum * buffer[i] : buffer[i];
    param[i] = param[i] - learning_rate * g;
  }
}

}  // namespace attnlab
