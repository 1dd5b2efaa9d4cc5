// Dropout: the keep rate, exact scaling, the mask's dependence on (seed, offset) only
// (same seed -> same mask, bit-identical on 1 and 2 threads), backward applying the
// forward mask, and identity in eval mode or with p = 0.
// The plain gradient checks (and 1-vs-2-thread checks) of these ops are cases in the
// table of op cases, op_cases.cc.
#include <cstring>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "framework/ops/dropout_batch_shard.h"
#include "framework/ops/dropout_stream.h"
#include "framework/ops/mixed_precision.h"
#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "framework/random/generator.h"
#include "framework/random/philox.h"
#include "framework/tensor/allocator.h"
#include "gtest/gtest.h"
#include "tests/support/bit_identical.h"
#include "tests/support/gradcheck.h"
#include "tests/support/thread_counts.h"

namespace attnlab {
namespace {

using testing::AllClose;
using testing::RandomInput;

// A tensor's values as bit patterns, for comparisons that must be bit for bit.
std::vector<uint32_t> Bits(const Tensor& t) {
  const std::vector<float> values = t.ToFloats();
  std::vector<uint32_t> words(values.size());
  std::memcpy(words.data(), values.data(), values.size() * sizeof(float));
  return words;
}

TEST(DropoutTest, KeepsAboutOneMinusPOfTheElements) {
  ManualSeed(1);
  const Tensor x = Tensor::Full({100000}, 1.0f);
  for (float p : {0.1f, 0.3f, 0.5f, 0.9f}) {
    const std::vector<float> out = Dropout(x, p, /*training=*/true).ToFloats();
    int64_t kept = 0;
    for (float v : out) kept += v != 0.0f;
    EXPECT_NEAR(static_cast<double>(kept) / out.size(), 1.0 - p, 0.01) << "p = " << p;
  }
}

TEST(DropoutTest, KeptValuesAreScaledExactly) {
  ManualSeed(2);
  const Tensor x = RandomInput({37, 29}, 3, 0.5f, 2.0f);  // no zeros in x
  const float p = 0.3f;
  const float scale = 1.0f / (1.0f - p);
  const std::vector<float> in = x.ToFloats();
  const std::vector<float> out = Dropout(x, p, true).ToFloats();
  int64_t kept = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    if (out[i] == 0.0f) continue;
    ++kept;
    EXPECT_EQ(out[i], in[i] * scale) << "element " << i;
  }
  EXPECT_GT(kept, 0);
  EXPECT_LT(kept, static_cast<int64_t>(in.size()));
}

TEST(DropoutTest, MaskFollowsThePhiloxStreamElementByElement) {
  // Element i keeps iff the 16-bit half i % 2 of word (i / 2) % 4 of block first + i / 8
  // is >= round(65536 p), and a call reserves ceil(numel / 8) blocks; 11 elements leave a
  // partial last block.
  ManualSeed(4);
  const uint64_t first = DefaultGenerator().state().offset;
  const float p = 0.5f;
  const uint16_t threshold = 32768;
  EXPECT_EQ(DropoutThreshold(p), threshold);
  const Tensor x = Tensor::Full({11}, 1.0f);
  const std::vector<float> out = Dropout(x, p, true).ToFloats();
  EXPECT_EQ(DefaultGenerator().state().offset, first + 2);
  for (int64_t i = 0; i < 11; ++i) {
    const uint32_t word = PhiloxBlock(4, first + i / 8)[(i / 2) % 4];
    const uint16_t half = i % 2 == 0 ? word & 0xFFFF : word >> 16;
    EXPECT_EQ(out[i], half >= threshold ? 2.0f : 0.0f) << "element " << i;
    EXPECT_EQ(DropoutKeeps(4, first, i, threshold), half >= threshold) << "element " << i;
  }
  // The next call continues the stream after the reserved blocks.
  const std::vector<float> next = Dropout(x, p, true).ToFloats();
  EXPECT_EQ(DefaultGenerator().state().offset, first + 4);
  for (int64_t i = 0; i < 11; ++i) {
    EXPECT_EQ(next[i], DropoutKeeps(4, first + 2, i, threshold) ? 2.0f : 0.0f) << "element " << i;
  }
}

// The threshold is p rounded to a multiple of 1/65536, at most 65535.
TEST(DropoutTest, ThresholdIsPRoundedToSixteenBits) {
  EXPECT_EQ(DropoutThreshold(0.0f), 0);
  EXPECT_EQ(DropoutThreshold(0.1f), 6554);  // 6553.6
  EXPECT_EQ(DropoutThreshold(0.25f), 16384);
  EXPECT_EQ(DropoutThreshold(0.9999f), 65529);      // 65529.4
  EXPECT_EQ(DropoutThreshold(0.99999994f), 65535);  // the largest float below 1
}

// The known-answer vectors of Philox4x32-10 published with Random123 (kat_vectors):
// counter, key -> the four output words.
TEST(PhiloxTest, MatchesRandom123KnownAnswers) {
  EXPECT_EQ(Philox4x32({0, 0, 0, 0}, {0, 0}),
            (PhiloxCounter{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(Philox4x32({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
            (PhiloxCounter{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(Philox4x32({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
            (PhiloxCounter{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

// Whole groups of 16 blocks go through the vectorised PhiloxBlocks: every word of both
// its bodies (the AVX-512 one where the build has AVX-512, and the portable one) must be
// PhiloxBlock's, including when the block counter carries into its high word or wraps.
void ExpectSixteenBlocksEqualOneBlockAtATime(void (*blocks)(uint64_t, uint64_t, PhiloxWords&)) {
  for (const uint64_t seed : {uint64_t{0}, uint64_t{4}, uint64_t{0x123456789abcdefULL}}) {
    for (const uint64_t first :
         {uint64_t{0}, uint64_t{7}, uint64_t{0xFFFFFFF8ULL}, uint64_t{0xFFFFFFFFFFFFFFF9ULL}}) {
      PhiloxWords words;
      blocks(seed, first, words);
      for (int lane = 0; lane < kPhiloxLanes; ++lane) {
        const PhiloxCounter expected = PhiloxBlock(seed, first + lane);
        for (int word = 0; word < 4; ++word) {
          EXPECT_EQ(words[4 * lane + word], expected[word])
              << "seed " << seed << " block " << first + lane << " word " << word;
        }
      }
    }
  }
}

TEST(PhiloxTest, SixteenBlocksAtOnceEqualOneBlockAtATime) {
  ExpectSixteenBlocksEqualOneBlockAtATime(PhiloxBlocks);
  ExpectSixteenBlocksEqualOneBlockAtATime(PhiloxBlocksPortable);
#if defined(__AVX512F__)
  ExpectSixteenBlocksEqualOneBlockAtATime(PhiloxBlocksAvx512);
#endif
}

// DropoutHalves serves any start, aligned to a group of 128 or not: its k-th group holds
// the halves of stream elements [start + 128 k, start + 128 (k + 1)).
TEST(DropoutTest, StreamHalvesFromAnyStartAreTheDefinitions) {
  const uint64_t seed = 0x123456789ULL, first_block = 0xFFFFFFF0ULL;  // carries into the high word
  for (const uint64_t start : {0, 1, 7, 8, 127, 128, 300}) {
    DropoutHalves halves(seed, first_block, start);
    int64_t mismatches = 0;
    for (int group = 0; group < 3; ++group) {
      const uint16_t* values = halves.Next();
      for (int64_t i = 0; i < kDropoutGroup; ++i) {
        const uint64_t g = start + group * kDropoutGroup + i;
        const uint32_t word = PhiloxBlock(seed, first_block + g / 8)[(g / 2) % 4];
        mismatches += values[i] != static_cast<uint16_t>(g % 2 == 0 ? word : word >> 16);
      }
    }
    EXPECT_EQ(mismatches, 0) << "start " << start;
  }
}

// A tensor spanning several parallel chunks (128 groups of 128 elements each), whole
// groups, a partial group and a partial last block, from an odd offset, on 2 threads.
TEST(DropoutTest, LongTensorsFollowThePhiloxStreamElementByElement) {
  const testing::ThreadCountRestorer restore_threads;
  SetNumThreads(2);
  ManualSeed(9);
  Dropout(Tensor::Full({3}, 1.0f), 0.5f, true);  // moves the stream to an odd block
  const uint64_t first = DefaultGenerator().state().offset;
  const int64_t count = 2 * 16384 + 128 * 3 + 64 + 11;
  const float p = 0.3f, scale = 1.0f / (1.0f - p);
  const Tensor x = RandomInput({count}, 10);
  const std::vector<float> in = x.ToFloats();
  const std::vector<float> out = Dropout(x, p, true).ToFloats();
  int64_t mismatches = 0;
  for (int64_t i = 0; i < count; ++i) {
    const bool keep = DropoutKeeps(9, first, i, DropoutThreshold(p));
    if (out[i] != (keep ? in[i] * scale : 0.0f)) ++mismatches;
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(DropoutTest, SameSeedGivesSameMaskAndTheStreamMovesOn) {
  const Tensor x = RandomInput({64, 33}, 5);
  ManualSeed(6);
  const std::vector<float> first = Dropout(x, 0.4f, true).ToFloats();
  const std::vector<float> second = Dropout(x, 0.4f, true).ToFloats();
  ManualSeed(6);
  const std::vector<float> replay = Dropout(x, 0.4f, true).ToFloats();
  EXPECT_EQ(first, replay);
  EXPECT_NE(first, second);
  ManualSeed(7);
  EXPECT_NE(Dropout(x, 0.4f, true).ToFloats(), first);
}

// Backward reads the forward's bit mask: check every element for sizes with a partial
// last block (7), exactly one mask word (64), a partial last word (1001 = 15 * 64 + 41)
// and several parallel chunks of 16384 elements plus a partial word, on 2 threads.
TEST(DropoutTest, BackwardAppliesTheForwardMask) {
  const testing::ThreadCountRestorer restore_threads;
  SetNumThreads(2);
  ManualSeed(8);
  const float p = 0.25f;
  for (const int64_t count : {int64_t{7}, int64_t{64}, int64_t{1001}, int64_t{2 * 16384 + 71}}) {
    Tensor x = RandomInput({count}, 9, 0.5f, 2.0f);  // no zeros: a zero output means dropped
    const Tensor out = Dropout(x, p, true);
    // Draw from the generator between forward and backward: backward must not care.
    Dropout(Tensor::Full({100}, 1.0f), 0.5f, true);
    const Tensor upstream = RandomInput({count}, 10, 0.5f, 2.0f).detach();
    Sum(Mul(out, upstream)).backward();
    const std::vector<float> forward = out.ToFloats(), grad = x.grad().ToFloats();
    const std::vector<float> upstream_values = upstream.ToFloats();
    int64_t mismatches = 0, kept = 0;
    for (int64_t i = 0; i < count; ++i) {
      kept += forward[i] != 0.0f;
      const float expected = forward[i] != 0.0f ? upstream_values[i] * (1.0f / (1.0f - p)) : 0.0f;
      mismatches += grad[i] != expected;
    }
    EXPECT_EQ(mismatches, 0) << "count " << count;
    if (count >= 64) {
      EXPECT_GT(kept, 0) << "count " << count;
      EXPECT_LT(kept, count) << "count " << count;
    }
  }
}

TEST(DropoutTest, IdentityInEvalModeAndWithZeroP) {
  const Tensor x = RandomInput({4, 5}, 11);
  const GeneratorState before = DefaultGenerator().state();
  const Tensor eval = Dropout(x, 0.5f, /*training=*/false);
  EXPECT_EQ(eval.impl(), x.impl());
  EXPECT_EQ(eval.grad_fn(), nullptr);
  const Tensor zero_p = Dropout(x, 0.0f, true);
  EXPECT_EQ(zero_p.impl(), x.impl());
  EXPECT_EQ(DefaultGenerator().state().offset, before.offset);  // no numbers drawn
}

TEST(DropoutTest, ProbabilityOutsideZeroOneIsAnError) {
  const Tensor x = Tensor::Full({3}, 1.0f);
  EXPECT_THROW(Dropout(x, -0.1f, true), Error);
  EXPECT_THROW(Dropout(x, 1.0f, true), Error);
  EXPECT_THROW(Dropout(x, 1.5f, false), Error);
}

TEST(DropoutTest, BitIdenticalOnOneAndTwoThreads) {
  // Odd size, many parallel chunks.
  const Tensor x = RandomInput({100003}, 12);
  // The output, then the input's gradient.
  const auto run = [&] {
    Tensor input = x.detach().Clone();
    input.set_requires_grad(true);
    ManualSeed(13);
    const Tensor y = Dropout(input, 0.3f, true);
    Sum(Mul(y, x.detach())).backward();
    std::vector<float> values = y.ToFloats();
    const std::vector<float> grad = input.grad().ToFloats();
    values.insert(values.end(), grad.begin(), grad.end());
    return values;
  };
  EXPECT_TRUE(testing::BitIdentical(testing::OnThreads(1, run), testing::OnThreads(2, run)));
}

TEST(DropoutTest, StridedInput) {
  const Tensor wide = RandomInput({6, 10}, 14, 0.5f, 2.0f);
  const Tensor window = wide.narrow(1, 3, 5);
  ManualSeed(15);
  const Tensor from_view = Dropout(window, 0.5f, true);
  ManualSeed(15);
  const Tensor from_copy = Dropout(window.contiguous(), 0.5f, true);
  EXPECT_TRUE(AllClose(from_view, from_copy, 0.0));
}

// The fused forms give bit for bit what the composite gives from the same generator
// state (forward, both gradients, and where the stream is left), for a partial block,
// a partial mask word and several parallel chunks, on 1 and 2 threads and on a batch
// shard. ReLU's inputs include negatives and zeros. Gradients are compared as floats:
// where ReLU or the mask zeroes one, the composite's product may be -0 and the fused +0.
TEST(FusedDropoutTest, EqualTheCompositeBitForBit) {
  const testing::ThreadCountRestorer restore_threads;
  struct Result {
    std::vector<uint32_t> out;
    std::vector<float> grad_x, grad_residual;
    uint64_t offset;
  };
  const auto run = [&](bool fused, bool relu, const Tensor& x_value, const Tensor& r_value,
                       const Tensor& upstream) {
    Tensor x = x_value.detach().Clone(), residual = r_value.detach().Clone();
    x.set_requires_grad(true);
    residual.set_requires_grad(true);
    ManualSeed(21);
    Dropout(Tensor::Full({3}, 1.0f), 0.5f, true);  // start from an odd block
    const float p = 0.3f;
    Tensor out;
    if (relu) {
      out = fused ? ReluDropout(x, p, true) : Dropout(Relu(x), p, true);
    } else {
      out = fused ? AddDropout(residual, x, p, true) : residual + Dropout(x, p, true);
    }
    Result result{Bits(out), {}, {}, DefaultGenerator().state().offset};
    Sum(Mul(out, upstream)).backward();
    result.grad_x = x.grad().ToFloats();
    if (!relu) result.grad_residual = residual.grad().ToFloats();
    return result;
  };
  for (const int threads : {1, 2}) {
    SetNumThreads(threads);
    for (const int64_t count : {int64_t{7}, int64_t{1001}, int64_t{2 * 16384 + 71}}) {
      Tensor x = RandomInput({count}, 22, -1.0f, 1.0f);
      std::vector<float> values = x.ToFloats();
      for (int64_t i = 0; i < count; i += 5) values[i] = 0.0f;  // ReLU's kink
      x = Tensor::FromFloats(values, {count});
      const Tensor residual = RandomInput({count}, 23);
      const Tensor upstream = RandomInput({count}, 24).detach();
      for (const bool relu : {true, false}) {
        const Result composite = run(false, relu, x, residual, upstream);
        const Result fused = run(true, relu, x, residual, upstream);
        const std::string what =
            absl::StrCat(relu ? "relu" : "add", " count ", count, " threads ", threads);
        EXPECT_EQ(fused.out, composite.out) << what;
        EXPECT_EQ(fused.grad_x, composite.grad_x) << what;
        EXPECT_EQ(fused.grad_residual, composite.grad_residual) << what;
        EXPECT_EQ(fused.offset, composite.offset) << what;
      }
    }
  }
  // On rows [1, 3) of a batch of 4, the fused forms draw those rows' masks, as Dropout.
  const Tensor x = RandomInput({2, 37}, 25, -1.0f, 1.0f);
  const Tensor residual = RandomInput({2, 37}, 26);
  DropoutBatchShard shard(1, 2, 4);
  ManualSeed(27);
  const Tensor relu_composite = Dropout(Relu(x), 0.4f, true);
  const Tensor add_composite = residual + Dropout(x, 0.4f, true);
  ManualSeed(27);
  EXPECT_EQ(Bits(ReluDropout(x, 0.4f, true)), Bits(relu_composite));
  EXPECT_EQ(Bits(AddDropout(residual, x, 0.4f, true)), Bits(add_composite));
}

TEST(FusedDropoutTest, PlainOpsInEvalModeAndWithZeroP) {
  const Tensor x = RandomInput({4, 5}, 28, -1.0f, 1.0f);
  const Tensor residual = RandomInput({4, 5}, 29);
  const uint64_t before = DefaultGenerator().state().offset;
  for (const auto& [p, training] : {std::pair{0.5f, false}, std::pair{0.0f, true}}) {
    EXPECT_TRUE(AllClose(ReluDropout(x, p, training), Relu(x), 0.0));
    EXPECT_TRUE(AllClose(AddDropout(residual, x, p, training), residual + x, 0.0));
  }
  EXPECT_EQ(DefaultGenerator().state().offset, before);  // no numbers drawn
}

TEST(FusedDropoutTest, BadArgumentsAreErrors) {
  const Tensor x = Tensor::Full({2, 3}, 1.0f);
  EXPECT_THROW(ReluDropout(x, 1.0f, true), Error);
  EXPECT_THROW(AddDropout(x, x, -0.1f, false), Error);
  // No broadcasting, in training or not: the residual must be shaped like x.
  EXPECT_THROW(AddDropout(Tensor::Full({3}, 1.0f), x, 0.1f, true), Error);
  EXPECT_THROW(AddDropout(Tensor::Full({3}, 1.0f), x, 0.1f, false), Error);
  EXPECT_THROW(AddDropout(Tensor::Full({3, 2}, 1.0f), x, 0.1f, true), Error);
}

// DropoutMatmul(w, v) = Matmul(Dropout(w), v): the same output, gradients and stream
// position bit for bit, on 1 and 2 threads, batched like attention's weights and values
// and with a strided value; between forward and backward it holds one dropped copy of
// the weights less.
TEST(DropoutMatmulTest, EqualsTheCompositeBitForBitAndKeepsLess) {
  const testing::ThreadCountRestorer restore_threads;
  struct Result {
    std::vector<uint32_t> out, grad_weights, grad_value;
    uint64_t offset;
    size_t held_bytes;  // allocated between forward and backward
  };
  const auto run = [&](bool fused, const Tensor& w_value, const Tensor& v_value, bool strided,
                       const Tensor& upstream) {
    Tensor w = w_value.detach().Clone(), v = v_value.detach().Clone();
    w.set_requires_grad(true);
    v.set_requires_grad(true);
    const Tensor value = strided ? Transpose(v, -1, -2) : v;
    ManualSeed(31);
    Dropout(Tensor::Full({3}, 1.0f), 0.5f, true);  // start from an odd block
    const size_t before = CachingAllocator::Global().Stats().current_bytes;
    Tensor out =
        fused ? DropoutMatmul(w, value, 0.25f, true) : Matmul(Dropout(w, 0.25f, true), value);
    Tensor loss = Sum(Mul(out, upstream));
    Result result{Bits(out),
                  {},
                  {},
                  DefaultGenerator().state().offset,
                  CachingAllocator::Global().Stats().current_bytes - before};
    loss.backward();
    result.grad_weights = Bits(w.grad());
    result.grad_value = Bits(v.grad());
    return result;
  };
  for (const int threads : {1, 2}) {
    SetNumThreads(threads);
    for (const auto& [w_shape, v_shape, strided] :
         {std::tuple{Shape{5, 7}, Shape{7, 3}, false},
          std::tuple{Shape{2, 3, 5, 9}, Shape{2, 3, 4, 9}, true},
          std::tuple{Shape{4, 8, 64, 64}, Shape{4, 8, 64, 64}, false}}) {
      const Tensor w = RandomInput(w_shape, 32, 0.0f, 1.0f);
      const Tensor v = RandomInput(v_shape, 33);
      const Shape out_shape = [&] {
        Shape shape(w_shape.begin(), w_shape.end() - 1);
        shape.push_back(strided ? v_shape[v_shape.size() - 2] : v_shape.back());
        return shape;
      }();
      const Tensor upstream = RandomInput(out_shape, 34).detach();
      const Result composite = run(false, w, v, strided, upstream);
      const Result fused = run(true, w, v, strided, upstream);
      const std::string what = absl::StrCat(w.Describe(), " threads ", threads);
      EXPECT_EQ(fused.out, composite.out) << what;
      EXPECT_EQ(fused.grad_weights, composite.grad_weights) << what;
      EXPECT_EQ(fused.grad_value, composite.grad_value) << what;
      EXPECT_EQ(fused.offset, composite.offset) << what;
      if (w.numel() >= 1024) {  // the dropped weights' storage (one size class) is not held
        EXPECT_EQ(composite.held_bytes - fused.held_bytes,
                  CachingAllocator::SizeClass(w.numel() * sizeof(float)))
            << what;
      }
    }
  }
}

TEST(DropoutMatmulTest, PlainProductInEvalModeWithZeroPAndInMixedPrecision) {
  const Tensor w = RandomInput({2, 4, 5}, 35, 0.0f, 1.0f);
  const Tensor v = RandomInput({2, 5, 3}, 36);
  const uint64_t before = DefaultGenerator().state().offset;
  for (const auto& [p, training] : {std::pair{0.5f, false}, std::pair{0.0f, true}}) {
    EXPECT_TRUE(AllClose(DropoutMatmul(w, v, p, training), Matmul(w, v), 0.0));
  }
  EXPECT_EQ(DefaultGenerator().state().offset, before);  // no numbers drawn
  if (!CheckMatmulInputDType(DType::kBF16).ok()) GTEST_SKIP() << "no native bf16 here";
  MixedPrecision bf16(DType::kBF16);
  ManualSeed(37);
  const Tensor composite = Matmul(Dropout(w, 0.5f, true), v);
  ManualSeed(37);
  EXPECT_TRUE(AllClose(DropoutMatmul(w, v, 0.5f, true), composite, 0.0));
}

TEST(DropoutMatmulTest, BadArgumentsAreErrors) {
  const Tensor w = Tensor::Full({2, 3, 4}, 0.25f);
  EXPECT_THROW(DropoutMatmul(w, Tensor::Full({2, 4, 5}, 1.0f), 1.0f, true), Error);
  EXPECT_THROW(DropoutMatmul(w, Tensor::Full({2, 5, 5}, 1.0f), 0.1f, true), Error);  // K
  EXPECT_THROW(DropoutMatmul(w, Tensor::Full({3, 4, 5}, 1.0f), 0.1f, true), Error);  // batch
  EXPECT_THROW(DropoutMatmul(w, Tensor::Full({4, 5}, 1.0f), 0.1f, true), Error);     // rank
  const uint64_t before = DefaultGenerator().state().offset;
  EXPECT_THROW(DropoutMatmul(w, Tensor::Full({2, 5, 5}, 1.0f), 0.1f, true), Error);
  EXPECT_EQ(DefaultGenerator().state().offset, before);  // refused before drawing
}

}  // namespace
}  // namespace attnlab
