// Dropout with a counter-based mask.
//
// Each call reserves ceil(numel / 4) Philox blocks from the default generator. Element i
// is kept iff UniformFloat(word i % 4 of block first + i / 4) >= p, so the mask depends
// only on (seed, first block, i): it is the same for any thread count, and backward
// regenerates it from those two integers instead of storing a mask tensor.
#include <algorithm>

#include "framework/autograd/node.h"
#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "framework/profiler/profiler.h"
#include "framework/random/generator.h"
#include "framework/random/philox.h"

namespace attnlab {
namespace {

constexpr int64_t kDropoutBlockGrain = 4096;  // Philox blocks (4 elements each) per chunk

// The part of the Philox stream one dropout call owns.
struct DropoutStream {
  uint64_t seed = 0;
  uint64_t first_block = 0;
};

// in, out: contiguous [count]. out[i] = keep(i) ? in[i] * scale : 0, with keep(i) drawn
// from `stream`. Used by forward (in = x) and backward (in = grad_output) alike. Whole
// groups of kPhiloxLanes blocks go through the vectorised PhiloxBlocks and a contiguous
// select loop (block by block, dropout was a third of the tiny model's training step);
// the last partial group and a partial last block go block by block.
void ApplyDropoutMask(const DropoutStream& stream, float p, float scale, const float* in,
                      float* out, int64_t count) {
  const int64_t blocks = (count + 3) / 4;
  const int64_t full_blocks = count / 4;
  // By value: through references, the compiler must reload p and scale after every store
  // to out (they might alias) and cannot vectorise the select loop.
  ParallelFor(blocks, kDropoutBlockGrain, [=, &stream](int64_t begin, int64_t end) {
    int64_t block = begin;
    PhiloxWords words;
    for (; block + kPhiloxLanes <= std::min(end, full_blocks); block += kPhiloxLanes) {
      PhiloxBlocks(stream.seed, stream.first_block + static_cast<uint64_t>(block), words);
      const float* group_in = in + block * 4;
      float* group_out = out + block * 4;
      for (int i = 0; i < 4 * kPhiloxLanes; ++i) {
        const bool keep = UniformFloat(words[i]) >= p;
        group_out[i] = keep ? group_in[i] * scale : 0.0f;
      }
    }
    for (; block < end; ++block) {
      const PhiloxCounter block_words = PhiloxBlock(stream.seed, stream.first_block + block);
      const int64_t base = block * 4;
      for (int64_t word = 0; word < 4 && base + word < count; ++word) {
        const bool keep = UniformFloat(block_words[word]) >= p;
        out[base + word] = keep ? in[base + word] * scale : 0.0f;
      }
    }
  });
}

}  // namespace

Tensor Dropout(const Tensor& x, float p, bool training) {
  profiler::OpScope profile(OpKind::kDropout, {&x});
  ATTNLAB_CHECK(p >= 0.0f && p < 1.0f, "dropout: probability ", p, " is outside [0, 1) for ",
                x.Describe());
  if (!training || p == 0.0f) return x;
  ATTNLAB_CHECK(x.dtype() == DType::kF32, "dropout: expects f32, got ", x.Describe());
  const Tensor input = x.is_contiguous() ? x : x.Clone();
  const int64_t count = x.numel();
  Generator& generator = DefaultGenerator();
  const DropoutStream stream{generator.seed(),
                             generator.Reserve(static_cast<uint64_t>((count + 3) / 4))};
  const float scale = 1.0f / (1.0f - p);
  Tensor out = Tensor::Empty(x.shape());
  ApplyDropoutMask(stream, p, scale, input.data<float>(), out.data<float>(), count);
  if (autograd::ShouldRecord({&x})) {
    // d(out)/d(x) is the same mask times scale: regenerate it from the stream.
    autograd::Record(OpKind::kDropout, out, {&x},
                     [stream, p, scale](const Tensor& grad, autograd::GradientSink& sink) {
                       const Tensor grad_out = grad.is_contiguous() ? grad : grad.Clone();
                       Tensor grad_in = Tensor::Empty(grad.shape());
                       ApplyDropoutMask(stream, p, scale, grad_out.data<float>(),
                                        grad_in.data<float>(), grad_in.numel());
                       sink.Add(0, grad_in);
                     });
  }
  return out;
}

}  // namespace attnlab
