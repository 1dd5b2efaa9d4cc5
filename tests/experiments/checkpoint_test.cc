// Checkpoints: a save/load round trip of everything a resumed run needs (parameters,
// optimizer state, progress, vocabularies, the dropout stream), and strict loading of
// damaged and foreign files: each a clear one-line error naming the file, never a crash,
// and a model left as it was.
#include "experiments/trainer/checkpoint.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "experiments/config/config.h"
#include "experiments/trainer/model_factory.h"
#include "framework/io/safetensors.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"
#include "framework/optim/sgd.h"
#include "gtest/gtest.h"
#include "tests/support/file_contents.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_config.h"

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;
using OrderedJson = nlohmann::ordered_json;
using attnlab::testing::ReadFile;
using attnlab::testing::WriteFile;

constexpr int64_t kVocabulary = 9;  // 4 special tokens and 5 symbols

// The tiny config's model, seeded, without dropout: steps repeat exactly.
Config TinyConfig(const std::vector<std::string>& overrides = {}) {
  std::vector<std::string> all = {"experiment.seed=3", "model.dropout=0"};
  all.insert(all.end(), overrides.begin(), overrides.end());
  return testing::TinyConfig(all);
}

std::shared_ptr<nn::Seq2SeqModel> Model(const Config& config) {
  absl::StatusOr<std::shared_ptr<nn::Seq2SeqModel>> model =
      BuildModel(config, kVocabulary, kVocabulary);
  EXPECT_TRUE(model.ok()) << model.status();
  return *model;
}

// A few Adam steps on a fixed batch, so that the moments and step counts are not zero.
void TrainSteps(nn::Seq2SeqModel& model, Adam& optimizer, int steps) {
  const std::vector<int32_t> src = {4, 5, 6, 2, 7, 8, 2, 0};
  const std::vector<int32_t> tgt_in = {1, 4, 5, 6, 1, 7, 8, 0};
  const std::vector<int32_t> tgt_out = {4, 5, 6, 2, 7, 8, 2, 0};
  for (int step = 0; step < steps; ++step) {
    const Tensor logits =
        model.Forward(Tensor::FromInts(src, {2, 4}), Tensor::FromInts(tgt_in, {2, 4}));
    CrossEntropy(Reshape(logits, {-1, logits.size(-1)}), Tensor::FromInts(tgt_out, {8}), 0.1f, 0)
        .backward();
    optimizer.Step(1e-3);
    optimizer.ZeroGrad();
  }
}

std::string TensorBytes(const Tensor& tensor) {
  const Tensor contiguous = tensor.Clone();
  const size_t bytes = contiguous.numel() * ElementSize(contiguous.dtype());
  return std::string(static_cast<const char*>(contiguous.raw_data()), bytes);
}

std::map<std::string, std::string> Snapshot(const NamedTensors& tensors) {
  std::map<std::string, std::string> bytes;
  for (const auto& [name, tensor] : tensors) bytes[name] = TensorBytes(tensor);
  return bytes;
}

// Equal snapshots; on a difference, names the tensors (not their bytes).
::testing::AssertionResult SameTensors(const std::map<std::string, std::string>& a,
                                       const std::map<std::string, std::string>& b) {
  std::vector<std::string> differences;
  for (const auto& [name, bytes] : a) {
    const auto other = b.find(name);
    if (other == b.end()) {
      differences.push_back("only in the first: " + name);
    } else if (other->second != bytes) {
      differences.push_back("differs: " + name);
    }
  }
  for (const auto& [name, bytes] : b) {
    if (!a.count(name)) differences.push_back("only in the second: " + name);
  }
  if (differences.empty()) return ::testing::AssertionSuccess();
  ::testing::AssertionResult failure = ::testing::AssertionFailure();
  for (size_t i = 0; i < differences.size() && i < 10; ++i) failure << differences[i] << "; ";
  return failure << differences.size() << " differences";
}

std::map<std::string, std::string> ModelSnapshot(const nn::Module& model) {
  NamedTensors tensors = model.NamedParameters();
  for (auto& named : model.NamedBuffers()) tensors.push_back(named);
  return Snapshot(tensors);
}

CheckpointContents SampleContents(const Config& config) {
  CheckpointContents contents;
  contents.config_toml = config.ToToml();
  // Tokens JSON must escape: quotes, backslashes, non-ASCII, control characters.
  contents.source_vocabulary = {"<pad>", "<s>", "</s>", "<unk>", "1", "\"q\"", "a\\b", "ü", "\t"};
  contents.target_vocabulary = {"<pad>", "<s>", "</s>", "<unk>", "5", "4", "3", "2", "1"};
  TrainingProgress& progress = contents.progress;
  progress.step = 1234;
  progress.epoch = 7;
  progress.batch_in_epoch = 56;
  progress.best_metric = 0.1234567890123456789;
  progress.best_step = 1000;
  progress.evaluations_without_improvement = 2;
  progress.elapsed_seconds = 98.7654321;
  progress.window_loss = 12.345678901234;
  progress.window_tokens = 321;
  progress.window_start_seconds = 90.5;
  // Above 2^53: a JSON reader using doubles would round them.
  contents.generator_state.seed = 0xFFFFFFFFFFFFFFF1ull;
  contents.generator_state.offset = (1ull << 60) + 3;
  return contents;
}

void ExpectSameContents(const CheckpointContents& a, const CheckpointContents& b) {
  EXPECT_EQ(a.config_toml, b.config_toml);
  EXPECT_EQ(a.source_vocabulary, b.source_vocabulary);
  EXPECT_EQ(a.target_vocabulary, b.target_vocabulary);
  EXPECT_EQ(a.progress.step, b.progress.step);
  EXPECT_EQ(a.progress.epoch, b.progress.epoch);
  EXPECT_EQ(a.progress.batch_in_epoch, b.progress.batch_in_epoch);
  EXPECT_EQ(a.progress.best_metric, b.progress.best_metric);  // exactly
  EXPECT_EQ(a.progress.best_step, b.progress.best_step);
  EXPECT_EQ(a.progress.evaluations_without_improvement, b.progress.evaluations_without_improvement);
  EXPECT_EQ(a.progress.elapsed_seconds, b.progress.elapsed_seconds);
  EXPECT_EQ(a.progress.window_loss, b.progress.window_loss);
  EXPECT_EQ(a.progress.window_tokens, b.progress.window_tokens);
  EXPECT_EQ(a.progress.window_start_seconds, b.progress.window_start_seconds);
  EXPECT_EQ(a.generator_state.seed, b.generator_state.seed);
  EXPECT_EQ(a.generator_state.offset, b.generator_state.offset);
}

// A safetensors file split into its header (JSON) and data, and put back together.
struct SafetensorsParts {
  OrderedJson header;
  std::string data;
};

SafetensorsParts Split(const std::string& bytes) {
  uint64_t length = 0;
  for (int i = 0; i < 8; ++i)
    length |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  return {OrderedJson::parse(bytes.substr(8, length)), bytes.substr(8 + length)};
}

std::string LengthPrefix(uint64_t length) {
  std::string prefix(8, '\0');
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<char>((length >> (8 * i)) & 0xFF);
  return prefix;
}

std::string Join(const SafetensorsParts& parts) {
  std::string header = parts.header.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  return LengthPrefix(header.size()) + header + parts.data;
}

class CheckpointTest : public attnlab::testing::TempDirTest {
 protected:
  void SetUp() override {
    config_ = TinyConfig();
    model_ = Model(config_);
    optimizer_ = std::make_unique<Adam>(model_->NamedParameters());
    TrainSteps(*model_, *optimizer_, 3);
    path_ = Path("checkpoint.safetensors");
    ASSERT_TRUE(SaveCheckpoint(path_, *model_, optimizer_.get(), SampleContents(config_)).ok());
  }

  std::string Path(const std::string& name) const { return (directory_ / name).string(); }

  // Loads `path` into a fresh model (and Adam) of `config`, expects an error containing
  // every one of `parts` and the path, and checks the model was left untouched.
  void ExpectLoadError(const std::string& path, const std::vector<std::string>& parts,
                       const Config& config) {
    const auto model = Model(config);
    Adam optimizer(model->NamedParameters());
    const auto before = ModelSnapshot(*model);
    absl::StatusOr<CheckpointContents> loaded = LoadCheckpoint(path, *model, &optimizer);
    ASSERT_FALSE(loaded.ok()) << "loaded " << path;
    const std::string message(loaded.status().message());
    EXPECT_EQ(message.rfind(path, 0), 0u) << message;             // starts with the file
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;  // one line
    for (const std::string& part : parts) {
      EXPECT_NE(message.find(part), std::string::npos)
          << "'" << message << "' lacks '" << part << "'";
    }
    EXPECT_TRUE(SameTensors(ModelSnapshot(*model), before)) << "a failed load changed the model";
    EXPECT_EQ(optimizer.step_count(), 0);
  }
  void ExpectLoadError(const std::string& path, const std::vector<std::string>& parts) {
    ExpectLoadError(path, parts, config_);
  }

  Config config_;
  std::shared_ptr<nn::Seq2SeqModel> model_;
  std::unique_ptr<Adam> optimizer_;
  std::string path_;
};

// ---- Round trip -------------------------------------------------------------------------

TEST_F(CheckpointTest, RoundTripRestoresParametersOptimizerStateAndMetadata) {
  // Another seed: every parameter starts different.
  const auto model = Model(TinyConfig({"experiment.seed=99"}));
  Adam optimizer(model->NamedParameters());
  ASSERT_FALSE(SameTensors(ModelSnapshot(*model), ModelSnapshot(*model_)));

  absl::StatusOr<CheckpointContents> loaded = LoadCheckpoint(path_, *model, &optimizer);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(SameTensors(ModelSnapshot(*model), ModelSnapshot(*model_)));
  EXPECT_TRUE(SameTensors(Snapshot(optimizer.NamedState()), Snapshot(optimizer_->NamedState())));
  EXPECT_EQ(optimizer.step_count(), 3);
  ExpectSameContents(*loaded, SampleContents(config_));

  absl::StatusOr<CheckpointContents> metadata = ReadCheckpointMetadata(path_);
  ASSERT_TRUE(metadata.ok()) << metadata.status();
  ExpectSameContents(*metadata, SampleContents(config_));
  // The saved config reads back as the same config.
  absl::StatusOr<Config> saved = Config::Parse(metadata->config_toml, "saved");
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(saved->ToToml(), config_.ToToml());

  // The restored optimizer continues exactly as the original one.
  TrainSteps(*model_, *optimizer_, 2);
  TrainSteps(*model, optimizer, 2);
  EXPECT_TRUE(SameTensors(ModelSnapshot(*model), ModelSnapshot(*model_)));
  EXPECT_TRUE(SameTensors(Snapshot(optimizer.NamedState()), Snapshot(optimizer_->NamedState())));
}

TEST_F(CheckpointTest, SavingAgainReplacesTheFileAndLeavesNoTemporaryFile) {
  CheckpointContents contents = SampleContents(config_);
  contents.progress.step = 5;
  TrainSteps(*model_, *optimizer_, 1);
  ASSERT_TRUE(SaveCheckpoint(path_, *model_, optimizer_.get(), contents).ok());
  absl::StatusOr<CheckpointContents> metadata = ReadCheckpointMetadata(path_);
  ASSERT_TRUE(metadata.ok()) << metadata.status();
  EXPECT_EQ(metadata->progress.step, 5);
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(directory_)) {
    files.push_back(entry.path().filename().string());
  }
  EXPECT_EQ(files, std::vector<std::string>{"checkpoint.safetensors"});
}

TEST_F(CheckpointTest, ACheckpointWithoutOptimizerStateLoadsIntoAModelOnly) {
  const std::string path = Path("weights.safetensors");
  ASSERT_TRUE(SaveCheckpoint(path, *model_, nullptr, SampleContents(config_)).ok());
  const auto model = Model(TinyConfig({"experiment.seed=99"}));
  ASSERT_TRUE(LoadCheckpoint(path, *model, nullptr).ok());
  EXPECT_TRUE(SameTensors(ModelSnapshot(*model), ModelSnapshot(*model_)));
  // Asking for optimizer state it does not have is an error, and nothing is loaded.
  ExpectLoadError(path, {"optimizer state", "missing \"optim."});
}

// train.ema_decay's moving average travels as ema.<name> beside the model, and the
// marks of derived weights and the EMA's update count with the metadata; a model loads
// from such a file as from any other.
TEST_F(CheckpointTest, EmaWeightsUpdateCountAndDerivedFromRoundTrip) {
  const auto averaged = Model(TinyConfig({"experiment.seed=42"}));
  CheckpointContents contents = SampleContents(config_);
  contents.ema_weights = averaged->NamedParameters();
  contents.progress.ema_updates = 17;
  contents.derived_from = "the average of 2 checkpoints: a (step 1), b (step 2)";
  const std::string path = Path("with_ema.safetensors");
  ASSERT_TRUE(SaveCheckpoint(path, *model_, optimizer_.get(), contents).ok());
  absl::StatusOr<SafetensorsContents> file = ReadSafetensors(path);
  ASSERT_TRUE(file.ok()) << file.status();
  int ema_tensors = 0;
  for (const auto& [name, tensor] : file->tensors) ema_tensors += name.rfind("ema.", 0) == 0;
  EXPECT_EQ(ema_tensors, static_cast<int>(averaged->NamedParameters().size()));

  const auto model = Model(TinyConfig({"experiment.seed=99"}));
  absl::StatusOr<CheckpointContents> loaded = LoadCheckpoint(path, *model, nullptr);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(SameTensors(ModelSnapshot(*model), ModelSnapshot(*model_)));
  EXPECT_TRUE(SameTensors(Snapshot(loaded->ema_weights), Snapshot(averaged->NamedParameters())));
  EXPECT_EQ(loaded->progress.ema_updates, 17);
  EXPECT_EQ(loaded->derived_from, contents.derived_from);
  // Without them (every checkpoint written before): no moving average, nothing derived.
  absl::StatusOr<CheckpointContents> plain = ReadCheckpointMetadata(path_);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->progress.ema_updates, 0);
  EXPECT_EQ(plain->derived_from, "");
}

TEST_F(CheckpointTest, OptimizerStateOfAnotherOptimizerIsRefused) {
  // SGD's momentum buffers are not Adam's moments.
  const auto model = Model(config_);
  SgdOptions options;
  options.momentum = 0.9;
  Sgd sgd(model->NamedParameters(), options);
  const std::string path = Path("sgd.safetensors");
  ASSERT_TRUE(SaveCheckpoint(path, *model, &sgd, SampleContents(config_)).ok());
  ExpectLoadError(path, {"optimizer state", "missing \"optim.", "unexpected \"optim."});
}

// ---- Damaged files ----------------------------------------------------------------------

TEST_F(CheckpointTest, TruncatedFilesAreErrors) {
  const std::string bytes = ReadFile(path_);
  const std::string path = Path("truncated.safetensors");
  WriteFile(path, bytes.substr(0, bytes.size() / 2));
  ExpectLoadError(path, {"not a valid safetensors file"});
  WriteFile(path, bytes.substr(0, 5));
  ExpectLoadError(path, {"too short"});
  WriteFile(path, "");
  ExpectLoadError(path, {"too short"});
  WriteFile(path, bytes.substr(0, bytes.size() - 1));
  ExpectLoadError(path, {"out of range"});
  // Every cut is an error, never a crash.
  for (size_t size = 0; size < bytes.size(); size += bytes.size() / 97 + 1) {
    WriteFile(path, bytes.substr(0, size));
    const auto model = Model(config_);
    EXPECT_FALSE(LoadCheckpoint(path, *model, nullptr).ok()) << size;
    EXPECT_FALSE(ReadCheckpointMetadata(path).ok()) << size;
  }
}

TEST_F(CheckpointTest, HeaderLengthBeyondTheFileIsAnError) {
  std::string bytes = ReadFile(path_);
  bytes.replace(0, 8, LengthPrefix(bytes.size()));
  const std::string path = Path("long_header.safetensors");
  WriteFile(path, bytes);
  ExpectLoadError(path, {"runs past the end of the file"});
}

TEST_F(CheckpointTest, HugeDeclaredHeaderLengthIsAnErrorWithoutAllocatingIt) {
  std::string bytes = ReadFile(path_);
  for (uint64_t length : {~uint64_t{0}, uint64_t{1} << 62, uint64_t{100'000'001}}) {
    bytes.replace(0, 8, LengthPrefix(length));
    const std::string path = Path("huge_header.safetensors");
    WriteFile(path, bytes);
    ExpectLoadError(path, {"exceeds the limit"});
  }
}

TEST_F(CheckpointTest, OffsetsOutOfRangeAreAnError) {
  SafetensorsParts parts = Split(ReadFile(path_));
  const std::string path = Path("offsets.safetensors");
  for (auto& [name, entry] : parts.header.items()) {
    if (name == "__metadata__") continue;
    const uint64_t begin = entry["data_offsets"][0].get<uint64_t>();
    entry["data_offsets"] = {begin, uint64_t{1} << 40};
    WriteFile(path, Join(parts));
    ExpectLoadError(path, {"out of range", name});
    entry["data_offsets"] = {uint64_t{5}, uint64_t{4}};  // begin after end
    WriteFile(path, Join(parts));
    ExpectLoadError(path, {"data_offsets must be [begin, end]", name});
    entry["data_offsets"] = {-1, 4};
    WriteFile(path, Join(parts));
    ExpectLoadError(path, {"data_offsets", name});
    break;
  }
}

TEST_F(CheckpointTest, HeaderThatIsNotJsonIsAnError) {
  SafetensorsParts parts = Split(ReadFile(path_));
  std::string header = "{\"a\": [1, 2";
  header.append(8 - header.size() % 8, ' ');
  const std::string path = Path("not_json.safetensors");
  WriteFile(path, LengthPrefix(header.size()) + header + parts.data);
  ExpectLoadError(path, {"not valid JSON"});
}

TEST_F(CheckpointTest, DamagedHeaderBytesNeverCrash) {
  const std::string bytes = ReadFile(path_);
  uint64_t header_length = 0;
  for (int i = 0; i < 8; ++i)
    header_length |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  const std::string path = Path("flipped.safetensors");
  const auto model = Model(config_);
  Adam optimizer(model->NamedParameters());
  // About 120 positions spread over the header (the tensor entries come first).
  const uint64_t stride = header_length / 120 + 1;
  for (uint64_t at = 8; at < 8 + header_length; at += stride) {
    for (const char replacement : {'9', '"', ']', '\0'}) {
      std::string damaged = bytes;
      damaged[at] = replacement;
      WriteFile(path, damaged);
      // Either an error or (e.g. a digit of the saved config text) a load: never a crash.
      const absl::StatusOr<CheckpointContents> result = LoadCheckpoint(path, *model, &optimizer);
      if (!result.ok()) {
        EXPECT_FALSE(std::string(result.status().message()).empty());
      }
    }
  }
}

// ---- Foreign files ----------------------------------------------------------------------

TEST_F(CheckpointTest, ACheckpointOfAnotherShapeListsEveryMismatch) {
  // Same names, other widths.
  ExpectLoadError(path_, {"does not match the model", "expected f32[", "got f32["},
                  TinyConfig({"model.d_model=8", "model.d_ff=16"}));
}

TEST_F(CheckpointTest, MissingAndUnexpectedParametersAreListedByName) {
  // Saved: 2 encoder layers and 1 decoder layer. Loaded into 1 and 2: every
  // encoder.layers.1.* is unexpected and every decoder.layers.1.* missing.
  const Config saved = TinyConfig({"model.encoder_layers=2"});
  const auto saved_model = Model(saved);
  const std::string path = Path("two_encoder_layers.safetensors");
  ASSERT_TRUE(SaveCheckpoint(path, *saved_model, nullptr, SampleContents(saved)).ok());
  const Config other = TinyConfig({"model.decoder_layers=2"});
  const auto model = Model(other);
  absl::StatusOr<CheckpointContents> loaded = LoadCheckpoint(path, *model, nullptr);
  ASSERT_FALSE(loaded.ok());
  const std::string message(loaded.status().message());
  int missing = 0, unexpected = 0;
  for (const auto& [name, tensor] : model->NamedParameters()) {
    if (name.rfind("decoder.layers.1.", 0) != 0) continue;
    ++missing;
    EXPECT_NE(message.find("missing \"" + name + "\""), std::string::npos) << name;
  }
  for (const auto& [name, tensor] : saved_model->NamedParameters()) {
    if (name.rfind("encoder.layers.1.", 0) != 0) continue;
    ++unexpected;
    EXPECT_NE(message.find("unexpected \"" + name + "\""), std::string::npos) << name;
  }
  EXPECT_GT(missing, 0);
  EXPECT_GT(unexpected, 0);
  ExpectLoadError(
      path,
      {"does not match the model", "missing \"decoder.layers.1.", "unexpected \"encoder.layers.1."},
      other);
}

TEST_F(CheckpointTest, APlainSafetensorsFileIsNotACheckpoint) {
  const std::string path = Path("plain.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, model_->NamedParameters()).ok());
  ExpectLoadError(path, {"not an attnlab checkpoint", "format_version"});
  EXPECT_FALSE(ReadCheckpointMetadata(path).ok());
}

TEST_F(CheckpointTest, EachMissingMetadataFieldIsNamed) {
  const SafetensorsParts original = Split(ReadFile(path_));
  const std::string path = Path("partial.safetensors");
  for (const char* key :
       {"format_version", "config", "source_vocabulary", "target_vocabulary", "progress"}) {
    SafetensorsParts parts = original;
    ASSERT_TRUE(parts.header["__metadata__"].contains(key)) << key;
    parts.header["__metadata__"].erase(key);
    WriteFile(path, Join(parts));
    ExpectLoadError(path, {"not an attnlab checkpoint", std::string("'") + key + "'"});
  }
}

TEST_F(CheckpointTest, AnotherFormatVersionIsRefused) {
  SafetensorsParts parts = Split(ReadFile(path_));
  parts.header["__metadata__"]["format_version"] = "2";
  const std::string path = Path("v2.safetensors");
  WriteFile(path, Join(parts));
  ExpectLoadError(path,
                  {"format version 2", std::string("reads version ") + kCheckpointFormatVersion});
  absl::StatusOr<CheckpointContents> metadata = ReadCheckpointMetadata(path);
  ASSERT_FALSE(metadata.ok());
  EXPECT_EQ(metadata.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(CheckpointTest, CorruptMetadataValuesAreErrors) {
  const SafetensorsParts original = Split(ReadFile(path_));
  const std::string path = Path("corrupt.safetensors");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"source_vocabulary", "not json"},
      {"source_vocabulary", "[1, 2]"},
      {"target_vocabulary", "{\"a\": 1}"},
      {"progress", "{}"},
      {"progress", "[1]"},
      {"progress", "garbage"},
      {"progress", R"({"step": -1, "epoch": 0, "batch_in_epoch": 0, "best_metric": 0,
                       "best_step": -1, "evaluations_without_improvement": 0,
                       "elapsed_seconds": 0, "generator_seed": "1", "generator_offset": "0"})"},
      {"progress", R"({"step": 1, "epoch": 0, "batch_in_epoch": 0, "best_metric": 0,
                       "best_step": -1, "evaluations_without_improvement": 0,
                       "elapsed_seconds": 0, "generator_seed": "x", "generator_offset": "0"})"},
      {"progress", R"({"step": "one", "epoch": 0, "batch_in_epoch": 0, "best_metric": 0,
                       "best_step": -1, "evaluations_without_improvement": 0,
                       "elapsed_seconds": 0, "generator_seed": "1", "generator_offset": "0"})"},
  };
  for (const auto& [key, value] : cases) {
    SafetensorsParts parts = original;
    parts.header["__metadata__"][key] = value;
    WriteFile(path, Join(parts));
    SCOPED_TRACE(key + " = " + value);
    ExpectLoadError(path, {key == "progress" ? "corrupt training progress" : "corrupt"});
  }
}

TEST_F(CheckpointTest, ProgressWithoutTheLogWindowStillLoads) {
  // Checkpoints written before the log window was saved have no window_* fields.
  SafetensorsParts parts = Split(ReadFile(path_));
  OrderedJson progress =
      OrderedJson::parse(parts.header["__metadata__"]["progress"].get<std::string>());
  progress.erase("window_loss");
  progress.erase("window_tokens");
  progress.erase("window_start_seconds");
  parts.header["__metadata__"]["progress"] = progress.dump();
  const std::string path = Path("old.safetensors");
  WriteFile(path, Join(parts));
  absl::StatusOr<CheckpointContents> metadata = ReadCheckpointMetadata(path);
  ASSERT_TRUE(metadata.ok()) << metadata.status();
  EXPECT_EQ(metadata->progress.step, 1234);
  EXPECT_EQ(metadata->progress.window_loss, 0.0);
  EXPECT_EQ(metadata->progress.window_tokens, 0);
  EXPECT_EQ(metadata->progress.window_start_seconds, metadata->progress.elapsed_seconds);
}

TEST_F(CheckpointTest, MissingFilesAndDirectoriesAreErrors) {
  absl::StatusOr<CheckpointContents> missing = ReadCheckpointMetadata(Path("nope.safetensors"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
  ExpectLoadError(Path("nope.safetensors"), {"cannot open"});
  ExpectLoadError(directory_.string(), {"not a regular file"});
}

}  // namespace
}  // namespace attnlab::experiments
