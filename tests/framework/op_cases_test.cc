// Runs every case of the op table (op_cases.cc) through each check that applies to it:
// gradient against central finite differences, forward and backward bit-identical on one
// and two threads, forward against the case's naive reference, and bf16 against f32.
#include "tests/framework/op_cases.h"

#include <string>
#include <vector>

#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/ops/mixed_precision.h"
#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "framework/random/generator.h"
#include "gtest/gtest.h"
#include "tests/support/bit_identical.h"
#include "tests/support/gradcheck.h"
#include "tests/support/thread_counts.h"

namespace attnlab::testing {
namespace {

// The forward output followed by every input's gradient of sum(out * R), R a fixed
// random projection, as one list of floats.
std::vector<float> ForwardAndGradients(const OpCase& op_case) {
  std::vector<Tensor> inputs = DrawInputs(op_case);
  const Tensor out = op_case.build(inputs);
  Generator projection_generator(54321);
  const Tensor projection = RandomUniform(out.shape(), -1.0f, 1.0f, projection_generator);
  Sum(Mul(out, projection)).backward();
  std::vector<float> all = out.ToFloats();
  for (const Tensor& input : inputs) {
    if (!input.requires_grad()) continue;
    const std::vector<float> gradient = input.grad().ToFloats();
    all.insert(all.end(), gradient.begin(), gradient.end());
  }
  return all;
}

std::string CaseName(const ::testing::TestParamInfo<OpCase>& info) { return info.param.Name(); }

std::vector<OpCase> CasesWhere(bool (*keep)(const OpCase&)) {
  std::vector<OpCase> kept;
  for (const OpCase& op_case : AllOpCases()) {
    if (keep(op_case)) kept.push_back(op_case);
  }
  return kept;
}

class OpCaseTest : public ::testing::TestWithParam<OpCase> {};

TEST_P(OpCaseTest, GradientMatchesFiniteDifferences) {
  const OpCase& op_case = GetParam();
  EXPECT_TRUE(GradCheck(op_case.build, DrawInputs(op_case), op_case.gradient));
}

TEST_P(OpCaseTest, ForwardAndBackwardBitIdenticalOnOneAndTwoThreads) {
  const OpCase& op_case = GetParam();
  const auto run = [&] { return ForwardAndGradients(op_case); };
  EXPECT_TRUE(testing::BitIdentical(testing::OnThreads(1, run), testing::OnThreads(2, run)));
}

INSTANTIATE_TEST_SUITE_P(Table, OpCaseTest, ::testing::ValuesIn(AllOpCases()), CaseName);

class OpCaseNaiveTest : public ::testing::TestWithParam<OpCase> {};

TEST_P(OpCaseNaiveTest, ForwardMatchesNaiveReference) {
  const OpCase& op_case = GetParam();
  const std::vector<Tensor> inputs = DrawInputs(op_case);
  EXPECT_TRUE(
      AllClose(op_case.build(inputs), op_case.naive_forward(inputs), op_case.forward_tolerance));
}

INSTANTIATE_TEST_SUITE_P(Table, OpCaseNaiveTest,
                         ::testing::ValuesIn(CasesWhere([](const OpCase& c) {
                           return bool(c.naive_forward);
                         })),
                         CaseName);

class OpCaseBf16Test : public ::testing::TestWithParam<OpCase> {
 protected:
  void SetUp() override {
    if (!dnnl_backend::HasNativeBF16()) GTEST_SKIP() << "no native bf16 on this CPU";
  }
};

TEST_P(OpCaseBf16Test, ForwardAndGradientsStayNearF32) {
  const OpCase& op_case = GetParam();
  const std::vector<float> f32 = ForwardAndGradients(op_case);
  std::vector<float> bf16;
  {
    MixedPrecision scope(DType::kBF16);
    bf16 = ForwardAndGradients(op_case);
  }
  ASSERT_EQ(f32.size(), bf16.size());
  EXPECT_TRUE(AllClose(Tensor::FromFloats(bf16, {static_cast<int64_t>(bf16.size())}), f32,
                       op_case.bf16_tolerance));
}

INSTANTIATE_TEST_SUITE_P(Table, OpCaseBf16Test, ::testing::ValuesIn(CasesWhere([](const OpCase& c) {
                           return c.bf16_applies;
                         })),
                         CaseName);

}  // namespace
}  // namespace attnlab::testing
