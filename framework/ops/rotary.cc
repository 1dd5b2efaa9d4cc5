// Rotary position embedding (Su et al. 2021, RoFormer, section 3.4.2, eq. 34), fused.
//
// x: [..., time, head_dim], viewed as contiguous [outer, time, head_dim]. Row t is at
// absolute position p = t + position_offset; channel pair (2i, 2i+1) is rotated by
//   angle(p, i) = p * theta_i,   theta_i = 10000^(-2i / head_dim),
// i.e. multiplied by the 2x2 block [[cos, -sin], [sin, cos]] of the paper's R_{Theta,p}.
// The pairs are interleaved, as in the paper (GPT-NeoX pairs i with i + head_dim/2
// instead; a checkpoint from such a model needs its q/k projection rows permuted).
//
// A rotation's Jacobian is the rotation itself, and its transpose is the rotation by the
// negative angle, so backward is the same kernel with the sign of the angle flipped
// (and is itself recorded, so it differentiates again). It saves nothing but the offset.
//
// cos and sin are computed once per call in double precision for a [time, head_dim / 2]
// table, so positions in the tens of thousands keep full float accuracy.
#include <cmath>
#include <vector>

#include "framework/autograd/node.h"
#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "framework/profiler/profiler.h"

namespace attnlab {
namespace {

constexpr int64_t kRotaryGrain = 1 << 14;  // elements per chunk
constexpr double kRotaryBase = 10000.0;

struct RotaryTable {
  std::vector<float> cos, sin;  // [time, half]
};

// angle_sign = +1 rotates forward, -1 rotates back (the backward pass).
RotaryTable BuildTable(int64_t time, int64_t head_dim, int64_t position_offset, double angle_sign) {
  const int64_t half = head_dim / 2;
  RotaryTable table;
  table.cos.resize(time * half);
  table.sin.resize(time * half);
  for (int64_t t = 0; t < time; ++t) {
    const double position = static_cast<double>(t + position_offset);
    for (int64_t i = 0; i < half; ++i) {
      const double theta =
          std::pow(kRotaryBase, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
      const double angle = angle_sign * position * theta;
      table.cos[t * half + i] = static_cast<float>(std::cos(angle));
      table.sin[t * half + i] = static_cast<float>(std::sin(angle));
    }
  }
  return table;
}

// in, out: contiguous [outer, time, head_dim].
void RotaryKernel(const float* in, float* out, int64_t outer, int64_t time, int64_t head_dim,
                  const RotaryTable& table) {
  const int64_t half = head_dim / 2;
  const int64_t rows = outer * time;
  ParallelFor(rows, std::max<int64_t>(1, kRotaryGrain / std::max<int64_t>(head_dim, 1)),
              [&](int64_t begin, int64_t end) {
                for (int64_t row = begin; row < end; ++row) {
                  const int64_t t = row % time;
                  const float* cos_row = table.cos.data() + t * half;
                  const float* sin_row = table.sin.data() + t * half;
                  const float* x = in + row * head_dim;
                  float* y = out + row * head_dim;
                  for (int64_t i = 0; i < half; ++i) {
                    const float even = x[2 * i], odd = x[2 * i + 1];
                    y[2 * i] = even * cos_row[i] - odd * sin_row[i];
                    y[2 * i + 1] = even * sin_row[i] + odd * cos_row[i];
                  }
                }
              });
}

// The recorded op: rotation by angle_sign * angle, whose backward is the opposite rotation.
Tensor Rotate(const Tensor& x, int64_t position_offset, double angle_sign) {
  const int64_t time = x.size(-2), head_dim = x.size(-1);
  const int64_t outer = time * head_dim == 0 ? 0 : x.numel() / (time * head_dim);
  const Tensor input = x.is_contiguous() ? x.detach() : x.Clone();
  Tensor out = Tensor::Empty(x.shape());
  RotaryKernel(input.data<float>(), out.data<float>(), outer, time, head_dim,
               BuildTable(time, head_dim, position_offset, angle_sign));
  if (autograd::ShouldRecord({&x})) {
    autograd::Record(
        OpKind::kRotary, out, {&x},
        [position_offset, angle_sign](const Tensor& grad, autograd::GradientSink& sink) {
          sink.Add(0, Rotate(grad, position_offset, -angle_sign));
        });
  }
  return out;
}

}  // namespace

Tensor Rotary(const Tensor& x, int64_t position_offset) {
  profiler::OpScope profile(OpKind::kRotary, {&x});
  ATTNLAB_CHECK(x.defined(), "rotary: input is undefined");
  ATTNLAB_CHECK(x.dtype() == DType::kF32, "rotary: expects f32, got ", x.Describe());
  ATTNLAB_CHECK(x.rank() >= 2 && x.size(-1) % 2 == 0, "rotary: expects [..., time, head_dim] ",
                "with an even head_dim, got ", x.Describe());
  ATTNLAB_CHECK(position_offset >= 0, "rotary: position offset ", position_offset,
                " is negative for ", x.Describe());
  return Rotate(x, position_offset, 1.0);
}

}  // namespace attnlab
