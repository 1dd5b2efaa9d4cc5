// Adding an attention variant with its own hyper-parameter, exactly as the walk-through
// in layers/attention/README.md does it: the first part of this file is the whole
// variant, as it would stand in layers/attention/tempered.cc; the second part checks that
// nothing else had to change: the config learns the new key ([attention.tempered]
// temperature), checks it at load with file:line, lists it in the reference, passes it
// to the op, and the trainer trains the model.
//
// This binary is separate from the experiments tests because registering a variant
// changes the config schema, which those tests compare with experiments/CONFIG.md.

// ---- layers/attention/tempered.cc ----------------------------------------------------
// Dot-product attention with a temperature: softmax(q·k / temperature) V. temperature =
// sqrt(d_k) is Vaswani et al.'s scaled dot product, 1 is Luong's dot.
#include "framework/ops/ops.h"
#include "layers/attention/attention.h"

namespace attnlab::nn {
namespace {

struct TemperedOptions {
  double temperature = 1.0;
};

const OptionFields<TemperedOptions>& TemperedOptionFields() {
  static const auto* fields = new OptionFields<TemperedOptions>{
      FloatOption("temperature", &TemperedOptions::temperature,
                  "Divides the dot products before the softmax.", 1e-3, 1e3),
  };
  return *fields;
}

class TemperedAttention : public ScoreAttention {
 public:
  explicit TemperedAttention(const TemperedOptions& options)
      : inverse_temperature_(static_cast<float>(1.0 / options.temperature)) {}

 protected:
  // [b, h, tgt, d] x [b, h, src, d]^T / temperature -> [b, h, tgt, src]
  Tensor Scores(const AttentionInputs& in) const override {
    return MulScalar(Matmul(in.query, in.key, false, true), inverse_temperature_);
  }

 private:
  float inverse_temperature_;
};

ATTNLAB_REGISTER_ATTENTION(tempered, "tempered", TemperedOptionFields(),
                           [](const AttentionShape&, const TemperedOptions& options, Generator&) {
                             return std::make_shared<TemperedAttention>(options);
                           });

}  // namespace
}  // namespace attnlab::nn
// ---- end of layers/attention/tempered.cc ---------------------------------------------

#include <filesystem>
#include <string>

#include "experiments/config/config.h"
#include "experiments/config/schema.h"
#include "experiments/trainer/model_factory.h"
#include "experiments/trainer/trainer.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_config.h"

namespace attnlab::experiments {
namespace {

using testing::TinyConfig;

bool Contains(const absl::Status& status, const std::string& text) {
  return status.message().find(text) != std::string::npos;
}

TEST(NewVariantTest, ItsOptionIsAConfigKeyCheckedAtLoad) {
  const absl::StatusOr<Config> config = Config::Parse(
      "[model]\nattention = \"tempered\"\n\n[attention.tempered]\ntemperature = 2.5\n",
      "tempered.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->model().attention.variant, "tempered");
  EXPECT_EQ(std::get<double>(config->Value("attention.tempered.temperature")), 2.5);
  EXPECT_EQ(config->Origin("attention.tempered.temperature"), "tempered.toml:5");
  // The resolved config (saved with every run) keeps it.
  EXPECT_NE(config->ToToml().find("[attention.tempered]\ntemperature = 2.5\n"), std::string::npos);

  // Range, type and spelling are checked where the value is written.
  EXPECT_TRUE(
      Contains(Config::Parse("[attention.tempered]\ntemperature = 0.0\n", "t.toml").status(),
               "t.toml:2: 'attention.tempered.temperature' = 0.0 is out of range "
               "[0.001, 1000.0]"));
  EXPECT_TRUE(Contains(Config::Parse("[attention.tempered]\ntemprature = 2.0\n", "t.toml").status(),
                       "t.toml:2: unknown key 'attention.tempered.temprature'; did you mean "
                       "'attention.tempered.temperature'?"));
  EXPECT_TRUE(Contains(Config::Parse("", "t.toml", {"attention.tempered.temperature=hot"}).status(),
                       "'attention.tempered.temperature' must be a float"));
}

TEST(NewVariantTest, TheReferenceAndTheErrorsListIt) {
  const std::string reference = ConfigReferenceMarkdown();
  EXPECT_NE(reference.find("## [attention.tempered]"), std::string::npos);
  EXPECT_NE(reference.find("| `temperature` | float in [0.001, 1000.0] | `1.0` |"),
            std::string::npos);
  const absl::Status unknown = Config::Parse("", "t.toml", {"model.attention=tempred"}).status();
  EXPECT_TRUE(Contains(unknown, "is not one of: ")) << unknown;
  EXPECT_TRUE(Contains(unknown, "tempered")) << unknown;
}

// The hyper-parameter reaches the op: at temperature sqrt(d_k) the model computes what
// scaled_dot computes, at 1 what dot computes (neither variant has parameters, so the
// same seed gives the same weights).
TEST(NewVariantTest, TheTemperatureReachesTheScores) {
  const Tensor src = Tensor::FromInts(std::vector<int32_t>{3, 4, 5, 6, 3, 5}, {2, 3});
  const Tensor tgt_in = Tensor::FromInts(std::vector<int32_t>{1, 4, 3, 1, 5, 5}, {2, 3});
  auto logits = [&](const std::vector<std::string>& overrides) {
    std::vector<std::string> all = {"model.dropout=0", "model.heads=4", "model.d_model=16"};
    all.insert(all.end(), overrides.begin(), overrides.end());
    const Config config = TinyConfig(all);
    std::shared_ptr<nn::Seq2SeqModel> model = BuildModel(config, 8, 8).value();
    model->Eval();
    return model->Forward(src, tgt_in).ToFloats();
  };
  // d_k = 16 / 4 heads = 4: scaled_dot divides by sqrt(4) = 2 (exactly, in floats too).
  EXPECT_EQ(logits({"model.attention=tempered", "attention.tempered.temperature=2"}),
            logits({"model.attention=scaled_dot"}));
  EXPECT_EQ(logits({"model.attention=tempered", "attention.tempered.temperature=1"}),
            logits({"model.attention=dot"}));
  EXPECT_NE(logits({"model.attention=tempered", "attention.tempered.temperature=1"}),
            logits({"model.attention=scaled_dot"}));
  // The RNN's attention takes the variant and its options too.
  EXPECT_EQ(
      logits({"model.type=rnn", "model.attention=tempered", "attention.tempered.temperature=1"}),
      logits({"model.type=rnn", "model.attention=dot"}));
}

class NewVariantTrainingTest : public attnlab::testing::TempDirTest {};

TEST_F(NewVariantTrainingTest, TheTrainerTrainsIt) {
  const Config config = TinyConfig(
      {"model.attention=tempered", "attention.tempered.temperature=3", "train.max_steps=10"});
  RunOptions options;
  options.run_dir = (directory_ / "run").string();
  options.show_progress = false;
  const absl::StatusOr<TrainResult> result = Train(config, options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->steps, 10);
  // The saved config names the variant's option, so evaluate/decode rebuild the same model.
  const absl::StatusOr<Config> saved = Config::Load((directory_ / "run" / "config.toml").string());
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(std::get<double>(saved->Value("attention.tempered.temperature")), 3.0);
}

}  // namespace
}  // namespace attnlab::experiments
