// Dropout with a counter-based mask.
//
// Each call reserves ceil(numel / 4) Philox blocks from the default generator. Element i
// is kept iff UniformFloat(word i % 4 of block first + i / 4) >= p, so the mask depends
// only on (seed, first block, i): it is the same for any thread count. Forward keeps the
// mask as 1 bit per element (1/32 of the input's bytes) for backward to read.
//
// On a batch shard (dropout_batch_shard.h) the call reserves the global tensor's blocks
// and element i is keyed by its global index g = element_offset + i instead. When
// element_offset is a multiple of 4 (rows of a multiple of 4 elements, or an even first
// row of rows of 2 mod 4), that is the same kernel from block first + element_offset / 4;
// otherwise local groups of 64 straddle Philox blocks and a sliding-window kernel
// handles them.
#include <algorithm>
#include <array>
#include <cstring>

#include "framework/autograd/node.h"
#include "framework/ops/dropout_batch_shard.h"
#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "framework/profiler/profiler.h"
#include "framework/random/philox.h"

namespace attnlab {
namespace {

constexpr int64_t kDropoutBlockGrain = 4096;  // Philox blocks (4 elements each) per chunk

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
// UniformFloat(words[i]) >= p; returns the word, bit i set iff keep(i).
inline uint64_t DropGroup(const uint32_t* __restrict words, float p, float scale,
                          const float* __restrict in, float* __restrict out) {
  alignas(64) uint8_t keep_bytes[64];
  for (int i = 0; i < 64; ++i) {
    const bool keep = UniformFloat(words[i]) >= p;
    keep_bytes[i] = keep;
    out[i] = keep ? in[i] * scale : 0.0f;
  }
  return PackKeepBytes(keep_bytes);
}

// in, out: contiguous [count]. out[i] = keep(i) ? in[i] * scale : 0, with keep(i) drawn
// from word i % 4 of block first_block + i / 4, and bit i % 64 of keep_bits[i / 64] set
// iff keep(i) (the other bits of the last word are 0). Whole groups of kPhiloxLanes
// blocks (64 elements, one mask word) go through the vectorised PhiloxBlocks and a
// contiguous select loop (block by block, dropout was a third of the tiny model's
// training step); the last partial group and a partial last block go block by block.
// Chunks start at multiples of kDropoutBlockGrain blocks, so no mask word is shared by
// two threads.
void AlignedDropoutForwardKernel(uint64_t seed, uint64_t first_block, float p, float scale,
                                 const float* in, float* out, uint64_t* keep_bits, int64_t count) {
  static_assert(4 * kPhiloxLanes == 64 && kDropoutBlockGrain % kPhiloxLanes == 0);
  const int64_t blocks = (count + 3) / 4;
  const int64_t full_blocks = count / 4;
  // By value: through references, the compiler must reload p and scale after every store
  // to out (they might alias) and cannot vectorise the select loop.
  ParallelFor(blocks, kDropoutBlockGrain, [=](int64_t begin, int64_t end) {
    int64_t block = begin;
    PhiloxWords words;
    for (; block + kPhiloxLanes <= std::min(end, full_blocks); block += kPhiloxLanes) {
      PhiloxBlocks(seed, first_block + static_cast<uint64_t>(block), words);
      keep_bits[block / kPhiloxLanes] =
          DropGroup(words.data(), p, scale, in + block * 4, out + block * 4);
    }
    if (block < end) keep_bits[block / kPhiloxLanes] = 0;  // the partial last word
    for (; block < end; ++block) {
      const PhiloxCounter block_words = PhiloxBlock(seed, first_block + block);
      const int64_t base = block * 4;
      for (int64_t word = 0; word < 4 && base + word < count; ++word) {
        const int64_t i = base + word;
        const bool keep = UniformFloat(block_words[word]) >= p;
        keep_bits[i / 64] |= static_cast<uint64_t>(keep) << (i % 64);
        out[i] = keep ? in[i] * scale : 0.0f;
      }
    }
  });
}

// The same when local element i is stream word lag + i of block first_block onwards,
// lag in {1, 2, 3} (a batch shard whose first element is inside a Philox block): mask
// word w's elements are words [lag, lag + 64) of the 32 blocks from first_block + 16 w.
// Consecutive mask words share 16 of those blocks, so a sliding window of two
// PhiloxBlocks results costs one PhiloxBlocks per mask word, as the aligned kernel,
// plus one per chunk and a 256-byte copy per word. Chunks are whole mask words.
void ShiftedDropoutForwardKernel(uint64_t seed, uint64_t first_block, int64_t lag, float p,
                                 float scale, const float* in, float* out, uint64_t* keep_bits,
                                 int64_t count) {
  constexpr int64_t kWordGrain = kDropoutBlockGrain / kPhiloxLanes;
  const int64_t words = (count + 63) / 64;
  const int64_t full_words = count / 64;
  ParallelFor(words, kWordGrain, [=](int64_t begin, int64_t end) {
    alignas(64) std::array<uint32_t, 2 * 64> window;  // blocks [16 w, 16 w + 32)
    PhiloxWords next;
    int64_t word = begin;
    const int64_t full_end = std::min(end, full_words);
    if (word < full_end) {
      PhiloxBlocks(seed, first_block + static_cast<uint64_t>(word) * kPhiloxLanes, next);
      std::copy(next.begin(), next.end(), window.begin() + 64);
    }
    for (; word < full_end; ++word) {
      std::copy_n(window.begin() + 64, 64, window.begin());
      PhiloxBlocks(seed, first_block + static_cast<uint64_t>(word + 1) * kPhiloxLanes, next);
      std::copy(next.begin(), next.end(), window.begin() + 64);
      keep_bits[word] = DropGroup(window.data() + lag, p, scale, in + word * 64, out + word * 64);
    }
    for (; word < end; ++word) {  // the partial last word, element by element
      uint64_t bits = 0;
      for (int64_t i = word * 64; i < count; ++i) {
        const uint64_t position = static_cast<uint64_t>(lag + i);
        const bool keep =
            UniformFloat(PhiloxBlock(seed, first_block + position / 4)[position % 4]) >= p;
        bits |= static_cast<uint64_t>(keep) << (i % 64);
        out[i] = keep ? in[i] * scale : 0.0f;
      }
      keep_bits[word] = bits;
    }
  });
}

// Dispatches on where local element 0 falls in the stream.
void DropoutForwardKernel(const DropoutStream& stream, float p, float scale, const float* in,
                          float* out, uint64_t* keep_bits, int64_t count) {
  const uint64_t first_block = stream.first_block + stream.element_offset / 4;
  const int64_t lag = static_cast<int64_t>(stream.element_offset % 4);
  if (lag == 0) {
    AlignedDropoutForwardKernel(stream.seed, first_block, p, scale, in, out, keep_bits, count);
  } else {
    ShiftedDropoutForwardKernel(stream.seed, first_block, lag, p, scale, in, out, keep_bits, count);
  }
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
