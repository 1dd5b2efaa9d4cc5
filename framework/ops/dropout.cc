// Dropout with a counter-based mask, alone and fused with the op before or after it:
//   Dropout(x)              keep ? x * scale : 0
//   ReluDropout(x)          = Dropout(Relu(x)), the feed-forward's hidden layer
//   AddDropout(residual, x) = residual + Dropout(x), a sublayer's residual connection
//   DropoutMatmul(w, v)     = Matmul(Dropout(w), v), attention's weighted sum of values
// The fused forms save a pass over the tensor each way (a Transformer's dropout sits
// between these ops), or, for DropoutMatmul, the memory of the dropped tensor between
// forward and backward; each gives bit for bit what the composite gives with the same
// stream.
//
// Each call reserves DropoutBlocks(numel) Philox blocks from the default generator, and
// element i is kept iff its 16-bit half of the stream is >= DropoutThreshold(p)
// (dropout_stream.h), so the mask depends only on (seed, first block, i): it is the same
// for any thread count. Forward keeps the mask as 1 bit per element (1/32 of the input's
// bytes) for backward to read.
//
// On a batch shard (dropout_batch_shard.h) the call reserves the global tensor's blocks
// and element i is keyed by its global index element_offset + i instead; DropoutHalves
// serves stream positions that do not start a Philox group as well as those that do.
//
// The loops over one 64-element mask word, forward and backward, are in dropout_select.h
// (a portable and an AVX-512 form of each); this file runs them over whole tensors.
#include <algorithm>

#include "framework/autograd/node.h"
#include "framework/ops/dropout_batch_shard.h"
#include "framework/ops/dropout_select.h"
#include "framework/ops/matmul_product.h"
#include "framework/ops/mixed_precision.h"
#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "framework/profiler/profiler.h"

namespace attnlab {
namespace {

using dropout_select::DropElement;
using dropout_select::DropWord;
using dropout_select::Epilogue;
using dropout_select::ScaleByMaskWord;

constexpr int64_t kDropoutGroupGrain = 128;  // groups of kDropoutGroup elements per chunk

// in, out (and residual for kResidual): contiguous [count]. Writes out per kEpilogue and
// sets bit i % 64 of keep_bits[i / 64] to element i's mask bit (the other bits of the last
// word are 0), where keep(i) is stream element stream.element_offset + i's. Each group of
// kDropoutGroup elements is one PhiloxBlocks call and two contiguous select loops
// (element by element, dropout was a third of the tiny model's training step); a partial
// last group goes element by element. Chunks are whole groups, so no mask word is shared
// by two threads.
template <Epilogue kEpilogue>
void DropoutForwardKernel(const DropoutStream& stream, float p, float scale, const float* in,
                          const float* residual, float* out, uint64_t* keep_bits, int64_t count) {
  static_assert(kDropoutGroup == 128);
  const int64_t groups = (count + kDropoutGroup - 1) / kDropoutGroup;
  const uint16_t threshold = DropoutThreshold(p);
  // By value: through references, the compiler must reload threshold and scale after
  // every store to out (they might alias) and cannot vectorise the select loop.
  ParallelFor(groups, kDropoutGroupGrain, [=](int64_t begin, int64_t end) {
    DropoutHalves stream_halves(
        stream.seed, stream.first_block,
        stream.element_offset + static_cast<uint64_t>(begin) * kDropoutGroup);
    for (int64_t group = begin; group < end; ++group) {
      const uint16_t* halves = stream_halves.Next();
      const int64_t base = group * kDropoutGroup;
      const float* group_residual = kEpilogue == Epilogue::kResidual ? residual + base : nullptr;
      if (base + kDropoutGroup <= count) {
        keep_bits[2 * group] =
            DropWord<kEpilogue>(halves, threshold, scale, in + base, group_residual, out + base);
        keep_bits[2 * group + 1] = DropWord<kEpilogue>(
            halves + 64, threshold, scale, in + base + 64,
            group_residual == nullptr ? nullptr : group_residual + 64, out + base + 64);
        continue;
      }
      for (int64_t word = 2 * group; word * 64 < count; ++word) keep_bits[word] = 0;
      for (int64_t i = 0; base + i < count; ++i) {
        const bool keep = DropElement<kEpilogue>(halves[i] >= threshold, scale, in + base,
                                                 group_residual, out + base, i);
        keep_bits[(base + i) / 64] |= static_cast<uint64_t>(keep) << ((base + i) % 64);
      }
    }
  });
}

// Backward: grad_in[i] = bit i of keep_bits ? grad_out[i] * scale : 0. Reading the
// forward's mask (1 bit per element) instead of regenerating it from the Philox stream
// makes this a memory-bound pass: regenerating cost as much as the forward.
void DropoutBackwardKernel(const uint64_t* keep_bits, float scale, const float* grad_out,
                           float* grad_in, int64_t count) {
  constexpr int64_t kWordGrain = 256;  // mask words (64 elements each) per chunk
  const int64_t words = (count + 63) / 64;
  ParallelFor(words, kWordGrain, [=](int64_t begin, int64_t end) {
    // Locals, not the closure's members: read through the closure, `scale` and the
    // pointers must be reloaded after every store (they might alias grad_in), and GCC
    // left the loop below scalar (8% of the tiny model's step).
    const float kept_scale = scale;
    const float* __restrict source = grad_out;
    float* __restrict target = grad_in;
    for (int64_t word = begin; word < end; ++word) {
      const uint64_t bits = keep_bits[word];
      const int64_t base = word * 64;
      if (base + 64 <= count) {
        ScaleByMaskWord(bits, kept_scale, source + base, target + base);
      } else {
        for (int64_t i = 0; base + i < count; ++i) {
          target[base + i] = ((bits >> i) & 1) != 0 ? source[base + i] * kept_scale : 0.0f;
        }
      }
    }
  });
}

// What a backward reads: the mask, 1 bit per element, as [ceil(count / 64)] 64-bit words
// stored as twice as many i32 (the tensor dtypes have no 64-bit integer) from the caching
// allocator, and the scale of the kept elements.
struct DropoutMask {
  Tensor keep_bits;
  float scale;

  // x (any strides) times the mask bits times scale: a new contiguous tensor.
  Tensor Apply(const Tensor& x) const {
    const Tensor source = x.is_contiguous() ? x : x.Clone();
    Tensor result = Tensor::Empty(source.shape());
    DropoutBackwardKernel(reinterpret_cast<const uint64_t*>(keep_bits.data<int32_t>()), scale,
                          source.data<float>(), result.data<float>(), result.numel());
    return result;
  }
};

// A forward's result and its mask.
struct Dropped {
  Tensor out;
  DropoutMask mask;
};

// Reserves the call's stream and runs the forward kernel on x (and the residual, null
// but for kResidual), neither of which is recorded here.
template <Epilogue kEpilogue>
Dropped DropForward(std::string_view name, const Tensor* residual, const Tensor& x, float p) {
  ATTNLAB_CHECK(x.dtype() == DType::kF32, name, ": expects f32, got ", x.Describe());
  const Tensor input = x.is_contiguous() ? x : x.Clone();
  Tensor residual_input;
  if (residual != nullptr) {
    ATTNLAB_CHECK(residual->dtype() == DType::kF32, name, ": expects f32, got ",
                  residual->Describe());
    residual_input = residual->is_contiguous() ? *residual : residual->Clone();
  }
  const int64_t count = x.numel();
  const DropoutStream stream = ReserveDropoutStream(x.shape(), name);
  Dropped dropped{Tensor::Empty(x.shape()),
                  {Tensor::Empty({2 * ((count + 63) / 64)}, DType::kI32), 1.0f / (1.0f - p)}};
  DropoutForwardKernel<kEpilogue>(
      stream, p, dropped.mask.scale, input.data<float>(),
      residual == nullptr ? nullptr : residual_input.data<float>(), dropped.out.data<float>(),
      reinterpret_cast<uint64_t*>(dropped.mask.keep_bits.data<int32_t>()), count);
  return dropped;
}

// Dropout, ReluDropout and AddDropout: the forward, and a backward that multiplies the
// gradient by the mask bits times scale (and passes it unchanged to the residual).
template <Epilogue kEpilogue>
Tensor DropoutOp(OpKind kind, const Tensor* residual, const Tensor& x, float p) {
  Dropped dropped = DropForward<kEpilogue>(OpName(kind), residual, x, p);
  const bool record =
      residual == nullptr ? autograd::ShouldRecord({&x}) : autograd::ShouldRecord({residual, &x});
  if (!record) return dropped.out;
  // d(out)/d(x) is the mask times scale; d(out)/d(residual) is the identity.
  const size_t x_index = residual == nullptr ? 0 : 1;
  auto backward = [mask = dropped.mask, x_index](const Tensor& grad, autograd::GradientSink& sink) {
    if (x_index == 1 && sink.NeedsGrad(0)) sink.Add(0, grad);
    if (sink.NeedsGrad(x_index)) sink.Add(x_index, mask.Apply(grad));
  };
  if (residual == nullptr) {
    autograd::Record(kind, dropped.out, {&x}, std::move(backward));
  } else {
    autograd::Record(kind, dropped.out, {residual, &x}, std::move(backward));
  }
  return dropped.out;
}

void CheckProbability(OpKind kind, float p, const Tensor& x) {
  ATTNLAB_CHECK(p >= 0.0f && p < 1.0f, OpName(kind), ": probability ", p, " is outside [0, 1) for ",
                x.Describe());
}

}  // namespace

Tensor Dropout(const Tensor& x, float p, bool training) {
  profiler::OpScope profile(OpKind::kDropout, {&x});
  CheckProbability(OpKind::kDropout, p, x);
  if (!training || p == 0.0f) return x;
  return DropoutOp<Epilogue::kPlain>(OpKind::kDropout, nullptr, x, p);
}

Tensor ReluDropout(const Tensor& x, float p, bool training) {
  CheckProbability(OpKind::kReluDropout, p, x);
  if (!training || p == 0.0f) return Relu(x);
  profiler::OpScope profile(OpKind::kReluDropout, {&x});
  return DropoutOp<Epilogue::kRelu>(OpKind::kReluDropout, nullptr, x, p);
}

Tensor AddDropout(const Tensor& residual, const Tensor& x, float p, bool training) {
  CheckProbability(OpKind::kAddDropout, p, x);
  // No broadcasting, in training or not: a residual shaped otherwise is a bug upstream.
  ATTNLAB_CHECK(residual.shape() == x.shape(), "add_dropout: the residual ", residual.Describe(),
                " must be shaped like ", x.Describe());
  if (!training || p == 0.0f) return residual + x;
  profiler::OpScope profile(OpKind::kAddDropout, {&residual, &x});
  return DropoutOp<Epilogue::kResidual>(OpKind::kAddDropout, &residual, x, p);
}

Tensor DropoutMatmul(const Tensor& weights, const Tensor& value, float p, bool training) {
  CheckProbability(OpKind::kDropoutMatmul, p, weights);
  if (!training || p == 0.0f) return Matmul(weights, value);
  // In mixed precision the composite already keeps the dropped weights as a bf16 copy.
  if (MatmulInputDType() != DType::kF32) return Matmul(Dropout(weights, p, training), value);
  profiler::OpScope profile(OpKind::kDropoutMatmul, {&weights, &value});
  const int64_t rank = weights.rank();
  ATTNLAB_CHECK(
      rank >= 2 && value.rank() == rank && weights.size(-1) == value.size(-2) &&
          std::equal(weights.shape().begin(), weights.shape().end() - 2, value.shape().begin()),
      "dropout_matmul: weights [..., M, K] and value [..., K, N] do not match: ",
      weights.Describe(), " and ", value.Describe());
  if (profile.active()) {
    profile.set_flops(2.0 * static_cast<double>(weights.numel()) *
                      static_cast<double>(value.size(-1)));
  }
  Dropped dropped =
      DropForward<Epilogue::kPlain>(OpName(OpKind::kDropoutMatmul), nullptr, weights, p);
  Tensor out = MatmulProduct(dropped.out, value, false, false);
  if (!autograd::ShouldRecord({&weights, &value})) return out;
  // Backward rebuilds the dropped weights from the weights (which softmax keeps for its
  // own backward) and the mask bits, where the composite keeps them from forward to
  // backward: the same bits, and one [..., M, K] tensor less held.
  //   d(value) = dropped^T G,   d(weights) = mask * scale * (G value^T).
  autograd::Record(
      OpKind::kDropoutMatmul, out, {&weights, &value},
      [mask = dropped.mask, weights = weights.is_contiguous() ? weights.detach() : weights.Clone(),
       value = value.detach()](const Tensor& grad_any, autograd::GradientSink& sink) {
        const Tensor grad = grad_any.is_contiguous() ? grad_any : grad_any.Clone();
        if (sink.NeedsGrad(1)) {
          sink.Add(1, MatmulProduct(mask.Apply(weights), grad, true, false));
        }
        if (sink.NeedsGrad(0)) sink.Add(0, mask.Apply(MatmulProduct(grad, value, false, true)));
      });
  return out;
}

}  // namespace attnlab
