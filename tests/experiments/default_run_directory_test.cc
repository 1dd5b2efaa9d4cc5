// Where `attnlab train CONFIG` puts a run by default (DefaultRunDirectory,
// experiments/trainer/trainer.h): recipes live in experiments/recipes/<task>/, and their
// runs stay named <runs_dir>/<task>/<config>/seed-<seed>, as before recipes had a folder.
#include <filesystem>
#include <string>

#include "absl/status/statusor.h"
#include "experiments/config/config.h"
#include "experiments/trainer/trainer.h"
#include "gtest/gtest.h"

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;

const fs::path kRecipes = fs::path(ATTNLAB_SOURCE_DIR) / "experiments" / "recipes";

Config Load(const std::string& path, const std::vector<std::string>& overrides = {}) {
  absl::StatusOr<Config> config = Config::Load(path, overrides);
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *config : Config();
}

TEST(DefaultRunDirectoryTest, TheCopyRecipeRunsInRunsCopyTransformer) {
  EXPECT_EQ(DefaultRunDirectory(Load((kRecipes / "copy" / "transformer.toml").string())),
            "runs/copy/transformer/seed-1");
  EXPECT_EQ(DefaultRunDirectory(
                Load((kRecipes / "copy" / "transformer.toml").string(), {"experiment.seed=3"})),
            "runs/copy/transformer/seed-3");
}

TEST(DefaultRunDirectoryTest, ARelativeRecipePathFromTheRepositoryRoot) {
  const fs::path previous = fs::current_path();
  fs::current_path(ATTNLAB_SOURCE_DIR);
  const std::string directory =
      DefaultRunDirectory(Load("experiments/recipes/copy/transformer.toml"));
  fs::current_path(previous);
  EXPECT_EQ(directory, "runs/copy/transformer/seed-1");
}

TEST(DefaultRunDirectoryTest, EveryShippedRecipeIsNamedAfterItsTaskAndFile) {
  int recipes = 0;
  for (const fs::directory_entry& task : fs::directory_iterator(kRecipes)) {
    if (!task.is_directory() || task.path().filename() == "studies") continue;
    for (const fs::directory_entry& file : fs::directory_iterator(task.path())) {
      if (file.path().extension() != ".toml") continue;
      const Config config = Load(file.path().string());
      EXPECT_EQ(DefaultRunDirectory(config), "runs/" + task.path().filename().string() + "/" +
                                                 file.path().stem().string() + "/seed-" +
                                                 std::to_string(config.experiment().seed))
          << file.path();
      ++recipes;
    }
  }
  EXPECT_GE(recipes, 11);
}

TEST(DefaultRunDirectoryTest, ExperimentNameAndConfigsElsewhere) {
  EXPECT_EQ(DefaultRunDirectory(Load((kRecipes / "copy" / "transformer.toml").string(),
                                     {"experiment.name=mine", "experiment.runs_dir=out"})),
            "out/mine/seed-1");
  absl::StatusOr<Config> parsed = Config::Parse("", "text");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(DefaultRunDirectory(*parsed), "runs/run/seed-1");
}

}  // namespace
}  // namespace attnlab::experiments
