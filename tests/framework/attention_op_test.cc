// Fused scaled-dot-product attention against the composite ops it replaces,
// Matmul(Dropout(Softmax(scale * Matmul(q, k^T), mask), p), v): forward and gradients
// with padding, causal masks (with a query offset), fully masked rows and dropout (the
// same Philox mask), strided inputs, and
// bit-identical results on 1 and 2 threads.
// The plain gradient checks (and 1-vs-2-thread checks) of these ops are cases in the
// table of op cases, op_cases.cc.
#include <cmath>
#include <limits>
#include <vector>

#include "framework/autograd/grad_mode.h"
#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "framework/random/generator.h"
#include "gtest/gtest.h"
#include "tests/support/bit_identical.h"
#include "tests/support/gradcheck.h"
#include "tests/support/thread_counts.h"

namespace attnlab {
namespace {

using testing::AllClose;
using testing::RandomInput;

struct Case {
  int64_t batch, heads, tgt, src, dim;
  bool padded, causal;
  int64_t query_offset;
  float dropout;
};

// f32 [batch, src]: batch b pads its last b keys; with `pad_all_of_last`, the last batch
// pads every key (its rows are fully masked).
Tensor PaddingMask(int64_t batch, int64_t src, bool pad_all_of_last) {
  std::vector<float> values(batch * src, 0.0f);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t s = 0; s < src; ++s) {
      const bool all = pad_all_of_last && b == batch - 1;
      values[b * src + s] = all || s >= src - b ? 1.0f : 0.0f;
    }
  }
  return Tensor::FromFloats(values, {batch, src});
}

// The additive mask [batch or 1, 1, tgt, src] of the composite path: -inf at padding and
// at keys after the query's position.
Tensor AdditiveMask(const Case& c, const Tensor& padding) {
  std::vector<float> values(c.batch * c.tgt * c.src, 0.0f);
  const std::vector<float> pad = c.padded ? padding.ToFloats() : std::vector<float>();
  for (int64_t b = 0; b < c.batch; ++b) {
    for (int64_t t = 0; t < c.tgt; ++t) {
      for (int64_t s = 0; s < c.src; ++s) {
        const bool masked =
            (c.padded && pad[b * c.src + s] != 0.0f) || (c.causal && s > t + c.query_offset);
        if (masked) {
          values[(b * c.tgt + t) * c.src + s] = -std::numeric_limits<float>::infinity();
        }
      }
    }
  }
  return Tensor::FromFloats(values, {c.batch, 1, c.tgt, c.src});
}

Tensor Composite(const Case& c, const Tensor& q, const Tensor& k, const Tensor& v,
                 const Tensor& padding) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.dim));
  const Tensor mask = c.padded || c.causal ? AdditiveMask(c, padding) : Tensor();
  const Tensor weights = Softmax(MulScalar(Matmul(q, k, false, true), scale), mask);
  return Matmul(Dropout(weights, c.dropout, true), v);
}

Tensor Fused(const Case& c, const Tensor& q, const Tensor& k, const Tensor& v,
             const Tensor& padding) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.dim));
  return ScaledDotProductAttention(q, k, v, c.padded ? padding : Tensor(), c.causal, c.query_offset,
                                   scale, c.dropout, /*training=*/true);
}

// Forward and all three gradients of the fused op equal the composite's.
void ExpectFusedEqualsComposite(const Case& c, bool pad_all_of_last) {
  const Tensor padding = PaddingMask(c.batch, c.src, pad_all_of_last);
  Tensor q = RandomInput({c.batch, c.heads, c.tgt, c.dim}, 1);
  Tensor k = RandomInput({c.batch, c.heads, c.src, c.dim}, 2);
  Tensor v = RandomInput({c.batch, c.heads, c.src, c.dim}, 3);
  const Tensor upstream = RandomInput({c.batch, c.heads, c.tgt, c.dim}, 4).detach();

  ManualSeed(5);
  const Tensor composite = Composite(c, q, k, v, padding);
  Sum(Mul(composite, upstream)).backward();
  const Tensor composite_q = q.grad().Clone(), composite_k = k.grad().Clone(),
               composite_v = v.grad().Clone();
  const uint64_t composite_offset = DefaultGenerator().state().offset;
  q.zero_grad();
  k.zero_grad();
  v.zero_grad();

  ManualSeed(5);
  const Tensor fused = Fused(c, q, k, v, padding);
  EXPECT_EQ(DefaultGenerator().state().offset, composite_offset);  // same draws
  Sum(Mul(fused, upstream)).backward();
  EXPECT_TRUE(AllClose(fused, composite, 1e-5)) << "forward";
  EXPECT_TRUE(AllClose(q.grad(), composite_q, 1e-5)) << "query gradient";
  EXPECT_TRUE(AllClose(k.grad(), composite_k, 1e-5)) << "key gradient";
  EXPECT_TRUE(AllClose(v.grad(), composite_v, 1e-5)) << "value gradient";
}

TEST(ScaledDotProductAttentionTest, EqualsCompositeUnmasked) {
  ExpectFusedEqualsComposite({2, 3, 5, 7, 4, false, false, 0, 0.0f}, false);
}

// One query without dropout (a decoding step) takes the path that reads the keys and
// values in place: dims with a tail past 16, padding with a fully masked batch, a causal
// offset, an offset before every key; backward (from that path's log-sum-exp) too.
TEST(ScaledDotProductAttentionTest, OneQueryEqualsComposite) {
  ExpectFusedEqualsComposite({3, 2, 1, 37, 20, true, false, 0, 0.0f}, true);
  ExpectFusedEqualsComposite({2, 2, 1, 9, 64, true, true, 4, 0.0f}, false);
  ExpectFusedEqualsComposite({2, 1, 1, 5, 16, false, true, -1, 0.0f}, false);
}

// The decoding cache hands over keys and values as views of longer buffers.
TEST(ScaledDotProductAttentionTest, OneQueryReadsCacheViews) {
  const Case c{2, 3, 1, 11, 24, false, true, 10, 0.0f};
  const Tensor q = RandomInput({2, 3, 1, 24}, 6);
  const Tensor key_buffer = RandomInput({2, 3, 32, 24}, 7);
  const Tensor value_buffer = RandomInput({2, 3, 32, 24}, 8);
  const Tensor k = key_buffer.narrow(2, 5, 11), v = value_buffer.narrow(2, 5, 11);
  NoGradGuard no_grad;
  EXPECT_TRUE(AllClose(Fused(c, q, k, v, Tensor()),
                       Composite(c, q, k.contiguous(), v.contiguous(), Tensor()), 1e-5));
}

TEST(ScaledDotProductAttentionTest, EqualsCompositeWithPaddingAndFullyMaskedRows) {
  // The last batch pads every key: its rows are 0, with 0 gradient, as Softmax defines.
  ExpectFusedEqualsComposite({3, 2, 4, 6, 8, true, false, 0, 0.0f}, true);
}

TEST(ScaledDotProductAttentionTest, EqualsCompositeCausalWithOffset) {
  ExpectFusedEqualsComposite({2, 2, 6, 6, 4, false, true, 0, 0.0f}, false);
  // Decoding-style: 2 new queries after 4 cached keys.
  ExpectFusedEqualsComposite({2, 2, 2, 6, 4, true, true, 4, 0.0f}, false);
}

TEST(ScaledDotProductAttentionTest, EqualsCompositeWithDropoutMaskForMask) {
  // 2 * 4 * 9 * 11 = 792 weights: groups of 64 that straddle (batch, head) slabs.
  ExpectFusedEqualsComposite({2, 4, 9, 11, 8, true, true, 0, 0.3f}, false);
  ExpectFusedEqualsComposite({2, 4, 24, 24, 32, false, false, 0, 0.1f}, false);
}

// The register-blocked tiles: several tiles of 8 query rows with a partial last one,
// several 16-key blocks with a partial last one, dims past one 32-dim block and not a
// multiple of 16, causal tiles that stop early, and rows whose causal limit is before
// every key of the tile (query_offset -3: the first 3 rows see nothing; -9: the whole
// first tile of 8 rows sees nothing).
TEST(ScaledDotProductAttentionTest, EqualsCompositeAcrossTilesBlocksAndDims) {
  ExpectFusedEqualsComposite({2, 2, 37, 53, 40, true, false, 0, 0.1f}, false);
  ExpectFusedEqualsComposite({1, 2, 19, 40, 64, false, true, 21, 0.0f}, false);
  ExpectFusedEqualsComposite({1, 3, 130, 130, 17, true, true, 0, 0.2f}, false);
  ExpectFusedEqualsComposite({2, 1, 20, 20, 8, false, true, -3, 0.0f}, false);
  ExpectFusedEqualsComposite({2, 1, 20, 20, 8, true, true, -9, 0.1f}, false);
}

TEST(ScaledDotProductAttentionTest, StridedHeadViewsEqualContiguousInputs) {
  // [batch, time, heads, dim] permuted to [batch, heads, time, dim], as a head split.
  const Case c{2, 3, 4, 5, 6, true, false, 0, 0.0f};
  const Tensor padding = PaddingMask(c.batch, c.src, false);
  const Tensor q = Permute(RandomInput({2, 4, 3, 6}, 10), {0, 2, 1, 3});
  const Tensor k = Permute(RandomInput({2, 5, 3, 6}, 11), {0, 2, 1, 3});
  const Tensor v = Permute(RandomInput({2, 5, 3, 6}, 12), {0, 2, 1, 3});
  const Tensor from_views = Fused(c, q.narrow(0, 0, 2), k, v, padding);
  const Tensor from_copies = Fused(c, q.contiguous(), k.contiguous(), v.contiguous(), padding);
  EXPECT_TRUE(AllClose(from_views, from_copies, 0.0));
}

TEST(ScaledDotProductAttentionTest, BitIdenticalOnOneAndTwoThreads) {
  const Case c{3, 4, 16, 16, 8, true, true, 0, 0.2f};
  const Tensor padding = PaddingMask(c.batch, c.src, false);
  const auto run = [&] {
    Tensor q = RandomInput({c.batch, c.heads, c.tgt, c.dim}, 13);
    Tensor k = RandomInput({c.batch, c.heads, c.src, c.dim}, 14);
    Tensor v = RandomInput({c.batch, c.heads, c.src, c.dim}, 15);
    ManualSeed(16);
    const Tensor out = Fused(c, q, k, v, padding);
    Sum(Mul(out, out.detach())).backward();
    std::vector<float> all = out.ToFloats();
    for (const Tensor& g : {q.grad(), k.grad(), v.grad()}) {
      const std::vector<float> values = g.ToFloats();
      all.insert(all.end(), values.begin(), values.end());
    }
    return all;
  };
  EXPECT_TRUE(testing::BitIdentical(testing::OnThreads(1, run), testing::OnThreads(2, run)));
}

TEST(ScaledDotProductAttentionTest, NoDrawsOutsideTrainingAndShapeErrors) {
  const Tensor q = RandomInput({1, 2, 3, 4}, 17), k = RandomInput({1, 2, 5, 4}, 18);
  const uint64_t before = DefaultGenerator().state().offset;
  ScaledDotProductAttention(q, k, k, Tensor(), false, 0, 0.5f, 0.3f, /*training=*/false);
  EXPECT_EQ(DefaultGenerator().state().offset, before);
  EXPECT_THROW(ScaledDotProductAttention(q, k, q, Tensor(), false, 0, 0.5f, 0.0f, true), Error);
  EXPECT_THROW(
      ScaledDotProductAttention(q, k, k, Tensor::Zeros({1, 4}), false, 0, 0.5f, 0.0f, true), Error);
}

}  // namespace
}  // namespace attnlab
