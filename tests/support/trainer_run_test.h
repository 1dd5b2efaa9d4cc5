// A fixture for tests that start trainer runs (experiments/trainer/trainer.h) in process:
// every test gets a fresh scratch directory (TempDirTest), and Options(name) are the
// options of a run in `directory_ / name`, without the progress bar. And the two ways
// tests stop a run: a signal's stop request after a given step, or a stop at the n-th
// time the trainer asks (before each step, each micro-batch, each evaluation batch).
//
//   class TrainerTest : public attnlab::experiments::testing::TrainerRunTest {};
//   TEST_F(TrainerTest, ...) {
//     RunOptions interrupted = Options("a");
//     interrupted.after_step = RequestStopAfterStep(13);  // as Ctrl-C would
//     Train(config, interrupted);
//     Train(config, Options("a", /*resume=*/true));
//   }
#pragma once

#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "experiments/trainer/trainer.h"
#include "framework/core/stop_request.h"
#include "gtest/gtest.h"
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

// A run that stopped on request: Train returned it (not an error), interrupted, after
// `steps` steps.
//
//   ASSERT_TRUE(StoppedAfter(first, 5));
inline ::testing::AssertionResult StoppedAfter(const absl::StatusOr<TrainResult>& result,
                                               int64_t steps) {
  if (!result.ok()) return ::testing::AssertionFailure() << result.status();
  if (!result->interrupted) {
    return ::testing::AssertionFailure()
           << "the run was not interrupted (" << result->steps << " steps)";
  }
  if (result->steps != steps) {
    return ::testing::AssertionFailure()
           << "stopped after " << result->steps << " steps, expected " << steps;
  }
  return ::testing::AssertionSuccess();
}

// For RunOptions::after_step: `signal`'s stop request (framework/core/stop_request.h)
// right after step `step`.
inline std::function<void(int64_t)> RequestStopAfterStep(int64_t step, int signal = SIGINT) {
  return [step, signal](int64_t done) {
    if (done == step) RequestStop(signal);
  };
}

// For RunOptions::stop_requested: true from the `question`-th time the trainer asks
// (counting from 1) on.
inline std::function<bool()> StopAtQuestion(int64_t question) {
  auto asked = std::make_shared<int64_t>(0);
  return [asked, question] { return ++*asked >= question; };
}

}  // namespace attnlab::experiments::testing
