// Bit-exact reproducibility across thread counts: the same seeded training run of a small
// MLP (Linear -> Tanh -> Dropout -> Linear -> CrossEntropy, plain SGD done by hand) on 1
// and on 2 threads must give identical losses and weights, compared with memcmp.
#include <cstring>
#include <string>
#include <vector>

#include "framework/autograd/grad_mode.h"
#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/ops/mixed_precision.h"
#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "framework/random/generator.h"
#include "gtest/gtest.h"
#include "tests/support/bit_identical.h"
#include "tests/support/thread_counts.h"

namespace attnlab {
namespace {

using testing::BitIdentical;
using testing::ThreadCountRestorer;

// Large enough that our own kernels split into several chunks (elementwise grain 2^15,
// reduction grain 2^14 elements) and oneDNN has work for two threads.
constexpr int64_t kBatch = 256;
constexpr int64_t kInputFeatures = 96;
constexpr int64_t kHiddenFeatures = 384;
constexpr int64_t kClasses = 40;
constexpr int kSteps = 4;
constexpr float kLearningRate = 0.1f;
constexpr float kDropout = 0.1f;

struct TrainingRecord {
  std::vector<float> losses;
  std::vector<std::vector<float>> parameters;  // final values, one vector per parameter
};

Tensor Parameter(const Shape& shape, float stddev, Generator& generator) {
  Tensor parameter = RandomNormal(shape, 0.0f, stddev, generator);
  parameter.set_requires_grad(true);
  return parameter;
}

TrainingRecord Train(int threads) {
  SetNumThreads(threads);
  ManualSeed(1234);  // the dropout stream
  Generator init_generator(42);
  std::vector<Tensor> parameters = {
      Parameter({kHiddenFeatures, kInputFeatures}, 0.1f, init_generator),
      Parameter({kHiddenFeatures}, 0.1f, init_generator),
      Parameter({kClasses, kHiddenFeatures}, 0.05f, init_generator),
      Parameter({kClasses}, 0.05f, init_generator),
  };
  const Tensor inputs = RandomNormal({kBatch, kInputFeatures}, 0.0f, 1.0f, init_generator);
  const Tensor targets = RandomInts({kBatch}, 0, kClasses, init_generator);

  TrainingRecord record;
  for (int step = 0; step < kSteps; ++step) {
    const Tensor hidden = Tanh(Linear(inputs, parameters[0], parameters[1]));
    const Tensor dropped = Dropout(hidden, kDropout, /*training=*/true);
    const Tensor logits = Linear(dropped, parameters[2], parameters[3]);
    const Tensor loss = CrossEntropy(logits, targets);
    record.losses.push_back(loss.item());
    loss.backward();
    NoGradGuard no_grad;
    for (Tensor& parameter : parameters) {
      AddInPlace(parameter, MulScalar(parameter.grad(), -kLearningRate));
      parameter.zero_grad();
    }
  }
  for (const Tensor& parameter : parameters) record.parameters.push_back(parameter.ToFloats());
  return record;
}

TEST(DeterminismTest, TrainingIsBitIdenticalOnOneAndTwoThreads) {
  ThreadCountRestorer restore_threads;
  const TrainingRecord one_thread = Train(1);
  const TrainingRecord two_threads = Train(2);
  const TrainingRecord one_thread_again = Train(1);

  ASSERT_EQ(one_thread.losses.size(), static_cast<size_t>(kSteps));
  // The run must actually train, or identical results would prove little.
  EXPECT_LT(one_thread.losses.back(), one_thread.losses.front());
  EXPECT_TRUE(BitIdentical(one_thread.losses, one_thread_again.losses))
      << "the same run on one thread is not reproducible";
  for (int step = 0; step < kSteps; ++step) {
    EXPECT_EQ(std::memcmp(&one_thread.losses[step], &two_threads.losses[step], sizeof(float)), 0)
        << "step " << step << ": loss " << one_thread.losses[step] << " on 1 thread vs "
        << two_threads.losses[step] << " on 2 threads";
  }
  ASSERT_EQ(one_thread.parameters.size(), two_threads.parameters.size());
  for (size_t i = 0; i < one_thread.parameters.size(); ++i) {
    EXPECT_TRUE(BitIdentical(one_thread.parameters[i], two_threads.parameters[i]))
        << "parameter " << i << " differs between 1 and 2 threads";
  }
}

// The weight gradient of a narrow layer over many rows, dW = G^T X with a long reduction
// (K = 4096 rows) and a small [64, 64] result. On this shape oneDNN 2.6's matmul
// (brg:avx512_core) splits K across threads (its parallel K reduction, nthr_k > 1) and
// dnnl_sgemm does too on 8 threads, adding the per-thread partial sums afterwards, so the
// summation order would depend on the thread count. Thread counts above the core count
// still set oneDNN's decomposition, so 8 threads exercise it on a 2-core machine too.
// The other shapes: a K that is not a multiple of the chunk length with a transposed
// second operand, and outputs larger than one tile (bf16's longer chunks; on AMX, oneDNN
// split even those chunks' K by thread count: the base model's [512, 2048] gradient
// differed between 1 and 2 threads).
struct LongReductionCase {
  DType matmul_inputs;
  int64_t k, m, n;
  bool transpose_b;
};
// Readable test names (gtest would print the struct's bytes, padding included).
void PrintTo(const LongReductionCase& c, std::ostream* os) {
  *os << DTypeName(c.matmul_inputs) << " K=" << c.k << " M=" << c.m << " N=" << c.n
      << (c.transpose_b ? " b transposed" : "");
}

std::vector<float> LongReductionWeightGradient(int threads, const LongReductionCase& c) {
  SetNumThreads(threads);
  const MixedPrecision precision(c.matmul_inputs);
  Generator generator(7);
  const Tensor output_grad = RandomNormal({c.k, c.m}, 0.0f, 1.0f, generator);
  const Tensor inputs =
      RandomNormal(c.transpose_b ? Shape{c.n, c.k} : Shape{c.k, c.n}, 0.0f, 1.0f, generator);
  NoGradGuard no_grad;
  return Matmul(output_grad, inputs, /*transpose_a=*/true, c.transpose_b).ToFloats();
}

class LongReductionTest : public ::testing::TestWithParam<LongReductionCase> {};

TEST_P(LongReductionTest, WeightGradientIsBitIdenticalOnAnyThreadCount) {
  const LongReductionCase& c = GetParam();
  if (c.matmul_inputs == DType::kBF16 && !dnnl_backend::HasNativeBF16()) GTEST_SKIP();
  ThreadCountRestorer restore_threads;
  const std::vector<float> one_thread = LongReductionWeightGradient(1, c);
  for (int threads : {2, 4, 8}) {
    const std::vector<float> several_threads = LongReductionWeightGradient(threads, c);
    size_t differing = 0;
    for (size_t i = 0; i < one_thread.size(); ++i) {
      if (std::memcmp(&one_thread[i], &several_threads[i], sizeof(float)) != 0) ++differing;
    }
    EXPECT_EQ(differing, 0u) << differing << " of " << one_thread.size() << " elements of G^T X ("
                             << DTypeName(c.matmul_inputs) << ", K = " << c.k << ") differ "
                             << "between 1 and " << threads << " threads";
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, LongReductionTest,
                         ::testing::Values(LongReductionCase{DType::kF32, 4096, 64, 64, false},
                                           LongReductionCase{DType::kBF16, 4096, 64, 64, false},
                                           LongReductionCase{DType::kF32, 4000, 64, 48, true},
                                           LongReductionCase{DType::kBF16, 4000, 64, 48, true},
                                           LongReductionCase{DType::kF32, 2100, 320, 300, false},
                                           LongReductionCase{DType::kBF16, 2100, 320, 300, false},
                                           LongReductionCase{DType::kBF16, 2100, 600, 500, false},
                                           LongReductionCase{DType::kBF16, 3000, 1024, 1024, true},
                                           LongReductionCase{DType::kBF16, 2048, 512, 2048,
                                                             false}));

TEST(DeterminismTest, ThreadCountIsRestored) {
  const int before = NumThreads();
  {
    ThreadCountRestorer restore_threads;
    SetNumThreads(before == 1 ? 2 : 1);
  }
  EXPECT_EQ(NumThreads(), before);
  EXPECT_EQ(testing::OnThreads(before == 1 ? 2 : 1, [] { return NumThreads(); }),
            before == 1 ? 2 : 1);
  EXPECT_EQ(NumThreads(), before);
}

}  // namespace
}  // namespace attnlab
