// Positional encodings: the registry (names, unknown-name error), sinusoidal values
// against the paper's formula and its non-persistent buffer, offsets for incremental
// decoding, the learned table's gradients and initialisation, identity for "none" and
// "rope", errors beyond max_len, and RoPE's defining property: q_m . k_n depends on the
// positions only through m - n.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "framework/ops/ops.h"
#include "gtest/gtest.h"
#include "layers/positional/positional_encoding.h"
#include "layers/positional/rope.h"
#include "tests/support/gradcheck.h"

namespace attnlab::nn {
namespace {

using testing::AllClose;
using testing::GradCheck;
using testing::RandomInput;

constexpr int64_t kModel = 8, kMaxLen = 16;

std::shared_ptr<PositionalEncoding> MakeEncoding(const std::string& name, int64_t d_model = kModel,
                                                 int64_t max_len = kMaxLen) {
  Generator generator(3);
  auto made = MakePositionalEncoding(name, d_model, max_len, generator);
  EXPECT_TRUE(made.ok()) << made.status();
  return *made;
}

TEST(PositionalRegistryTest, KnownNamesAreRegistered) {
  const std::vector<std::string> names = PositionalEncodingNames();
  for (const char* expected : {"learned", "none", "rope", "sinusoidal"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected;
  }
}

TEST(PositionalRegistryTest, UnknownNameIsAnErrorListingTheKnownOnes) {
  Generator generator(1);
  const auto made = MakePositionalEncoding("alibi_embeddings", kModel, kMaxLen, generator);
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(made.status().message());
  EXPECT_NE(message.find("alibi_embeddings"), std::string::npos) << message;
  for (const char* known : {"learned", "none", "rope", "sinusoidal"}) {
    EXPECT_NE(message.find(known), std::string::npos) << message;
  }
}

TEST(PositionalRegistryTest, NonPositiveSizesAreErrors) {
  Generator generator(1);
  EXPECT_FALSE(MakePositionalEncoding("sinusoidal", 0, kMaxLen, generator).ok());
  EXPECT_FALSE(MakePositionalEncoding("learned", kModel, 0, generator).ok());
}

TEST(SinusoidalTest, ValuesMatchThePapersFormula) {
  const auto encoding = MakeEncoding("sinusoidal", /*d_model=*/6, /*max_len=*/64);
  // On zero embeddings the output is the table itself: [1, 64, 6].
  const std::vector<float> table = encoding->Forward(Tensor::Zeros({1, 64, 6}), 0).ToFloats();
  struct Sample {
    int64_t pos, i;  // PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(...)
  };
  for (const Sample& sample :
       {Sample{0, 0}, Sample{1, 0}, Sample{5, 1}, Sample{17, 2}, Sample{63, 1}, Sample{40, 2}}) {
    const double angle = sample.pos / std::pow(10000.0, 2.0 * sample.i / 6.0);
    EXPECT_NEAR(table[sample.pos * 6 + 2 * sample.i], std::sin(angle), 1e-6)
        << "PE(" << sample.pos << ", " << 2 * sample.i << ")";
    EXPECT_NEAR(table[sample.pos * 6 + 2 * sample.i + 1], std::cos(angle), 1e-6)
        << "PE(" << sample.pos << ", " << 2 * sample.i + 1 << ")";
  }
}

TEST(SinusoidalTest, AddsTheTableRowsAtTheOffsetToEveryBatchRow) {
  const auto encoding = MakeEncoding("sinusoidal");
  const Tensor table = encoding->Forward(Tensor::Zeros({1, kMaxLen, kModel}), 0);
  const Tensor embeddings = RandomInput({2, 3, kModel}, 1);
  const Tensor out = encoding->Forward(embeddings, 5);
  const Tensor rows = Narrow(table, 1, 5, 3);  // [1, 3, d]
  EXPECT_TRUE(AllClose(out, Add(embeddings, rows), 1e-6));
  // Decoding one position at a time sees the same rows as the whole sequence.
  EXPECT_TRUE(AllClose(encoding->Forward(Narrow(embeddings, 1, 2, 1), 7),
                       Narrow(out, 1, 2, 1).contiguous(), 1e-6));
}

TEST(SinusoidalTest, TableIsANonPersistentBufferAndNoParameter) {
  const auto encoding = MakeEncoding("sinusoidal");
  EXPECT_TRUE(encoding->NamedParameters().empty());
  EXPECT_TRUE(encoding->NamedBuffers().empty());  // left out of checkpoints
  const NamedTensors all = encoding->NamedBuffers(/*include_non_persistent=*/true);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].second.shape(), (Shape{kMaxLen, kModel}));
}

TEST(SinusoidalTest, GradientFlowsToTheEmbeddings) {
  const auto encoding = MakeEncoding("sinusoidal");
  EXPECT_TRUE(GradCheck([&](const std::vector<Tensor>& x) { return encoding->Forward(x[0], 2); },
                        {RandomInput({2, 3, kModel}, 2)}));
}

TEST(LearnedTest, WeightIsAParameterInitialisedSmall) {
  const auto encoding = MakeEncoding("learned", 32, 64);
  const NamedTensors parameters = encoding->NamedParameters();
  ASSERT_EQ(parameters.size(), 1u);
  EXPECT_EQ(parameters[0].first, "weight");
  EXPECT_EQ(parameters[0].second.shape(), (Shape{64, 32}));
  // N(0, 0.02^2): 2048 samples have a standard deviation close to 0.02.
  double sum = 0.0, sum_of_squares = 0.0;
  const std::vector<float> values = parameters[0].second.ToFloats();
  for (const float value : values) {
    sum += value;
    sum_of_squares += value * value;
  }
  const double mean = sum / values.size();
  const double stddev = std::sqrt(sum_of_squares / values.size() - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.003);
  EXPECT_NEAR(stddev, 0.02, 0.002);
}

TEST(LearnedTest, GradientsMatchFiniteDifferencesForEmbeddingsAndTable) {
  const auto encoding = MakeEncoding("learned");
  Tensor weight = encoding->NamedParameters()[0].second;
  // The weight is perturbed in place through its handle; the function reads it from the
  // module. Rows outside [3, 6) get a zero gradient, also checked numerically.
  EXPECT_TRUE(GradCheck([&](const std::vector<Tensor>& x) { return encoding->Forward(x[0], 3); },
                        {RandomInput({2, 3, kModel}, 3), weight}));
  weight.zero_grad();
  Sum(encoding->Forward(RandomInput({2, 3, kModel}, 4), 3)).backward();
  const std::vector<float> grad = weight.grad().ToFloats();
  for (int64_t pos = 0; pos < kMaxLen; ++pos) {
    const float expected = pos >= 3 && pos < 6 ? 2.0f : 0.0f;  // summed over the batch
    for (int64_t c = 0; c < kModel; ++c) EXPECT_EQ(grad[pos * kModel + c], expected) << pos;
  }
}

TEST(IdentityEncodingsTest, NoneAndRopeLeaveEmbeddingsUnchanged) {
  const Tensor embeddings = RandomInput({2, 5, kModel}, 5);
  for (const char* name : {"none", "rope"}) {
    const auto encoding = MakeEncoding(name);
    EXPECT_TRUE(AllClose(encoding->Forward(embeddings, 40), embeddings, 0.0)) << name;
    EXPECT_TRUE(encoding->NamedParameters().empty()) << name;
  }
  EXPECT_TRUE(MakeEncoding("rope")->rotary());
  for (const char* name : {"none", "sinusoidal", "learned"}) {
    EXPECT_FALSE(MakeEncoding(name)->rotary()) << name;
  }
}

TEST(PositionalErrorsTest, PositionsBeyondMaxLenThrowAClearError) {
  for (const char* name : {"sinusoidal", "learned"}) {
    const auto encoding = MakeEncoding(name);
    // The last position is fine, as a whole sequence or as one decoding step.
    EXPECT_NO_THROW(encoding->Forward(Tensor::Zeros({1, kMaxLen, kModel}), 0)) << name;
    EXPECT_NO_THROW(encoding->Forward(Tensor::Zeros({1, 1, kModel}), kMaxLen - 1)) << name;
    try {
      encoding->Forward(Tensor::Zeros({2, 3, kModel}), kMaxLen - 2);
      FAIL() << name << ": expected attnlab::Error";
    } catch (const Error& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find("max_len 16"), std::string::npos) << message;
      EXPECT_NE(message.find("14..16"), std::string::npos) << message;
    }
  }
}

TEST(PositionalErrorsTest, WrongEmbeddingShapeThrows) {
  for (const char* name : {"sinusoidal", "learned", "none", "rope"}) {
    EXPECT_THROW(MakeEncoding(name)->Forward(Tensor::Zeros({2, 3, kModel + 1}), 0), Error) << name;
    EXPECT_THROW(MakeEncoding(name)->Forward(Tensor::Zeros({3, kModel}), 0), Error) << name;
  }
}

// ---- RoPE ----------------------------------------------------------------------------

// q_m . k_n for vectors q, k [head_dim] rotated to positions m and n.
double RotatedScore(const Tensor& q, const Tensor& k, int64_t m, int64_t n) {
  const int64_t head_dim = q.numel();
  const std::vector<float> rotated_q =
      ApplyRotaryEmbedding(q.reshape({1, 1, 1, head_dim}), m).ToFloats();
  const std::vector<float> rotated_k =
      ApplyRotaryEmbedding(k.reshape({1, 1, 1, head_dim}), n).ToFloats();
  double score = 0.0;
  for (int64_t c = 0; c < head_dim; ++c) score += double{rotated_q[c]} * rotated_k[c];
  return score;
}

TEST(RopeTest, ScoreDependsOnlyOnTheRelativePosition) {
  const Tensor q = RandomInput({16}, 6), k = RandomInput({16}, 7);
  for (const auto& [m, n] : {std::pair<int64_t, int64_t>{3, 1}, {0, 5}, {7, 7}, {2, 9}}) {
    const double reference = RotatedScore(q, k, m, n);
    for (const int64_t shift : {1, 4, 25, 300}) {
      EXPECT_NEAR(RotatedScore(q, k, m + shift, n + shift), reference, 1e-4)
          << "m " << m << " n " << n << " shift " << shift;
    }
  }
  // And the score does depend on m - n (otherwise the property would be vacuous).
  EXPECT_GT(std::abs(RotatedScore(q, k, 3, 1) - RotatedScore(q, k, 1, 3)), 1e-3);
}

TEST(RopeTest, ApplyRotaryEmbeddingRotatesEachRowAtItsPosition) {
  // Row t of a sequence with offset o is rotated like a single row at position t + o.
  const Tensor x = RandomInput({1, 2, 5, 8}, 8);
  const Tensor whole = ApplyRotaryEmbedding(x, 3);
  for (int64_t t = 0; t < 5; ++t) {
    EXPECT_TRUE(AllClose(ApplyRotaryEmbedding(Narrow(x, 2, t, 1).contiguous(), 3 + t),
                         Narrow(whole, 2, t, 1).contiguous(), 1e-6));
  }
}

}  // namespace
}  // namespace attnlab::nn
