// Parameter initialisation schemes. Each fills a tensor in place from a Generator, so a
// model built from the same seed has the same weights on any machine and thread count.
#pragma once

#include "framework/random/generator.h"
#include "framework/tensor/tensor.h"

namespace attnlab::init {

// Glorot & Bengio (2010): U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)), for a
// [out, in] weight. The Transformer paper's projections use it (via the Annotated
// Transformer and fairseq).
void XavierUniform(Tensor& weight, Generator& generator, float gain = 1.0f);
// N(mean, stddev^2).
void Normal(Tensor& tensor, float mean, float stddev, Generator& generator);
// U(low, high).
void Uniform(Tensor& tensor, float low, float high, Generator& generator);
void Zeros(Tensor& tensor);
void Ones(Tensor& tensor);

}  // namespace attnlab::init
