// Checkpoint averaging on hand-made checkpoints: the mean against values worked out by
// hand (including one that f32 accumulation would get wrong), training state dropped,
// the latest file's metadata kept and marked, and every refusal a clear error naming the
// file and the first mismatching key or tensor, with nothing written.
#include "experiments/trainer/checkpoint_average.h"

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "experiments/config/config.h"
#include "framework/io/safetensors.h"
#include "gtest/gtest.h"
#include "tests/support/file_contents.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_config.h"

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;
using attnlab::testing::ReadFile;

const std::vector<std::string> kVocabulary = {"<pad>", "<s>", "</s>", "<unk>", "a", "b"};

Tensor Floats(const std::vector<float>& values, const Shape& shape) {
  return Tensor::FromFloats(values, shape);
}

// A checkpoint of the tiny config (with `overrides`) at `step` holding `tensors`; the
// tensors need not be a real model's, averaging never builds one.
CheckpointContents Contents(int64_t step, const std::vector<std::string>& overrides = {}) {
  CheckpointContents contents;
  contents.config_toml = testing::TinyConfigToml(overrides);
  contents.source_vocabulary = kVocabulary;
  contents.target_vocabulary = kVocabulary;
  contents.progress.step = step;
  return contents;
}

class CheckpointAverageTest : public attnlab::testing::TempDirTest {
 protected:
  std::string Write(const std::string& name, const NamedTensors& tensors,
                    const CheckpointContents& contents) {
    const std::string path = (directory_ / name).string();
    const absl::Status written = WriteCheckpointFile(path, tensors, contents);
    EXPECT_TRUE(written.ok()) << written;
    return path;
  }
  // w [2, 2] and b [3], plus optimizer and EMA state that averaging must drop.
  std::string WriteModel(const std::string& name, const std::vector<float>& w,
                         const std::vector<float>& b, int64_t step) {
    return Write(name,
                 {{"w", Floats(w, {2, 2})},
                  {"b", Floats(b, {3})},
                  {"optim.w.exp_avg", Tensor::Zeros({2, 2})},
                  {"optim.step", Tensor::Zeros({}, DType::kI32)},
                  {"ema.w", Tensor::Zeros({2, 2})}},
                 Contents(step));
  }
  // The error of averaging, expected to contain every one of `parts`.
  static ::testing::AssertionResult FailsWith(const absl::StatusOr<CheckpointAverage>& average,
                                              const std::vector<std::string>& parts) {
    if (average.ok()) return ::testing::AssertionFailure() << "averaging succeeded";
    const std::string message(average.status().message());
    for (const std::string& part : parts) {
      if (message.find(part) == std::string::npos) {
        return ::testing::AssertionFailure() << "'" << message << "' lacks '" << part << "'";
      }
    }
    return ::testing::AssertionSuccess();
  }
};

// w: (1 + 2 + 0) / 3 = 1, (2 + 4 + 0) / 3 = 2, (3 + 6 + 0) / 3 = 3, (4 + 8 + 1) / 3 = 13/3.
// b: (1e8 + 1 - 1e8) / 3 = 1/3 (summed in f32, 1e8 + 1 rounds to 1e8 and the mean is 0),
//    (0.5 - 0.25 + 1) / 3 = 1.25 / 3, (-3 - 3 - 3) / 3 = -3.
TEST_F(CheckpointAverageTest, TheMeanOfEveryTensorAsWorkedOutByHand) {
  const std::string a = WriteModel("a.safetensors", {1, 2, 3, 4}, {1e8f, 0.5f, -3}, 100);
  const std::string b = WriteModel("b.safetensors", {2, 4, 6, 8}, {1, -0.25f, -3}, 200);
  const std::string c = WriteModel("c.safetensors", {0, 0, 0, 1}, {-1e8f, 1, -3}, 300);
  absl::StatusOr<CheckpointAverage> average = AverageCheckpoints({a, b, c});
  ASSERT_TRUE(average.ok()) << average.status();
  ASSERT_EQ(average->tensors.size(), 2u);  // optim.* and ema.* dropped
  EXPECT_EQ(average->tensors[0].first, "w");
  EXPECT_EQ(average->tensors[0].second.shape(), (Shape{2, 2}));
  EXPECT_EQ(average->tensors[0].second.ToFloats(),
            (std::vector<float>{1, 2, 3, static_cast<float>(13.0 / 3.0)}));
  EXPECT_EQ(average->tensors[1].first, "b");
  EXPECT_EQ(
      average->tensors[1].second.ToFloats(),
      (std::vector<float>{static_cast<float>(1.0 / 3.0), static_cast<float>(1.25 / 3.0), -3.0f}));
  // The metadata is the latest file's, marked as an average of the three.
  EXPECT_EQ(average->contents.progress.step, 300);
  EXPECT_EQ(average->contents.derived_from, "the average of 3 checkpoints: " + a + " (step 100), " +
                                                b + " (step 200), " + c + " (step 300)");
  EXPECT_TRUE(average->contents.ema_weights.empty());
  // The latest checkpoint's metadata whatever the order (a shell glob puts 1000 before 500).
  absl::StatusOr<CheckpointAverage> reordered = AverageCheckpoints({c, a, b});
  ASSERT_TRUE(reordered.ok()) << reordered.status();
  EXPECT_EQ(reordered->contents.progress.step, 300);
  EXPECT_EQ(reordered->tensors[0].second.ToFloats(), average->tensors[0].second.ToFloats());
}

TEST_F(CheckpointAverageTest, TheWrittenFileIsAModelCheckpointWithTheLastMetadata) {
  const std::string a = WriteModel("a.safetensors", {1, 2, 3, 4}, {1, 2, 3}, 10);
  const CheckpointContents later = Contents(20, {"train.lr=0.5"});  // training keys may differ
  const std::string b =
      Write("b.safetensors", {{"b", Floats({3, 2, 1}, {3})}, {"w", Floats({3, 2, 1, 0}, {2, 2})}},
            later);  // another order of the same tensors, no training state
  const std::string out = (directory_ / "average.safetensors").string();
  ASSERT_TRUE(WriteCheckpointAverage({a, b}, out).ok());

  absl::StatusOr<SafetensorsContents> file = ReadSafetensors(out);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ(file->tensors.size(), 2u);
  EXPECT_EQ(file->tensors[0].first, "w");  // the first file's order
  EXPECT_EQ(file->tensors[0].second.ToFloats(), (std::vector<float>{2, 2, 2, 2}));
  EXPECT_EQ(file->tensors[1].second.ToFloats(), (std::vector<float>{2, 2, 2}));
  absl::StatusOr<CheckpointContents> metadata = ReadCheckpointMetadata(out);
  ASSERT_TRUE(metadata.ok()) << metadata.status();
  EXPECT_EQ(metadata->progress.step, 20);
  EXPECT_EQ(metadata->config_toml, later.config_toml);
  EXPECT_EQ(metadata->derived_from,
            "the average of 2 checkpoints: " + a + " (step 10), " + b + " (step 20)");
}

TEST_F(CheckpointAverageTest, OneCheckpointIsItsModelTensorsAlone) {
  const std::string a = WriteModel("a.safetensors", {1, 2, 3, 4}, {5, 6, 7}, 10);
  absl::StatusOr<CheckpointAverage> average = AverageCheckpoints({a});
  ASSERT_TRUE(average.ok()) << average.status();
  EXPECT_EQ(average->tensors.size(), 2u);
  EXPECT_EQ(average->tensors[1].second.ToFloats(), (std::vector<float>{5, 6, 7}));
  EXPECT_EQ(average->contents.derived_from, "the average of 1 checkpoint: " + a + " (step 10)");
}

TEST_F(CheckpointAverageTest, MismatchedTensorsNameTheFileAndTheFirstTensor) {
  const std::string a = WriteModel("a.safetensors", {1, 2, 3, 4}, {1, 2, 3}, 10);
  const std::string reshaped =
      Write("reshaped.safetensors",
            {{"w", Floats({1, 2, 3, 4}, {4})}, {"b", Floats({1, 2, 3}, {3})}}, Contents(20));
  EXPECT_TRUE(FailsWith(AverageCheckpoints({a, reshaped}),
                        {reshaped, ": tensor \"w\" is f32[4], but f32[2, 2] in ", a}));
  const std::string missing =
      Write("missing.safetensors", {{"w", Floats({1, 2, 3, 4}, {2, 2})}}, Contents(20));
  EXPECT_TRUE(FailsWith(AverageCheckpoints({a, missing}),
                        {missing, ": has no tensor \"b\", which ", a, " has"}));
  const std::string extra = Write(
      "extra.safetensors",
      {{"w", Floats({1, 2, 3, 4}, {2, 2})}, {"b", Floats({1, 2, 3}, {3})}, {"c", Floats({1}, {1})}},
      Contents(20));
  EXPECT_TRUE(FailsWith(AverageCheckpoints({a, extra}),
                        {extra, ": has a tensor \"c\" that ", a, " does not have"}));
  const std::string integer =
      Write("integer.safetensors",
            {{"w", Tensor::FromInts(std::vector<int32_t>{1, 2, 3, 4}, {2, 2})},
             {"b", Floats({1, 2, 3}, {3})}},
            Contents(20));
  EXPECT_TRUE(FailsWith(AverageCheckpoints({a, integer}), {integer, "\"w\" is i32[2, 2]"}));
}

TEST_F(CheckpointAverageTest, IntegerTensorsAreCopiedWhenEqualAndRefusedOtherwise) {
  const auto count = [](int32_t value) {
    return Tensor::FromInts(std::vector<int32_t>{value, 7}, {2});
  };
  const std::string a =
      Write("a.safetensors", {{"count", count(3)}, {"w", Floats({2}, {1})}}, Contents(10));
  const std::string b =
      Write("b.safetensors", {{"count", count(3)}, {"w", Floats({4}, {1})}}, Contents(20));
  const std::string c =
      Write("c.safetensors", {{"count", count(4)}, {"w", Floats({4}, {1})}}, Contents(30));
  absl::StatusOr<CheckpointAverage> average = AverageCheckpoints({a, b});
  ASSERT_TRUE(average.ok()) << average.status();
  EXPECT_EQ(average->tensors[0].second.ToInts(), (std::vector<int32_t>{3, 7}));
  EXPECT_EQ(average->tensors[1].second.ToFloats(), (std::vector<float>{3}));
  EXPECT_TRUE(
      FailsWith(AverageCheckpoints({a, c}), {c, ": the integer tensor \"count\" differs from ", a,
                                             "integer tensors cannot be averaged"}));
}

TEST_F(CheckpointAverageTest, AnotherModelConfigOrVocabularyIsRefusedNamingTheKey) {
  const std::string a = WriteModel("a.safetensors", {1, 2, 3, 4}, {1, 2, 3}, 10);
  const NamedTensors same = {{"w", Floats({1, 2, 3, 4}, {2, 2})}, {"b", Floats({1, 2, 3}, {3})}};
  const std::string wider = Write("wider.safetensors", same, Contents(20, {"model.d_model=32"}));
  EXPECT_TRUE(FailsWith(AverageCheckpoints({a, wider}), {wider, ": model.d_model = 32, but 16 in ",
                                                         a, "only checkpoints of one model"}));
  const std::string variant =
      Write("variant.safetensors", same, Contents(20, {"model.attention=additive"}));
  EXPECT_TRUE(FailsWith(AverageCheckpoints({a, variant}),
                        {variant, ": model.attention = \"additive\", but \"scaled_dot\""}));
  const std::string task = Write("task.safetensors", same, Contents(20, {"task.name=reverse"}));
  EXPECT_TRUE(FailsWith(AverageCheckpoints({a, task}), {task, ": task.name = \"reverse\""}));

  CheckpointContents renamed = Contents(20);
  renamed.target_vocabulary[4] = "z";
  const std::string vocabulary = Write("vocabulary.safetensors", same, renamed);
  EXPECT_TRUE(FailsWith(AverageCheckpoints({a, vocabulary}),
                        {vocabulary, ": its target vocabulary differs from ", a,
                         "'s at token 4: \"z\" instead of \"a\""}));
  CheckpointContents longer = Contents(20);
  longer.source_vocabulary.push_back("c");
  const std::string bigger = Write("bigger.safetensors", same, longer);
  EXPECT_TRUE(FailsWith(AverageCheckpoints({a, bigger}),
                        {bigger, ": its source vocabulary has 7 tokens, but 6 in ", a}));
}

TEST_F(CheckpointAverageTest, ANonFiniteInputIsRefusedNamingFileAndTensor) {
  const std::string a = WriteModel("a.safetensors", {1, 2, 3, 4}, {1, 2, 3}, 10);
  const std::string nan =
      WriteModel("nan.safetensors", {1, std::numeric_limits<float>::quiet_NaN(), 3, 4},
                 {1, 2, std::numeric_limits<float>::infinity()}, 20);
  const std::string out = (directory_ / "out.safetensors").string();
  const absl::StatusOr<CheckpointAverage> average = WriteCheckpointAverage({a, nan}, out);
  EXPECT_EQ(average.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(FailsWith(average, {nan, ": tensor \"w\" holds 1 non-finite values (NaN or inf) of 4",
                                  "would not be finite"}));
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(CheckpointAverageTest, AnInputIsNeverOverwrittenNorCountedTwice) {
  const std::string a = WriteModel("a.safetensors", {1, 2, 3, 4}, {1, 2, 3}, 10);
  const std::string b = WriteModel("b.safetensors", {5, 6, 7, 8}, {1, 2, 3}, 20);
  const std::string before = ReadFile(b);
  EXPECT_TRUE(FailsWith(WriteCheckpointAverage({a, b}, b),
                        {b,
                         " is one of the checkpoints to average; write the average to another "
                         "file"}));
  // Another spelling of the same file.
  const std::string dotted = (directory_ / "." / "b.safetensors").string();
  EXPECT_TRUE(FailsWith(WriteCheckpointAverage({a, b}, dotted),
                        {dotted, " is one of the checkpoints to average (", b, ")"}));
  EXPECT_EQ(ReadFile(b), before);
  EXPECT_TRUE(
      FailsWith(AverageCheckpoints({a, b, dotted}), {dotted, " is given twice (also as ", b, ")"}));
  EXPECT_TRUE(FailsWith(AverageCheckpoints({}), {"no checkpoints to average"}));
}

TEST_F(CheckpointAverageTest, MissingOrForeignFilesAreErrorsNamingThem) {
  const std::string a = WriteModel("a.safetensors", {1, 2, 3, 4}, {1, 2, 3}, 10);
  const std::string gone = (directory_ / "gone.safetensors").string();
  EXPECT_TRUE(FailsWith(AverageCheckpoints({a, gone}), {gone, "cannot open"}));
  const std::string plain = (directory_ / "plain.safetensors").string();
  ASSERT_TRUE(WriteSafetensors(plain, {{"w", Tensor::Zeros({2, 2})}}).ok());
  EXPECT_TRUE(FailsWith(AverageCheckpoints({a, plain}), {plain, "not an attnlab checkpoint"}));
}

}  // namespace
}  // namespace attnlab::experiments
