// Configs: strict checking against the schema (unknown keys with a suggestion, wrong
// types, out-of-range numbers, bad choices, each naming file and line), missing and
// malformed files, `base` inheritance (chains, relative paths, cycles), --set overrides
// and their errors, ToToml printing what Parse reads back, and experiments/CONFIG.md
// being the current ConfigReferenceMarkdown().
#include "experiments/config/config.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "experiments/config/schema.h"
#include "framework/core/error.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;

::testing::AssertionResult Contains(const absl::Status& status, const std::string& part) {
  if (status.ok())
    return ::testing::AssertionFailure() << "expected an error containing '" << part << "'";
  if (std::string(status.message()).find(part) == std::string::npos) {
    return ::testing::AssertionFailure() << "'" << status.message() << "' lacks '" << part << "'";
  }
  return ::testing::AssertionSuccess();
}

class ConfigTest : public attnlab::testing::TempDirTest {
 protected:
  // Writes `contents` to `name` under the test's directory and returns the path.
  std::string Write(const std::string& name, const std::string& contents) {
    const fs::path path = directory_ / name;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << contents;
    return path.string();
  }
};

// ---- Strict keys ----------------------------------------------------------------------

TEST_F(ConfigTest, UnknownKeyNamesFileLineAndTheNearestKey) {
  const std::string path = Write("typo.toml",
                                 "[model]\n"
                                 "heads = 2\n"
                                 "d_modle = 64\n");
  const absl::StatusOr<Config> config = Config::Load(path);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(config.status(), path + ":3:"));
  EXPECT_TRUE(Contains(config.status(), "unknown key 'model.d_modle'"));
  EXPECT_TRUE(Contains(config.status(), "did you mean 'model.d_model'?"));
}

TEST_F(ConfigTest, KeyInTheWrongTableSuggestsTheRightOne) {
  const absl::StatusOr<Config> config =
      Config::Parse("[train]\nlr = 1\nwarmup_setps = 10\n", "x.toml");
  EXPECT_TRUE(Contains(config.status(), "x.toml:3:"));
  EXPECT_TRUE(Contains(config.status(), "did you mean 'train.warmup_steps'?"));
  const absl::StatusOr<Config> moved = Config::Parse("[train]\nd_model = 8\n", "x.toml");
  EXPECT_TRUE(Contains(moved.status(), "did you mean 'model.d_model'?"));
}

TEST_F(ConfigTest, TopLevelKeyOutsideATableIsAnError) {
  const absl::StatusOr<Config> config = Config::Parse("seed = 3\n", "top.toml");
  EXPECT_TRUE(Contains(config.status(), "top.toml:1: unknown top-level key 'seed'"));
  EXPECT_TRUE(Contains(config.status(), "seed'?"));
}

TEST_F(ConfigTest, WrongTypeNamesTheKeyAndType) {
  const absl::StatusOr<Config> config = Config::Parse("[model]\n\nd_model = \"big\"\n", "t.toml");
  EXPECT_TRUE(Contains(config.status(), "t.toml:3:"));
  EXPECT_TRUE(Contains(config.status(), "'model.d_model' must be an integer"));
  EXPECT_TRUE(Contains(Config::Parse("[model]\ndropout = true\n", "t.toml").status(),
                       "'model.dropout' must be a float"));
  EXPECT_TRUE(Contains(Config::Parse("[model]\nd_model = 1.5\n", "t.toml").status(),
                       "'model.d_model' must be an integer"));
  EXPECT_TRUE(Contains(Config::Parse("[eval]\nall_heads = 1\n", "t.toml").status(),
                       "'eval.all_heads' must be a boolean"));
}

TEST_F(ConfigTest, IntegerIsAcceptedForAFloat) {
  const absl::StatusOr<Config> config = Config::Parse("[train]\nlr = 2\n", "t.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->train().lr, 2.0);
}

TEST_F(ConfigTest, OutOfRangeNamesTheRange) {
  const absl::StatusOr<Config> config = Config::Parse("[model]\ndropout = 1.5\n", "r.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(Contains(config.status(), "r.toml:2:"));
  EXPECT_TRUE(Contains(config.status(), "'model.dropout' = 1.5 is out of range [0.0, 0.99]"));
  EXPECT_TRUE(Contains(Config::Parse("[model]\nd_model = 0\n", "r.toml").status(), "out of range"));
}

TEST_F(ConfigTest, BadChoiceListsTheChoices) {
  const absl::StatusOr<Config> config = Config::Parse("[model]\nnorm = \"middle\"\n", "c.toml");
  EXPECT_TRUE(Contains(config.status(), "c.toml:2:"));
  EXPECT_TRUE(Contains(config.status(), "'model.norm' = \"middle\" is not one of: post, pre"));
}

TEST_F(ConfigTest, ValuesAndOriginsAreRead) {
  const std::string path = Write("ok.toml",
                                 "# a comment\n"
                                 "[model]\n"
                                 "d_model = 64\n"
                                 "[train]\n"
                                 "lr = 0.5\n"
                                 "optimizer = \"sgd\"\n"
                                 "[eval]\n"
                                 "all_heads = true\n");
  const absl::StatusOr<Config> config = Config::Load(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->model().d_model, 64);
  EXPECT_EQ(config->train().lr, 0.5);
  EXPECT_EQ(config->train().optimizer, "sgd");
  EXPECT_TRUE(config->eval().all_heads);
  EXPECT_EQ(config->model().attention.heads, 4);  // the default
  EXPECT_EQ(config->Origin("model.d_model"), path + ":3");
  EXPECT_EQ(config->Origin("model.heads"), "default");
  EXPECT_EQ(config->path(), path);
}

// Code that knows a key reads its field (a typo does not compile); a key named at run time
// (a study's axis) goes through Value(), where an undeclared one is a programming error.
TEST_F(ConfigTest, ValueOfAnUndeclaredKeyThrows) {
  const Config config;
  EXPECT_EQ(std::get<int64_t>(config.Value("model.d_model")), 128);
  EXPECT_THROW(config.Value("model.d_modle"), Error);
}

// ---- Files ----------------------------------------------------------------------------

TEST_F(ConfigTest, MissingFileIsNotFound) {
  const std::string path = (directory_ / "absent.toml").string();
  const absl::StatusOr<Config> config = Config::Load(path);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Contains(config.status(), path));
}

TEST_F(ConfigTest, MalformedTomlNamesFileAndLine) {
  const std::string path = Write("bad.toml", "[model]\nd_model = 64\nheads = = 2\n");
  const absl::StatusOr<Config> config = Config::Load(path);
  EXPECT_TRUE(Contains(config.status(), path + ":3: invalid TOML"));
}

// ---- Inheritance ----------------------------------------------------------------------

TEST_F(ConfigTest, BaseIsLoadedFirstAndOverridden) {
  Write("common/base.toml",
        "[model]\n"
        "d_model = 64\n"
        "heads = 8\n"
        "[train]\n"
        "lr = 0.5\n");
  const std::string child = Write("child.toml",
                                  "base = \"common/base.toml\"\n"
                                  "[model]\n"
                                  "d_model = 32\n");
  const absl::StatusOr<Config> config = Config::Load(child);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->model().d_model, 32);         // the child wins
  EXPECT_EQ(config->model().attention.heads, 8);  // inherited
  EXPECT_EQ(config->train().lr, 0.5);             // inherited
  EXPECT_EQ(config->Origin("model.d_model"), child + ":3");
  EXPECT_NE(config->Origin("model.heads").find("base.toml:3"), std::string::npos)
      << config->Origin("model.heads");
}

TEST_F(ConfigTest, BaseChainsResolveRelativeToEachFile) {
  Write("a/root.toml", "[model]\nd_model = 16\nheads = 2\nd_ff = 64\n");
  Write("a/b/middle.toml", "base = \"../root.toml\"\n[model]\nheads = 1\n");
  const std::string leaf = Write("leaf.toml", "base = \"a/b/middle.toml\"\n[model]\nd_ff = 32\n");
  const absl::StatusOr<Config> config = Config::Load(leaf);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->model().d_model, 16);
  EXPECT_EQ(config->model().attention.heads, 1);
  EXPECT_EQ(config->model().d_ff, 32);
}

TEST_F(ConfigTest, ErrorInABaseNamesTheBase) {
  Write("base.toml", "[model]\nd_modle = 64\n");
  const std::string child = Write("child.toml", "base = \"base.toml\"\n");
  EXPECT_TRUE(Contains(Config::Load(child).status(), "base.toml:2: unknown key 'model.d_modle'"));
  const std::string orphan = Write("orphan.toml", "base = \"nowhere.toml\"\n");
  const absl::StatusOr<Config> missing = Config::Load(orphan);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Contains(missing.status(), "nowhere.toml"));
}

TEST_F(ConfigTest, InheritanceCycleIsAnError) {
  const std::string a = Write("a.toml", "base = \"b.toml\"\n[model]\nd_model = 8\n");
  const std::string b = Write("b.toml", "base = \"a.toml\"\n[model]\nheads = 2\n");
  const absl::StatusOr<Config> config = Config::Load(a);
  ASSERT_FALSE(config.ok());
  EXPECT_TRUE(Contains(config.status(), "inheritance cycle"));
  EXPECT_TRUE(Contains(config.status(), "a.toml -> "));
  EXPECT_TRUE(Contains(config.status(), "b.toml -> "));

  const std::string self = Write("self.toml", "base = \"self.toml\"\n");
  EXPECT_TRUE(Contains(Config::Load(self).status(), "inheritance cycle"));
}

TEST_F(ConfigTest, BaseNeedsAFileLocationAndAString) {
  EXPECT_TRUE(
      Contains(Config::Parse("base = \"x.toml\"\n", "text").status(), "needs a file location"));
  const std::string path = Write("number.toml", "base = 3\n");
  EXPECT_TRUE(Contains(Config::Load(path).status(), "`base` must be a string"));
}

// ---- --set ----------------------------------------------------------------------------

TEST_F(ConfigTest, OverridesWinOverFilesAndAreParsedByType) {
  const std::string path = Write("o.toml", "[model]\nd_model = 64\n[task]\nname = \"copy\"\n");
  const absl::StatusOr<Config> config =
      Config::Load(path, {"model.d_model=16", "train.lr=0.25", "model.share_embeddings=true",
                          "task.name=reverse", "experiment.name=\"quoted\""});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->model().d_model, 16);
  EXPECT_EQ(config->train().lr, 0.25);
  EXPECT_TRUE(config->model().share_embeddings);
  EXPECT_EQ(config->task().name, "reverse");
  EXPECT_EQ(config->experiment().name, "quoted");
  EXPECT_EQ(config->Origin("model.d_model"), "--set");
  // Later overrides win over earlier ones.
  EXPECT_EQ(Config::Parse("", "t", {"model.heads=2", "model.heads=8"})->model().attention.heads, 8);
}

TEST_F(ConfigTest, OverrideErrors) {
  Config config;
  EXPECT_TRUE(
      Contains(config.Set("model.d_model"), "--set model.d_model: expected table.key=value"));
  EXPECT_TRUE(Contains(config.Set("model.dmodel=3"), "did you mean 'model.d_model'?"));
  EXPECT_TRUE(Contains(config.Set("d_model=3"), "did you mean 'model.d_model'?"));
  EXPECT_TRUE(Contains(config.Set("model.d_model=abc"), "'model.d_model' must be an integer"));
  EXPECT_TRUE(Contains(config.Set("model.d_model=2.5"), "must be an integer"));
  EXPECT_TRUE(Contains(config.Set("train.lr=fast"), "'train.lr' must be a float"));
  EXPECT_TRUE(Contains(config.Set("eval.all_heads=yes"), "'eval.all_heads' must be a boolean"));
  EXPECT_TRUE(Contains(config.Set("train.beta1=2"), "out of range"));
  EXPECT_TRUE(Contains(config.Set("model.norm=middle"), "is not one of: post, pre"));
  // A failed override changes nothing.
  EXPECT_EQ(config.model().d_model, 128);
  EXPECT_EQ(config.model().norm, nn::NormPosition::kPost);
  // Errors from Load name the override too.
  const std::string path = Write("fine.toml", "[model]\nd_model = 64\n");
  EXPECT_TRUE(Contains(Config::Load(path, {"model.heads=0"}).status(),
                       "'model.heads' = 0 is out of range"));
}

// ---- Hostile values ---------------------------------------------------------------------

TEST_F(ConfigTest, NanAndInfinityAreRejectedForEveryFloatKey) {
  for (const ConfigKey& key : ConfigSchema()) {
    if (key.type != OptionType::kFloat) continue;
    for (const char* text : {"nan", "inf", "-inf", "-nan"}) {
      const std::string assignment = key.name + "=" + text;
      EXPECT_TRUE(
          Contains(Config::Parse("", "t.toml", {assignment}).status(), "is not a finite number"))
          << assignment;
    }
  }
  // TOML's own nan and inf literals, with the file and line.
  EXPECT_TRUE(Contains(Config::Parse("[model]\n\ndropout = nan\n", "n.toml").status(),
                       "n.toml:3: 'model.dropout' = nan is not a finite number"));
  EXPECT_TRUE(Contains(Config::Parse("[train]\nlr = -inf\n", "n.toml").status(),
                       "n.toml:2: 'train.lr' = -inf is not a finite number"));
}

TEST_F(ConfigTest, ControlCharactersInStringsAreRejected) {
  // A NUL in a name used as a directory would cut the path and the messages short.
  EXPECT_TRUE(Contains(
      Config::Parse("[experiment]\nname = \"ab\\u0000cd\"\n", "c.toml").status(),
      "c.toml:2: 'experiment.name' = \"ab\\u0000cd\" contains a control character (\\u0000)"));
  EXPECT_TRUE(Contains(Config::Parse("", "c", {"experiment.runs_dir=a\nb"}).status(),
                       "contains a control character"));
  EXPECT_TRUE(Contains(Config::Parse("", "c", {"task.train_path=x\x7f"}).status(),
                       "contains a control character"));
  EXPECT_TRUE(Config::Parse("", "c", {"experiment.name=ünïcode name"}).ok());
}

TEST_F(ConfigTest, SizesBeyondTheSchemaBoundsAreOutOfRange) {
  for (const char* assignment :
       {"model.d_model=9223372036854775807", "model.d_model=2305843009213693952",
        "model.encoder_layers=1000000000", "model.decoder_layers=1000000000",
        "model.d_ff=1000000000", "model.key_size=1000000000", "model.max_len=1000000000000",
        "model.heads=1000000", "model.hidden_size=1000000000", "task.train_size=1000000000000",
        "task.max_length=1000000000", "train.batch_tokens=9223372036854775807",
        "eval.max_decode_length=9223372036854775807"}) {
    EXPECT_TRUE(Contains(Config::Parse("", "t", {assignment}).status(), "is out of range"))
        << assignment;
  }
}

TEST_F(ConfigTest, ZeroEncoderLayersNamesFileAndLine) {
  EXPECT_TRUE(Contains(Config::Parse("[model]\nencoder_layers = 0\n", "z.toml").status(),
                       "z.toml:2: 'model.encoder_layers' = 0 is out of range [1, 1024]"));
}

TEST_F(ConfigTest, HeadsNotDividingDModelNamesBothOrigins) {
  const std::string path = Write("heads.toml", "[model]\nd_model = 10\nheads = 4\n");
  EXPECT_TRUE(Contains(
      Config::Load(path).status(),
      "model.d_model = 10 (" + path + ":2) is not divisible by model.heads = 4 (" + path + ":3)"));
  EXPECT_TRUE(Contains(Config::Load(path, {"model.heads=3"}).status(), "model.heads = 3 (--set)"));
  // A per-head size of its own lifts the constraint; the RNN has no heads.
  EXPECT_TRUE(Config::Load(path, {"model.key_size=4"}).ok());
  EXPECT_TRUE(Config::Load(path, {"model.type=rnn"}).ok());
}

TEST_F(ConfigTest, NoStepBudgetIsAnError) {
  const std::string path = Write("steps.toml", "[train]\nmax_steps = 0\n");
  EXPECT_TRUE(Contains(Config::Load(path).status(),
                       "train.max_steps = 0 (" + path +
                           ":2) and train.epochs = 0 (default): the run would take no step"));
  EXPECT_TRUE(Config::Load(path, {"train.epochs=1"}).ok());
}

TEST_F(ConfigTest, AnEmaDecayOfOneIsAnErrorBelowItIsNot) {
  const std::string path = Write("ema.toml", "[train]\nema_decay = 1.0\n");
  EXPECT_TRUE(Contains(Config::Load(path).status(), "train.ema_decay = 1.0 (" + path +
                                                        ":2): a decay of 1 would never move "
                                                        "the average; it must be below 1"));
  EXPECT_TRUE(Contains(Config::Load(path, {"train.ema_decay=1.5"}).status(), "is out of range"));
  EXPECT_TRUE(Config::Load(path, {"train.ema_decay=0.9999"}).ok());
}

TEST_F(ConfigTest, DirectoryAsConfigOrBaseIsAnError) {
  Write("dir/inner.toml", "[model]\nd_model = 8\n");
  const std::string directory = (directory_ / "dir").string();
  EXPECT_TRUE(Contains(Config::Load(directory).status(), directory + ": is a directory"));
  const std::string child = Write("dir/child.toml", "base = \".\"\n");
  EXPECT_TRUE(Contains(Config::Load(child).status(),
                       "is a directory, not a config file (the base "
                       "named at " +
                           child + ":1)"));
  const std::string orphan = Write("orphan.toml", "base = \"gone.toml\"\n");
  EXPECT_TRUE(Contains(Config::Load(orphan).status(), "(the base named at " + orphan + ":1)"));
}

// A path the file system refuses (a name over NAME_MAX) is an error naming it, not an
// exception (found by the config fuzzer: a `base` with a 300-byte name terminated it).
TEST_F(ConfigTest, ABaseWhoseNameIsTooLongIsAnError) {
  const std::string child = Write("child.toml", "base = \"" + std::string(300, 'b') + "\"\n");
  EXPECT_TRUE(Contains(Config::Load(child).status(), ": cannot read: File name too long"));
  EXPECT_TRUE(Contains(Config::Load((directory_ / std::string(300, 'c')).string()).status(),
                       "cannot read: File name too long"));
}

// ---- Printing -------------------------------------------------------------------------

// Every key's value, printed, so two configs compare in one EXPECT_EQ with a readable diff.
std::vector<std::string> AllValues(const Config& config) {
  std::vector<std::string> values;
  for (const ConfigKey& key : ConfigSchema()) {
    const OptionValue value = config.Value(key.name);
    values.push_back(key.name + " = " + FormatOptionValue(value));
  }
  return values;
}

TEST_F(ConfigTest, ToTomlParsesBackToTheSameValues) {
  const absl::StatusOr<Config> config = Config::Parse(
      "[experiment]\nname = \"say \\\"hi\\\" \\\\ there\"\n"
      "runs_dir = \"runs/ünïcode dir\"\n[model]\nd_model = 48\n",
      "source.toml",
      {"train.lr=0.123456789012345678", "train.eps=1e-9", "train.weight_decay=3",
       "train.min_lr=1e-300", "model.attention=additive", "model.tie_generator=true",
       "task.seed=987654321012", "eval.length_penalty=0.6"});
  ASSERT_TRUE(config.ok()) << config.status();
  const std::string toml = config->ToToml();
  const absl::StatusOr<Config> reparsed = Config::Parse(toml, "printed.toml");
  ASSERT_TRUE(reparsed.ok()) << reparsed.status() << "\n" << toml;
  EXPECT_EQ(AllValues(*reparsed), AllValues(*config)) << toml;
  // Exactly, not to print precision.
  EXPECT_EQ(reparsed->train().lr, config->train().lr);
  EXPECT_EQ(reparsed->experiment().name, "say \"hi\" \\ there");
  EXPECT_EQ(reparsed->experiment().runs_dir, "runs/ünïcode dir");
  // The defaults round-trip too, and printing is stable.
  EXPECT_EQ(AllValues(*Config::Parse(Config().ToToml(), "defaults.toml")), AllValues(Config()));
  EXPECT_EQ(reparsed->ToToml(), toml);
}

TEST(ConfigReferenceTest, ConfigMdIsCurrent) {
  const std::string path = std::string(ATTNLAB_SOURCE_DIR) + "/experiments/CONFIG.md";
  std::ifstream file(path, std::ios::binary);
  std::stringstream contents;
  contents << file.rdbuf();
  EXPECT_TRUE(file.good()) << "cannot read " << path;
  EXPECT_EQ(contents.str(), ConfigReferenceMarkdown())
      << path << " is out of date: regenerate it with `attnlab keys > experiments/CONFIG.md`";
}

TEST(ConfigReferenceTest, EveryKeyIsDocumented) {
  const std::string reference = ConfigReferenceMarkdown();
  for (const ConfigKey& key : ConfigSchema()) {
    const std::string short_name = key.name.substr(key.name.rfind('.') + 1);
    EXPECT_NE(reference.find("| `" + short_name + "` |"), std::string::npos) << key.name;
    EXPECT_FALSE(key.doc.empty()) << key.name;
  }
}

}  // namespace
}  // namespace attnlab::experiments
