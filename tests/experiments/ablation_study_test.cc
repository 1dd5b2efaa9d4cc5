// Study files (experiments/ablation/study.h, cells.h, plan.h): parsing, every validation
// error with its file and line, and the cells each design forms — grids, one at a time
// (Table 3 of "Attention Is All You Need"), explicit lists, named variants — with the
// keys they set and the base cell.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "experiments/ablation/cells.h"
#include "experiments/ablation/plan.h"
#include "experiments/ablation/study.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;

::testing::AssertionResult FailsWith(const absl::Status& status,
                                     const std::vector<std::string>& parts) {
  if (status.ok()) return ::testing::AssertionFailure() << "expected an error";
  for (const std::string& part : parts) {
    if (std::string(status.message()).find(part) == std::string::npos) {
      return ::testing::AssertionFailure() << "'" << status.message() << "' lacks '" << part << "'";
    }
  }
  return ::testing::AssertionSuccess();
}

constexpr char kHeader[] = R"toml([study]
base = "base.toml"
seeds = [1, 2]
metrics = ["exact_match"]
)toml";

absl::StatusOr<std::vector<Cell>> Cells(const std::string& text) {
  absl::StatusOr<Study> study = ParseStudy(text, "s.toml");
  if (!study.ok()) return study.status();
  return ExpandCells(*study);
}

std::vector<std::string> Names(const std::vector<Cell>& cells) {
  std::vector<std::string> names;
  for (const Cell& cell : cells) names.push_back(cell.name);
  return names;
}

// The value the cell's assignments give `key` last ("" if none), as config text.
std::string Final(const Cell& cell, const std::string& key) {
  std::string value;
  for (const KeyAssignment& assignment : cell.assignments) {
    if (assignment.key == key) value = FormatOptionValue(assignment.value);
  }
  return value;
}

TEST(AblationStudyTest, ParsesTheHeaderSeedsMetricsAndCommonKeys) {
  absl::StatusOr<Study> study = ParseStudy(R"toml([study]
name = "heads"
description = "Heads."
base = "../copy/transformer.toml"
seeds = 3
metrics = ["exact_match", "loss"]

[set]
train.max_steps = 100
[set.model]
dropout = 0.0

[[axis]]
key = "model.heads"
values = [4, 1]
)toml",
                                           "experiments/recipes/studies/heads.toml");
  ASSERT_TRUE(study.ok()) << study.status();
  EXPECT_EQ(study->name, "heads");
  EXPECT_EQ(study->description, "Heads.");
  EXPECT_EQ(study->base_config, "experiments/recipes/copy/transformer.toml");
  EXPECT_EQ(study->seeds, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(study->metrics, (std::vector<std::string>{"exact_match", "loss"}));
  ASSERT_EQ(study->common.size(), 2u);
  EXPECT_EQ(study->common[0].key, "train.max_steps");
  EXPECT_EQ(study->common[0].where, "experiments/recipes/studies/heads.toml:9");
  EXPECT_EQ(study->common[1].key, "model.dropout");
  ASSERT_EQ(study->axes.size(), 1u);
  EXPECT_EQ(study->axes[0].name, "heads");
  EXPECT_EQ(study->axes[0].levels[0].label, "heads-4");
  EXPECT_EQ(study->design, StudyDesign::kGrid);
}

TEST(AblationStudyTest, TheNameDefaultsToTheFileStemAndSeedsMayBeAList) {
  absl::StatusOr<Study> study = ParseStudy(R"toml([study]
base = "b.toml"
seeds = [7, 3]
metrics = ["loss"]
[[axis]]
key = "model.attention"
values = ["dot"]
)toml",
                                           "dir/my_study.toml");
  ASSERT_TRUE(study.ok()) << study.status();
  EXPECT_EQ(study->name, "my_study");
  EXPECT_EQ(study->base_config, "dir/b.toml");
  EXPECT_EQ(study->seeds, (std::vector<int64_t>{7, 3}));
}

TEST(AblationStudyTest, AGridIsEveryCombinationWithTheLastAxisFastest) {
  absl::StatusOr<std::vector<Cell>> cells = Cells(std::string(kHeader) + R"toml(
[set]
train.max_steps = 50
[[axis]]
key = "model.attention"
values = ["scaled_dot", "dot", "additive"]
[[axis]]
key = "model.heads"
values = [4, 1]
)toml");
  ASSERT_TRUE(cells.ok()) << cells.status();
  EXPECT_EQ(Names(*cells),
            (std::vector<std::string>{"scaled_dot+heads-4", "scaled_dot+heads-1", "dot+heads-4",
                                      "dot+heads-1", "additive+heads-4", "additive+heads-1"}));
  EXPECT_TRUE((*cells)[0].base);
  for (size_t i = 1; i < cells->size(); ++i) EXPECT_FALSE((*cells)[i].base);
  EXPECT_EQ(Final((*cells)[3], "model.attention"), "\"dot\"");
  EXPECT_EQ(Final((*cells)[3], "model.heads"), "1");
  EXPECT_EQ(Final((*cells)[3], "train.max_steps"), "50");  // [set] reaches every cell
  EXPECT_EQ((*cells)[3].levels,
            (std::vector<std::string>{"model.attention=\"dot\"", "model.heads=1"}));
}

TEST(AblationStudyTest, NamedVariantsKeepTheirFileOrderAndSetSeveralKeys) {
  // toml++ sorts a table's keys; the variants must stay in the order written ("pre" <
  // "post" alphabetically, but post is the base).
  absl::StatusOr<std::vector<Cell>> cells = Cells(std::string(kHeader) + R"toml(
[[axis]]
name = "norm"
variants.post = { model.norm = "post" }
variants.pre = { model.norm = "pre", train.warmup_steps = 800 }
)toml");
  ASSERT_TRUE(cells.ok()) << cells.status();
  EXPECT_EQ(Names(*cells), (std::vector<std::string>{"post", "pre"}));
  EXPECT_EQ(Final((*cells)[1], "model.norm"), "\"pre\"");
  EXPECT_EQ(Final((*cells)[1], "train.warmup_steps"), "800");
  EXPECT_EQ(Final((*cells)[0], "train.warmup_steps"), "");
}

TEST(AblationStudyTest, OneAtATimeIsABaseRowAndRowsThatChangeOneThing) {
  absl::StatusOr<std::vector<Cell>> cells = Cells(std::string(kHeader) + R"toml(
design = "one_at_a_time"
[[axis]]
key = "model.heads"
values = [4, 1, 8]
[[axis]]
key = "model.positional"
values = ["sinusoidal", "rope"]
[[axis]]
name = "depth"
variants.layers-2 = { model.encoder_layers = 2, model.decoder_layers = 2 }
variants.layers-1 = { model.encoder_layers = 1, model.decoder_layers = 1 }
)toml");
  ASSERT_TRUE(cells.ok()) << cells.status();
  EXPECT_EQ(Names(*cells),
            (std::vector<std::string>{"base", "heads-1", "heads-8", "rope", "layers-1"}));
  EXPECT_TRUE((*cells)[0].base);
  // The base row has every axis' first level; "rope" changes the positions only.
  EXPECT_EQ(Final((*cells)[0], "model.heads"), "4");
  EXPECT_EQ(Final((*cells)[0], "model.encoder_layers"), "2");
  EXPECT_EQ(Final((*cells)[3], "model.positional"), "\"rope\"");
  EXPECT_EQ(Final((*cells)[3], "model.heads"), "4");
  EXPECT_EQ(Final((*cells)[3], "model.decoder_layers"), "2");
  EXPECT_EQ(Final((*cells)[4], "model.decoder_layers"), "1");
  EXPECT_EQ(Final((*cells)[4], "model.positional"), "\"sinusoidal\"");
}

TEST(AblationStudyTest, ExplicitCellsPickAxisLevelsAndSetKeysAndMayNameTheBase) {
  absl::StatusOr<std::vector<Cell>> cells = Cells(std::string(kHeader) + R"toml(
[[axis]]
key = "model.attention"
values = ["scaled_dot", "additive"]
[[axis]]
key = "model.heads"
values = [4, 8]

[[cell]]
name = "small"
set = { model.d_model = 64 }

[[cell]]
name = "reference"
base = true
axes = { attention = "additive", heads = 8 }

[[cell]]
name = "additive-wide"
axes = { attention = "additive" }
set = { model.d_ff = 1024, model.heads = 2 }
)toml");
  ASSERT_TRUE(cells.ok()) << cells.status();
  EXPECT_EQ(Names(*cells), (std::vector<std::string>{"small", "reference", "additive-wide"}));
  EXPECT_FALSE((*cells)[0].base);
  EXPECT_TRUE((*cells)[1].base);
  EXPECT_EQ(Final((*cells)[0], "model.attention"), "\"scaled_dot\"");  // unpicked: first level
  EXPECT_EQ(Final((*cells)[0], "model.d_model"), "64");
  EXPECT_EQ(Final((*cells)[1], "model.heads"), "8");  // picked by value
  EXPECT_EQ(Final((*cells)[2], "model.attention"), "\"additive\"");
  EXPECT_EQ(Final((*cells)[2], "model.heads"), "2");  // the cell's own `set` comes last
}

TEST(AblationStudyTest, BaseCellNamesTheBaseOfAGrid) {
  absl::StatusOr<std::vector<Cell>> cells = Cells(R"toml([study]
base = "b.toml"
seeds = 1
metrics = ["loss"]
base_cell = "dot"
[[axis]]
key = "model.attention"
values = ["scaled_dot", "dot"]
)toml");
  ASSERT_TRUE(cells.ok()) << cells.status();
  EXPECT_FALSE((*cells)[0].base);
  EXPECT_TRUE((*cells)[1].base);
}

// ---- errors: each names the file and the line ---------------------------------------

TEST(AblationStudyTest, AnUnknownConfigKeyNamesTheLineAndTheNearestKey) {
  EXPECT_TRUE(FailsWith(Cells(std::string(kHeader) + R"toml(
[[axis]]
key = "model.haeds"
values = [1, 2]
)toml")
                            .status(),
                        {"s.toml:7:", "unknown key 'model.haeds'", "did you mean 'model.heads'"}));
  EXPECT_TRUE(FailsWith(Cells(std::string(kHeader) + R"toml(
[set]
train.max_step = 10
)toml")
                            .status(),
                        {"s.toml:7:", "'train.max_step'", "did you mean 'train.max_steps'"}));
  EXPECT_TRUE(FailsWith(Cells(std::string(kHeader) + R"toml(
[[axis]]
name = "n"
variants.a = { model.norn = "pre" }
)toml")
                            .status(),
                        {"s.toml:8:", "'model.norn'", "'model.norm'"}));
}

TEST(AblationStudyTest, AnEmptyAxisIsAnError) {
  EXPECT_TRUE(FailsWith(Cells(std::string(kHeader) + R"toml(
[[axis]]
key = "model.heads"
values = []
)toml")
                            .status(),
                        {"s.toml:8:", "axis 'heads' is empty"}));
  EXPECT_TRUE(FailsWith(Cells(std::string(kHeader) + R"toml(
[[axis]]
name = "norm"
variants = {}
)toml")
                            .status(),
                        {"s.toml:8:", "axis 'norm' is empty"}));
}

TEST(AblationStudyTest, DuplicateCellNamesAreAnError) {
  EXPECT_TRUE(FailsWith(Cells(std::string(kHeader) + R"toml(
[[cell]]
name = "a"
[[cell]]
name = "b"
[[cell]]
name = "a"
set = { model.heads = 2 }
)toml")
                            .status(),
                        {"s.toml:10:", "duplicate cell name 'a'", "also at s.toml:6"}));
  // One at a time: two axes whose levels have the same label.
  EXPECT_TRUE(FailsWith(Cells(std::string(kHeader) + R"toml(
design = "one_at_a_time"
[[axis]]
key = "model.attention"
values = ["scaled_dot", "additive"]
[[axis]]
name = "rnn"
variants.none = { model.type = "transformer" }
variants.additive = { model.type = "rnn" }
)toml")
                            .status(),
                        {"duplicate cell name 'additive'"}));
  EXPECT_TRUE(FailsWith(Cells(std::string(kHeader) + R"toml(
[[axis]]
key = "model.heads"
values = [1, 2, 1]
)toml")
                            .status(),
                        {"s.toml:8:", "axis 'heads' lists 'heads-1' twice"}));
}

TEST(AblationStudyTest, AValueOfTheWrongTypeIsAnError) {
  EXPECT_TRUE(FailsWith(Cells(std::string(kHeader) + R"toml(
[[axis]]
key = "model.heads"
values = [4, "eight"]
)toml")
                            .status(),
                        {"s.toml:8:", "'model.heads' must be an integer"}));
  EXPECT_TRUE(FailsWith(Cells(std::string(kHeader) + R"toml(
[set]
model.dropout = "0.1"
)toml")
                            .status(),
                        {"s.toml:7:", "'model.dropout' must be a float"}));
  EXPECT_TRUE(FailsWith(Cells(std::string(kHeader) + R"toml(
[[axis]]
key = "model.positional"
values = ["sinusoidal", "rotary"]
)toml")
                            .status(),
                        {"s.toml:8:", "\"rotary\" is not one of"}));
  EXPECT_TRUE(FailsWith(Cells(std::string(kHeader) + R"toml(
[[axis]]
key = "model.dropout"
values = [0.1, 1.5]
)toml")
                            .status(),
                        {"s.toml:8:", "out of range"}));
  // An integer is a fine float.
  EXPECT_TRUE(
      Cells(std::string(kHeader) + "[[axis]]\nkey = \"train.lr\"\nvalues = [1, 0.5]\n").ok());
}

TEST(AblationStudyTest, StudyKeysAndStructureAreChecked) {
  EXPECT_TRUE(FailsWith(Cells("[study]\nbase = \"b.toml\"\nseed = [1]\n").status(),
                        {"s.toml:3:", "unknown key 'seed' in [study]", "did you mean 'seeds'"}));
  EXPECT_TRUE(FailsWith(Cells("[stduy]\nbase = \"b.toml\"\n").status(),
                        {"s.toml:1:", "unknown top-level key 'stduy'", "'study'"}));
  EXPECT_TRUE(FailsWith(Cells("[study]\nseeds = 2\nmetrics = [\"loss\"]\n").status(),
                        {"s.toml:1:", "needs `base"}));
  EXPECT_TRUE(FailsWith(Cells("[study]\nbase = \"b.toml\"\nmetrics = [\"loss\"]\n").status(),
                        {"needs `seeds`"}));
  EXPECT_TRUE(FailsWith(
      Cells("[study]\nbase = \"b.toml\"\nseeds = [1, 1]\nmetrics = [\"loss\"]\n").status(),
      {"s.toml:3:", "seed 1 is listed twice"}));
  EXPECT_TRUE(FailsWith(Cells("[study]\nbase = \"b.toml\"\nseeds = 1\nmetrics = []\n").status(),
                        {"s.toml:4:", "needs `metrics`"}));
  EXPECT_TRUE(FailsWith(Cells(kHeader).status(), {"s.toml:1:", "the study has no cells"}));
  EXPECT_TRUE(FailsWith(Cells(std::string(kHeader) + "design = \"random\"\n[[axis]]\nkey = "
                                                     "\"model.heads\"\nvalues = [1]\n")
                            .status(),
                        {"s.toml:5:", "\"grid\" or \"one_at_a_time\""}));
  EXPECT_TRUE(FailsWith(
      Cells(std::string(kHeader) + "design = \"grid\"\n[[cell]]\nname = \"a\"\n").status(),
      {"s.toml:5:", "leave it out"}));
  EXPECT_TRUE(FailsWith(
      Cells(std::string(kHeader) + "[[cell]]\nname = \"a\"\naxes = { heads = 2 }\n").status(),
      {"s.toml:7:", "no axis 'heads'"}));
  EXPECT_TRUE(FailsWith(
      Cells(std::string(kHeader) + "[[axis]]\nkey = \"task.train_path\"\nvalues = [\"a/b.tsv\"]\n")
          .status(),
      {"cell name 'a/b.tsv'", "variants"}));
  EXPECT_TRUE(FailsWith(Cells(std::string(kHeader) + "base_cell = \"nope\"\n[[axis]]\nkey = "
                                                     "\"model.heads\"\nvalues = [1]\n")
                            .status(),
                        {"s.toml:5:", "base_cell 'nope' is not a cell", "heads-1"}));
  EXPECT_TRUE(FailsWith(Cells("[study\n").status(), {"s.toml:1:", "invalid TOML"}));
}

TEST(AblationStudyTest, TimeToTargetsKeepTheirFileOrder) {
  const absl::StatusOr<Study> study =
      ParseStudy(std::string(kHeader) +
                     "time_to = { wer = 40.0, exact_match = 90 }\n[[axis]]\nkey = "
                     "\"model.heads\"\nvalues = [1]\n",
                 "s.toml");
  ASSERT_TRUE(study.ok()) << study.status();
  ASSERT_EQ(study->time_to.size(), 2u);
  EXPECT_EQ(study->time_to[0].metric, "wer");
  EXPECT_DOUBLE_EQ(study->time_to[0].value, 40.0);
  EXPECT_EQ(study->time_to[0].where, "s.toml:5");
  EXPECT_EQ(study->time_to[1].metric, "exact_match");
  EXPECT_DOUBLE_EQ(study->time_to[1].value, 90.0);  // an integer is a number too
  const absl::StatusOr<Study> without = ParseStudy(
      std::string(kHeader) + "[[axis]]\nkey = \"model.heads\"\nvalues = [1]\n", "s.toml");
  ASSERT_TRUE(without.ok());
  EXPECT_TRUE(without->time_to.empty());
}

TEST(AblationStudyTest, TimeToMustBeATableOfNumbers) {
  const std::string axis = "[[axis]]\nkey = \"model.heads\"\nvalues = [1]\n";
  EXPECT_TRUE(FailsWith(Cells(std::string(kHeader) + "time_to = 40\n" + axis).status(),
                        {"s.toml:5:", "`time_to` is a table", "{ wer = 40.0 }"}));
  EXPECT_TRUE(FailsWith(Cells(std::string(kHeader) + "time_to = {}\n" + axis).status(),
                        {"s.toml:5:", "`time_to` is a table"}));
  EXPECT_TRUE(
      FailsWith(Cells(std::string(kHeader) + "time_to = { wer = \"40\" }\n" + axis).status(),
                {"s.toml:5:", "time_to.wer: the target is a number"}));
  EXPECT_TRUE(FailsWith(Cells(std::string(kHeader) + "time_to = { wer = true }\n" + axis).status(),
                        {"s.toml:5:", "time_to.wer: the target is a number"}));
  EXPECT_TRUE(FailsWith(Cells(std::string(kHeader) + "time_to = { wer = nan }\n" + axis).status(),
                        {"s.toml:5:", "time_to.wer: the target is a number"}));
  EXPECT_TRUE(FailsWith(Cells(std::string(kHeader) + "timeto = { wer = 4 }\n" + axis).status(),
                        {"s.toml:5:", "unknown key 'timeto'", "did you mean 'time_to'"}));
}

// ---- the plan: checks that need the base config -----------------------------------

class AblationPlanTest : public attnlab::testing::TempDirTest {
 protected:
  void SetUp() override {
    std::ofstream(directory_ / "base.toml") << "[task]\nname = \"copy\"\n[train]\nmax_steps = 5\n";
  }

  absl::StatusOr<StudyPlan> Plan(const std::string& text) {
    const std::string path = (directory_ / "study.toml").string();
    absl::StatusOr<Study> study = ParseStudy(text, path);
    if (!study.ok()) return study.status();
    PlanOptions options;
    options.runs_dir = (directory_ / "runs").string();
    return PlanStudy(*study, options);
  }
};

TEST_F(AblationPlanTest, EveryCellTimesEverySeedIsARunInItsOwnDirectory) {
  absl::StatusOr<StudyPlan> plan = Plan(std::string(kHeader) + R"toml(
[[axis]]
key = "model.heads"
values = [4, 2]
)toml");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->study_dir, (directory_ / "runs" / "study").string());
  ASSERT_EQ(plan->runs.size(), 4u);
  EXPECT_EQ(plan->runs[1].cell, 0u);
  EXPECT_EQ(plan->runs[1].seed, 2);
  EXPECT_EQ(plan->runs[1].run_dir, (directory_ / "runs/study/heads-4/seed-2").string());
  // Each run's spec: the base config with the cell's keys and the run's seed.
  EXPECT_EQ(plan->runs[2].config.model().attention.heads, 2);
  EXPECT_EQ(plan->runs[2].config.experiment().seed, 1);
  EXPECT_EQ(plan->runs[1].config.experiment().seed, 2);
  EXPECT_EQ(plan->runs[1].config.train().max_steps, 5);
  for (const PlannedRun& run : plan->runs) EXPECT_EQ(run.action, RunAction::kRun);
  EXPECT_EQ(plan->configs[1].model().attention.heads, 2);
  EXPECT_EQ(plan->configs[1].train().max_steps, 5);  // from the base config
  EXPECT_EQ(plan->configs[1].Origin("model.heads"), (directory_ / "study.toml").string() + ":8");
}

TEST_F(AblationPlanTest, AnUnknownMetricIsAnErrorListingTheKnownOnes) {
  const absl::StatusOr<StudyPlan> plan = Plan(R"toml([study]
base = "base.toml"
seeds = 1
metrics = ["exact_match", "bleu"]
[[axis]]
key = "model.heads"
values = [4]
)toml");
  EXPECT_TRUE(FailsWith(
      plan.status(), {"study.toml:4:", "unknown metric 'bleu'", "exact_match", "token_accuracy"}));
}

TEST_F(AblationPlanTest, BeamMetricsExistOnlyWithABeam) {
  const std::string study = R"toml([study]
base = "base.toml"
seeds = 1
metrics = ["beam_exact_match"]
[[axis]]
key = "eval.beam_size"
values = )toml";
  EXPECT_TRUE(Plan(study + "[4]\n").ok());
  EXPECT_TRUE(FailsWith(Plan(study + "[4, 1]\n").status(),
                        {"unknown metric 'beam_exact_match'", "cell 'beam_size-1'"}));
}

TEST_F(AblationPlanTest, TimeToMetricsAreValidationMetricsAndTakeTheirDirection) {
  const std::string study = R"toml([study]
base = "base.toml"
seeds = 1
metrics = ["exact_match"]
time_to = )toml";
  const std::string axis = "\n[[axis]]\nkey = \"eval.beam_size\"\nvalues = [4]\n";
  const absl::StatusOr<StudyPlan> plan = Plan(study + "{ loss = 0.5, exact_match = 90 }" + axis);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->study.time_to.size(), 2u);
  EXPECT_FALSE(plan->study.time_to[0].higher_is_better);  // loss: lower is better
  EXPECT_TRUE(plan->study.time_to[1].higher_is_better);
  EXPECT_TRUE(FailsWith(Plan(study + "{ bleu = 1 }" + axis).status(),
                        {"study.toml:5:", "time_to: unknown validation metric 'bleu'",
                         "cell 'beam_size-4' evaluates loss, token_accuracy, exact_match"}));
  // Beam search decodes the test set only: validation records have no beam metrics.
  EXPECT_TRUE(FailsWith(Plan(study + "{ beam_exact_match = 90 }" + axis).status(),
                        {"study.toml:5:", "unknown validation metric 'beam_exact_match'"}));
}

// A study's metrics are checked against what the task's objective declares, for every
// kind of model: seed_pooling's objective reports mse and weight_difference on the
// validation split, and their values before training on the test split.
TEST_F(AblationPlanTest, MetricsComeFromTheObjectiveOfTheTask) {
  std::ofstream(directory_ / "pooling.toml")
      << "[task]\nname = \"seed_pooling\"\n[model]\nattention = \"additive\"\n"
         "[train]\nmax_steps = 5\n";
  const std::string study = R"toml([study]
base = "pooling.toml"
seeds = 1
metrics = ["mse", "initial_mse"]
time_to = { weight_difference = 0.05 }
[[axis]]
key = "train.lr"
values = [0.01]
)toml";
  const absl::StatusOr<StudyPlan> plan = Plan(study);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->study.time_to.size(), 1u);
  EXPECT_FALSE(plan->study.time_to[0].higher_is_better);  // a smaller difference is better
  std::string wrong = study;
  wrong.replace(wrong.find("\"initial_mse\""), 13, "\"exact_match\"");
  EXPECT_TRUE(
      FailsWith(Plan(wrong).status(),
                {"unknown metric 'exact_match'",
                 "reports mse, initial_mse, weight_difference, initial_weight_difference"}));
}

TEST_F(AblationPlanTest, AMissingBaseConfigNamesTheStudyLine) {
  EXPECT_TRUE(FailsWith(Plan("[study]\nbase = \"nope.toml\"\nseeds = 1\nmetrics = [\"loss\"]\n"
                             "[[axis]]\nkey = \"model.heads\"\nvalues = [1]\n")
                            .status(),
                        {"study.toml:2: base config", "nope.toml: no such config file"}));
}

}  // namespace
}  // namespace attnlab::experiments
