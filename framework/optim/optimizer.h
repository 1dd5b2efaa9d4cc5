// The optimizer interface: updates named f32 parameters from their accumulated
// gradients, and keeps its state as named tensors so that it checkpoints like the
// parameters do.
//
// State layout. Every moment (SGD's momentum buffer, Adam's two averages) lives in one
// flat f32 arena, with each parameter's moment a contiguous view into it (llm.c keeps
// its Adam moments the same way); per-parameter step counts live in one i32 arena. The
// arenas are allocated by the first Step() (or NamedState()/LoadState()), so a steady-
// state step allocates nothing. The state's names are
//   optim.<parameter name>.<moment>   f32, the parameter's shape (e.g. exp_avg)
//   optim.<parameter name>.step       i32 [], steps this parameter has been updated
//   optim.step                        i32 [], Step() calls
// A parameter keeps its own step count because, as in PyTorch, a parameter with no
// gradient is skipped: its moments and its count stay as they are, and its bias
// correction (Adam) uses the steps it was really updated.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "framework/tensor/tensor.h"

namespace attnlab {

class Optimizer {
 public:
  // `parameters` are handles to the model's f32, contiguous leaves (their storage is
  // updated in place). Names must be unique.
  Optimizer(NamedTensors parameters, std::vector<std::string> moment_names);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient, with this learning rate (from a
  // LearningRateSchedule). Runs under NoGradGuard, in parallel over elements.
  void Step(double learning_rate);

  // Forgets every parameter's gradient (PyTorch's zero_grad(set_to_none=True)): the next
  // backward writes fresh gradients, and a parameter it does not reach is skipped by
  // Step() instead of being updated with a stale or zero gradient.
  void ZeroGrad();

  // The state as named tensors (views of the optimizer's arenas, in a fixed order: the
  // step counter, then per parameter its moments and step count). Copy them (Clone) to
  // keep a snapshot; write them as they are to checkpoint.
  NamedTensors NamedState();

  // Copies `state` (as returned by NamedState(), possibly read from a checkpoint) into
  // this optimizer. Strict: every missing name, unexpected name, shape or dtype mismatch
  // and negative step count is listed in one error, and on error nothing is changed.
  absl::Status LoadState(const NamedTensors& state);

  // Step() calls so far (restored by LoadState).
  int64_t step_count() const;
  const NamedTensors& parameters() const { return parameters_; }

 protected:
  // Called once per Step() for each parameter that has a gradient, before the update
  // loop, with the parameter's step count including this step (1 on its first update).
  // Precomputes per-parameter scalars (bias corrections) into storage sized up front.
  virtual void PrepareParameter(size_t index, int64_t step, double learning_rate) = 0;
  // Updates elements [begin, end) of parameter `index` given its gradient. Called from
  // several threads at once, on disjoint ranges.
  virtual void UpdateRange(size_t index, int64_t begin, int64_t end, const float* gradient) = 0;
  // Moment `moment_index` of parameter `index` (contiguous, the parameter's numel), and
  // the parameter's data; valid from the first PrepareParameter() on.
  float* moment(size_t moment_index, size_t index) const {
    return moment_data_[moment_index][index];
  }
  float* parameter_data(size_t index) const { return parameter_data_[index]; }
  size_t parameter_count() const { return parameters_.size(); }

 private:
  // A slice of one parameter's elements: the unit of parallel work.
  struct WorkItem {
    size_t parameter;
    int64_t begin;
    int64_t end;
  };

  // Allocates the arenas, the views and the work list, once.
  void EnsureState();

  NamedTensors parameters_;
  std::vector<std::string> moment_names_;

  bool state_ready_ = false;
  std::vector<Tensor> moment_arenas_;              // one f32 [padded total] per moment
  std::vector<std::vector<Tensor>> moment_views_;  // [moment][parameter]
  std::vector<std::vector<float*>> moment_data_;   // [moment][parameter]
  Tensor step_arena_;                              // i32 [parameters]
  std::vector<Tensor> step_views_;                 // i32 [] views into step_arena_
  Tensor global_step_;                             // i32 []
  std::vector<float*> parameter_data_;
  std::vector<const float*> gradient_data_;  // this step's, or null to skip
  std::vector<WorkItem> work_;
};

}  // namespace attnlab
