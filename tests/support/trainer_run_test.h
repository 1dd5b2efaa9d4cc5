// A fixture for tests that start trainer runs (experiments/trainer/trainer.h) in process:
// every test gets a fresh scratch directory (TempDirTest), and Options(name) are the
// options of a run in `directory_ / name`, without the progress bar.
//
//   class TrainerTest : public attnlab::experiments::testing::TrainerRunTest {};
//   TEST_F(TrainerTest, ...) {
//     Train(config, Options("a"));
//     Train(config, Options("a", /*resume=*/true));
//   }
#pragma once

#include <string>

#include "experiments/trainer/trainer.h"
#include "tests/support/temp_dir.h"

namespace attnlab::experiments::testing {

class TrainerRunTest : public attnlab::testing::TempDirTest {
 protected:
  RunOptions Options(const std::string& name, bool resume = false) const {
    RunOptions options;
    options.run_dir = (directory_ / name).string();
    options.resume = resume;
    options.show_progress = false;
    return options;
  }
};

}  // namespace attnlab::experiments::testing
