// The exponential moving average of parameters (Polyak averaging with exponential
// weights), kept beside training in f32 and evaluated instead of the raw weights.
//
// The average after t updates is the exponentially weighted mean of the weights w_1..w_t
// after updates 1..t, with Adam's bias correction (Kingma & Ba 2015, Sec. 3) so that the
// first averages are not pulled towards zero or towards the random initial weights:
//
//   average_t = sum_{i=1..t} (1 - d) d^(t-i) w_i / (1 - d^t)        (weights sum to 1)
//
// It is stored in that corrected form, so the buffer holds usable weights at every step:
//
//   average_t = beta_t average_{t-1} + (1 - beta_t) w_t,  beta_t = d (1 - d^(t-1)) / (1 - d^t)
//
// (beta_1 = 0: the first update takes the weights; beta_t -> d as t grows). Without the
// correction (average_0 = w_0), a run of fewer than ~1/(1-d) steps would mostly average
// the initialisation.
//
// Memory: one f32 buffer the size of the parameters, allocated by the constructor, with
// each parameter's average a view into it (slices 64-byte aligned, as in FlatArena).
// Update and SwapWithParameters allocate nothing. When the parameters live in a
// FlatArena (data-parallel training), the buffer has the arena's layout and both are one
// loop over the whole arena; otherwise one loop over fixed slices of each parameter.
// Each element is updated on its own, so the result does not depend on the thread count
// or on which of the two loops runs.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "framework/tensor/flat_arena.h"
#include "framework/tensor/tensor.h"

namespace attnlab {

class ExponentialMovingAverage {
 public:
  // `parameters`: contiguous f32 leaves (their storage is read, and written by
  // SwapWithParameters); their current values start the average. `decay` d in [0, 1).
  // `arena`, if given, must hold exactly `parameters` in this order.
  ExponentialMovingAverage(NamedTensors parameters, double decay, const FlatArena* arena = nullptr);
  ExponentialMovingAverage(const ExponentialMovingAverage&) = delete;
  ExponentialMovingAverage& operator=(const ExponentialMovingAverage&) = delete;

  double decay() const { return decay_; }

  // The t-th update (t >= 1, counted by the caller, who checkpoints it): the average
  // takes the parameters' current values with weight 1 - beta_t.
  void Update(int64_t t);
  // The average becomes the parameters' current values (a fresh start, t = 0).
  void Reset();

  // The average, as views named like the parameters (write them to checkpoint them).
  const NamedTensors& average() const { return average_; }
  // Copies `average` (as average() gives it, e.g. read back from a checkpoint) into this
  // one. Strict: every missing or unexpected name and every shape or dtype mismatch is
  // listed in one error, and on error nothing changes.
  absl::Status Load(const NamedTensors& average);

  // Exchanges the average and the parameters' values (bit for bit; twice restores both).
  void SwapWithParameters();

 private:
  // Calls fn(average, parameter values, count) over the parameters in parallel chunks:
  // the whole arena at once, or fixed slices of each parameter.
  template <typename Fn>
  void ForEachSlice(Fn&& fn);

  struct Slice {
    size_t parameter;
    int64_t begin;
    int64_t end;
  };

  NamedTensors parameters_;
  double decay_;
  const FlatArena* arena_;
  Tensor buffer_;         // f32 [sum of aligned slice sizes]
  NamedTensors average_;  // views into buffer_
  std::vector<int64_t> offsets_;
  std::vector<Slice> slices_;  // without an arena: the unit of parallel work
};

// Swaps the average into the parameters for a scope (e.g. an evaluation of the averaged
// weights) and back when it ends, also on an early return.
class AverageSwappedIn {
 public:
  explicit AverageSwappedIn(ExponentialMovingAverage& average) : average_(average) {
    average_.SwapWithParameters();
  }
  ~AverageSwappedIn() { average_.SwapWithParameters(); }
  AverageSwappedIn(const AverageSwappedIn&) = delete;
  AverageSwappedIn& operator=(const AverageSwappedIn&) = delete;

 private:
  ExponentialMovingAverage& average_;
};

}  // namespace attnlab
