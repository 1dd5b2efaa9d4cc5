// The seed-pooling experiment: can an attention-pooling layer recover a hidden teacher's
// attention from its outputs alone?
//
// A fixed teacher AttentionPooling (layers/attention_pooling.h, its own seed) maps random
// inputs x [N, time, dim] (standard normal) to targets teacher(x).pooled [N, dim]. A
// student AttentionPooling with the chosen scoring, from another seed, is trained with
// Adam on the mean squared error to those targets, on minibatches drawn without
// replacement (reshuffled each epoch). Reported: the MSE on the training and on a
// held-out test set before and after training, the mean absolute difference between the
// student's and the teacher's attention weights on the test inputs (before and after),
// and the minibatch loss of every step for learning curves.
//
// The student sees only pooled outputs, never the weights, so a low output loss with a
// high weight difference means it found another weighting that pools to the same
// vectors; a student with the teacher's scoring can match it exactly, one with the
// other scoring only approximately.
//
//   PoolingOptions options;
//   options.student_score = "dot";
//   ASSIGN_OR_RETURN(PoolingResult result, RunSeedPooling(options));
//
// Deterministic: the same options give the same result on any machine and thread count.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace attnlab::experiments {

struct PoolingOptions {
  std::string student_score = "additive";  // "additive" or "dot" (nn::ParsePoolingScore)
  std::string teacher_score = "additive";
  int64_t time_steps = 10;
  int64_t dim = 10;
  int64_t train_size = 1024;
  int64_t test_size = 256;
  int64_t steps = 500;  // optimizer steps (K)
  int64_t batch_size = 32;
  double learning_rate = 1e-2;  // Adam, constant, PyTorch's default betas and epsilon
  // Multiplies the teacher's scores (by scaling its v or q). At 1 a freshly initialised
  // teacher attends almost uniformly, and uniform weights already pool to nearly the
  // right vectors; a sharper teacher makes where it attends matter.
  double teacher_sharpness = 3.0;
  uint64_t data_seed = 1;     // inputs and minibatch order
  uint64_t teacher_seed = 2;  // the hidden teacher's parameters
  uint64_t student_seed = 3;  // the student's initial parameters
};

struct PoolingResult {
  double initial_train_loss = 0, initial_test_loss = 0;  // MSE before the first step
  double final_train_loss = 0, final_test_loss = 0;      // MSE after the last step
  // Mean over test inputs and time steps of |student weight - teacher weight|.
  double initial_weight_difference = 0, final_weight_difference = 0;
  std::vector<double> step_losses;  // minibatch MSE of each step, before its update
};

// Runs the experiment. Invalid options (unknown scoring, non-positive sizes, a batch
// larger than the training set, ...) are InvalidArgument errors naming the option; a
// non-finite loss (learning rate too high) is a FailedPrecondition naming the step.
absl::StatusOr<PoolingResult> RunSeedPooling(const PoolingOptions& options);

}  // namespace attnlab::experiments
