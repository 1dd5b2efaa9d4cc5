#include "layers/init.h"

#include <cmath>
#include <cstring>

namespace attnlab::init {
namespace {
void CopyInto(Tensor& destination, const Tensor& source) {
  ATTNLAB_CHECK(destination.is_contiguous() && destination.shape() == source.shape(),
                "init: cannot fill ", destination.Describe());
  std::memcpy(destination.raw_data(), source.raw_data(), source.numel() * sizeof(float));
}
}  // namespace

void XavierUniform(Tensor& weight, Generator& generator, float gain) {
  ATTNLAB_CHECK(weight.rank() >= 2, "XavierUniform: needs a [out, in] weight, got ",
                weight.Describe());
  const int64_t fan_out = weight.size(0);
  const int64_t fan_in = weight.numel() / fan_out;
  const float limit = gain * std::sqrt(6.0f / static_cast<float>(fan_in + fan_out));
  Uniform(weight, -limit, limit, generator);
}

void Normal(Tensor& tensor, float mean, float stddev, Generator& generator) {
  CopyInto(tensor, RandomNormal(tensor.shape(), mean, stddev, generator));
}

void Uniform(Tensor& tensor, float low, float high, Generator& generator) {
  CopyInto(tensor, RandomUniform(tensor.shape(), low, high, generator));
}

void Zeros(Tensor& tensor) { tensor.Fill(0.0f); }
void Ones(Tensor& tensor) { tensor.Fill(1.0f); }

}  // namespace attnlab::init
