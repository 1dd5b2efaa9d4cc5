// Golden tests against PyTorch, as llm.c's test_gpt2 checks its C code against GPT-2 in
// PyTorch. tools/make-golden rebuilt each case's model in PyTorch (float64) from the
// weights stored in tests/golden/<case>.safetensors and recorded, on the stored batch,
// the logits, the label-smoothed loss, every parameter's gradient and the losses after
// 3 Adam steps. Here attnlab builds the model from tests/golden/<case>.toml, loads those
// weights by name (strictly), runs forward and backward in eval mode (dropout off) and
// 3 Adam steps, and compares (tolerances and why: tests/golden/README.md):
//
//   logits, loss   max |attnlab - golden| <= 1e-5 * max(1, max |golden|)
//   grad.<name>    max |attnlab - golden| <= 1e-4 * max |golden| + 1e-6 * G, where G is
//                  the largest |gradient| of the whole model
//   adam_losses    |attnlab - golden| <= 1e-5 * max(1, |golden|), each of the 3 steps
//
// A failure names the tensor, the worst element's index, both values and the tolerance.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "experiments/config/config.h"
#include "experiments/trainer/model_factory.h"
#include "framework/autograd/grad_mode.h"
#include "framework/io/safetensors.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"
#include "gtest/gtest.h"

namespace attnlab::experiments {
namespace {

constexpr double kOutputTolerance = 1e-5;         // logits, loss, adam_losses (x max(1, scale))
constexpr double kGradientTolerance = 1e-4;       // x the tensor's max |golden gradient|
constexpr double kGradientFloorTolerance = 1e-6;  // x the model's max |golden gradient|
constexpr int kAdamSteps = 3;

// Names in a golden file that are not model weights.
bool IsWeightName(const std::string& name) {
  static const char* const kOthers[] = {"src",    "tgt_in", "tgt_out",
                                        "logits", "loss",   "adam_losses"};
  for (const char* other : kOthers) {
    if (name == other) return false;
  }
  return name.rfind("grad.", 0) != 0;
}

std::string GoldenPath(const std::string& file) {
  return absl::StrCat(ATTNLAB_SOURCE_DIR, "/tests/golden/", file);
}

// "[2, 0, 5]" for the flat index `flat` of `shape`.
std::string IndexString(const Shape& shape, int64_t flat) {
  std::vector<int64_t> index(shape.size());
  for (size_t axis = shape.size(); axis-- > 0;) {
    index[axis] = flat % shape[axis];
    flat /= shape[axis];
  }
  return absl::StrCat("[", absl::StrJoin(index, ", "), "]");
}

double MaxAbs(const Tensor& tensor) {
  double result = 0.0;
  for (float value : tensor.ToFloats()) {
    result = std::max(result, std::abs(static_cast<double>(value)));
  }
  return result;
}

struct Comparison {
  double max_diff = 0.0;
  double max_expected = 0.0;  // max |golden|
  int64_t worst = 0;          // flat index of max_diff
};

Comparison Compare(const Tensor& actual, const Tensor& expected) {
  const std::vector<float> a = actual.ToFloats(), e = expected.ToFloats();
  Comparison result;
  for (size_t i = 0; i < e.size(); ++i) {
    const double diff = std::abs(static_cast<double>(a[i]) - e[i]);
    result.max_expected = std::max(result.max_expected, std::abs(static_cast<double>(e[i])));
    if (diff > result.max_diff || std::isnan(diff)) {
      result.max_diff = std::isnan(diff) ? INFINITY : diff;
      result.worst = static_cast<int64_t>(i);
    }
  }
  return result;
}

// Passes when max |actual - expected| <= tolerance; otherwise names the worst element.
::testing::AssertionResult Close(const std::string& name, const Tensor& actual,
                                 const Tensor& expected, double tolerance,
                                 Comparison* out = nullptr) {
  if (actual.shape() != expected.shape()) {
    return ::testing::AssertionFailure()
           << name << ": attnlab " << actual.Describe() << ", golden " << expected.Describe();
  }
  const Comparison comparison = Compare(actual, expected);
  if (out != nullptr) *out = comparison;
  if (comparison.max_diff <= tolerance) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << absl::StrFormat(
             "%s: worst element %s: attnlab %.7g, golden (PyTorch) %.7g, |diff| %.3g > "
             "tolerance %.3g (max |golden| %.4g)",
             name, IndexString(expected.shape(), comparison.worst),
             actual.ToFloats()[comparison.worst], expected.ToFloats()[comparison.worst],
             comparison.max_diff, tolerance, comparison.max_expected);
}

class PyTorchGoldenTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string name = GetParam();
    absl::StatusOr<Config> config = Config::Load(GoldenPath(name + ".toml"));
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = *config;
    absl::StatusOr<SafetensorsContents> golden = ReadSafetensors(GoldenPath(name + ".safetensors"));
    ASSERT_TRUE(golden.ok()) << golden.status() << " (regenerate with tools/make-golden)";
    for (const auto& [tensor_name, tensor] : golden->tensors) {
      golden_[tensor_name] = tensor;
      if (IsWeightName(tensor_name)) weights_.emplace_back(tensor_name, tensor);
    }
    for (const char* required : {"src", "tgt_in", "tgt_out", "logits", "loss", "adam_losses"}) {
      ASSERT_EQ(golden_.count(required), 1u) << name << ": no tensor '" << required << "'";
    }
    // The vocabularies are the embedding tables' rows (Transformer or RNN names).
    const int64_t source_vocab = VocabOf({"src_embed.weight", "source_embedding.weight"});
    const int64_t target_vocab =
        VocabOf({"tgt_embed.weight", "target_embedding.weight", "src_embed.weight"});
    ASSERT_GT(source_vocab, 0) << name << ": no source embedding among the golden weights";
    ASSERT_GT(target_vocab, 0) << name << ": no target embedding among the golden weights";
    absl::StatusOr<std::shared_ptr<nn::Seq2SeqModel>> model =
        BuildModel(config_, source_vocab, target_vocab);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = *model;
    const absl::Status loaded = LoadIntoNamed(model_->NamedParameters(), weights_, /*strict=*/true);
    ASSERT_TRUE(loaded.ok()) << loaded;
    model_->Eval();  // dropout off, as in the PyTorch reference
  }

  int64_t VocabOf(std::initializer_list<const char*> names) const {
    for (const char* name : names) {
      auto it = golden_.find(name);
      if (it != golden_.end()) return it->second.size(0);
    }
    return 0;
  }

  // The training loss of the stored batch: label-smoothed cross-entropy, padding ignored.
  Tensor Loss(Tensor* logits = nullptr) {
    const Tensor output = model_->Forward(golden_.at("src"), golden_.at("tgt_in"));
    if (logits != nullptr) *logits = output;
    return CrossEntropy(
        Reshape(output, {-1, output.size(-1)}), Reshape(golden_.at("tgt_out"), {-1}),
        static_cast<float>(config_.train().label_smoothing), model_->special_tokens().pad_id);
  }

  ::testing::AssertionResult CloseOutput(const std::string& name, const Tensor& actual,
                                         const Tensor& expected, Comparison* out) {
    const double scale = std::max(1.0, MaxAbs(expected));
    return Close(name, actual, expected, kOutputTolerance * scale, out);
  }

  Config config_;
  std::map<std::string, Tensor> golden_;
  NamedTensors weights_;
  std::shared_ptr<nn::Seq2SeqModel> model_;
};

TEST_P(PyTorchGoldenTest, LogitsLossAndEveryGradientMatchPyTorch) {
  Tensor logits;
  const Tensor loss = Loss(&logits);
  loss.backward();
  Comparison logits_comparison, loss_comparison;
  EXPECT_TRUE(CloseOutput("logits", logits, golden_.at("logits"), &logits_comparison));
  EXPECT_TRUE(CloseOutput("loss", loss, golden_.at("loss"), &loss_comparison));

  const NamedTensors parameters = model_->NamedParameters();
  double model_scale = 0.0;  // G: the largest |golden gradient| of the whole model
  for (const auto& [name, parameter] : parameters) {
    auto it = golden_.find("grad." + name);
    ASSERT_NE(it, golden_.end()) << "the golden file has no grad." << name;
    model_scale = std::max(model_scale, MaxAbs(it->second));
  }
  std::string worst_name;
  double worst_ratio = 0.0;  // max |diff| / tolerance over all gradients
  for (const auto& [name, parameter] : parameters) {
    const Tensor& expected = golden_.at("grad." + name);
    const Tensor actual =
        parameter.grad().defined() ? parameter.grad() : Tensor::Zeros(parameter.shape());
    Comparison comparison;
    const double tensor_scale = MaxAbs(expected);
    const double tolerance =
        kGradientTolerance * tensor_scale + kGradientFloorTolerance * model_scale;
    EXPECT_TRUE(Close("grad." + name, actual, expected, tolerance, &comparison));
    if (comparison.max_diff / tolerance > worst_ratio) {
      worst_ratio = comparison.max_diff / tolerance;
      worst_name = name;
    }
  }
  std::printf(
      "[golden %s] logits max |diff| %.3g, loss |diff| %.3g, gradients: worst "
      "grad.%s at %.3g of its tolerance\n",
      GetParam().c_str(), logits_comparison.max_diff, loss_comparison.max_diff, worst_name.c_str(),
      worst_ratio);
}

TEST_P(PyTorchGoldenTest, AdamStepsFollowPyTorch) {
  AdamOptions options;
  options.beta1 = config_.train().beta1;
  options.beta2 = config_.train().beta2;
  options.epsilon = config_.train().eps;
  const double learning_rate = config_.train().lr;  // constant schedule
  Adam adam(model_->NamedParameters(), options);
  const std::vector<float> expected = golden_.at("adam_losses").ToFloats();
  ASSERT_EQ(expected.size(), static_cast<size_t>(kAdamSteps));
  double worst = 0.0;
  for (int step = 0; step < kAdamSteps; ++step) {
    adam.ZeroGrad();
    Loss().backward();
    adam.Step(learning_rate);
    NoGradGuard no_grad;
    const double loss = Loss().item();  // after step + 1 updates
    const double diff = std::abs(loss - expected[step]);
    worst = std::max(worst, diff);
    const double tolerance =
        kOutputTolerance * std::max(1.0, std::abs(static_cast<double>(expected[step])));
    EXPECT_LE(diff, tolerance) << absl::StrFormat(
        "adam_losses[%d] (after %d steps): attnlab %.7g, golden (PyTorch) %.7g", step, step + 1,
        loss, expected[step]);
  }
  std::printf("[golden %s] Adam losses max |diff| %.3g\n", GetParam().c_str(), worst);
}

INSTANTIATE_TEST_SUITE_P(Cases, PyTorchGoldenTest,
                         ::testing::Values("transformer_post_ln", "transformer_pre_ln",
                                           "rnn_gru_bahdanau"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace attnlab::experiments
