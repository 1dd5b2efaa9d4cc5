// Dropout with a counter-based mask.
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
#include <algorithm>
#include <array>
#include <cstring>

#include "framework/autograd/node.h"
#include "framework/ops/dropout_batch_shard.h"
#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "framework/profiler/profiler.h"

namespace attnlab {
namespace {

constexpr int64_t kDropoutGroupGrain = 128;  // groups of kDropoutGroup elements per chunk

// The mask moves between a word and bytes 8 at a time, so that the select loops over
// bytes vectorise (a loop testing bit i of a word does not: dropout got 1.8x slower).
//
// bytes[0..64) in {0, 1} -> a word with bit i = bytes[i]. The multiply gathers the low
// bit of each of 8 bytes into the top byte of the product (byte k lands on bit 56 + k).
uint64_t PackKeepBytes(const uint8_t* bytes) {
  constexpr uint64_t kGather = 0x0102040810204080ULL;
  uint64_t bits = 0;
  for (int group = 0; group < 8; ++group) {
    uint64_t eight;
    std::memcpy(&eight, bytes + 8 * group, 8);
    bits |= ((eight * kGather) >> 56) << (8 * group);
  }
  return bits;
}

// The inverse: bytes[i] = bit i of `bits`, through a table of the 256 byte patterns.
constexpr std::array<uint64_t, 256> MakeByteExpansionTable() {
  std::array<uint64_t, 256> table{};
  for (uint64_t pattern = 0; pattern < 256; ++pattern) {
    for (int bit = 0; bit < 8; ++bit) table[pattern] |= ((pattern >> bit) & 1) << (8 * bit);
  }
  return table;
}
constexpr std::array<uint64_t, 256> kByteExpansion = MakeByteExpansionTable();

void UnpackKeepBits(uint64_t bits, uint8_t* bytes) {
  for (int group = 0; group < 8; ++group) {
    std::memcpy(bytes + 8 * group, &kByteExpansion[(bits >> (8 * group)) & 0xFF], 8);
  }
}

// One mask word's 64 elements: out[i] = keep(i) ? in[i] * scale : 0 with keep(i) =
// halves[i] >= threshold; returns the word, bit i set iff keep(i).
inline uint64_t DropGroup(const uint16_t* __restrict halves, uint16_t threshold, float scale,
                          const float* __restrict in, float* __restrict out) {
  alignas(64) uint8_t keep_bytes[64];
  for (int i = 0; i < 64; ++i) {
    const bool keep = halves[i] >= threshold;
    keep_bytes[i] = keep;
    out[i] = keep ? in[i] * scale : 0.0f;
  }
  return PackKeepBytes(keep_bytes);
}

// in, out: contiguous [count]. out[i] = keep(i) ? in[i] * scale : 0, and bit i % 64 of
// keep_bits[i / 64] set iff keep(i) (the other bits of the last word are 0), where keep(i)
// is stream element stream.element_offset + i's. Each group of kDropoutGroup elements is
// one PhiloxBlocks call and two contiguous select loops (element by element, dropout was
// a third of the tiny model's training step); a partial last group goes element by
// element. Chunks are whole groups, so no mask word is shared by two threads.
void DropoutForwardKernel(const DropoutStream& stream, float p, float scale, const float* in,
                          float* out, uint64_t* keep_bits, int64_t count) {
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
      if (base + kDropoutGroup <= count) {
        keep_bits[2 * group] = DropGroup(halves, threshold, scale, in + base, out + base);
        keep_bits[2 * group + 1] =
            DropGroup(halves + 64, threshold, scale, in + base + 64, out + base + 64);
        continue;
      }
      for (int64_t word = 2 * group; word * 64 < count; ++word) keep_bits[word] = 0;
      for (int64_t i = base; i < count; ++i) {
        const bool keep = halves[i - base] >= threshold;
        keep_bits[i / 64] |= static_cast<uint64_t>(keep) << (i % 64);
        out[i] = keep ? in[i] * scale : 0.0f;
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
        alignas(64) uint8_t keep_bytes[64];
        UnpackKeepBits(bits, keep_bytes);
        for (int i = 0; i < 64; ++i) {
          target[base + i] = keep_bytes[i] != 0 ? source[base + i] * kept_scale : 0.0f;
        }
      } else {
        for (int64_t i = 0; base + i < count; ++i) {
          target[base + i] = ((bits >> i) & 1) != 0 ? source[base + i] * kept_scale : 0.0f;
        }
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
  const DropoutStream stream = ReserveDropoutStream(x.shape(), "dropout");
  const float scale = 1.0f / (1.0f - p);
  Tensor out = Tensor::Empty(x.shape());
  // The keep mask, 1 bit per element: [ceil(count / 64)] 64-bit words, stored as twice
  // as many i32 (the tensor dtypes have no 64-bit integer) from the caching allocator.
  const int64_t mask_words = (count + 63) / 64;
  Tensor keep_bits = Tensor::Empty({2 * mask_words}, DType::kI32);
  DropoutForwardKernel(stream, p, scale, input.data<float>(), out.data<float>(),
                       reinterpret_cast<uint64_t*>(keep_bits.data<int32_t>()), count);
  if (autograd::ShouldRecord({&x})) {
    // d(out)/d(x) is the same mask times scale.
    autograd::Record(OpKind::kDropout, out, {&x},
                     [keep_bits, scale](const Tensor& grad, autograd::GradientSink& sink) {
                       const Tensor grad_out = grad.is_contiguous() ? grad : grad.Clone();
                       Tensor grad_in = Tensor::Empty(grad.shape());
                       DropoutBackwardKernel(
                           reinterpret_cast<const uint64_t*>(keep_bits.data<int32_t>()), scale,
                           grad_out.data<float>(), grad_in.data<float>(), grad_in.numel());
                       sink.Add(0, grad_in);
                     });
  }
  return out;
}

}  // namespace attnlab
