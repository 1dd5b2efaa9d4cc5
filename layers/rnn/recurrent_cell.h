// RecurrentCell: what the GRU and LSTM cells share. A cell owns PyTorch's four
// parameters, with PyTorch's names and layouts, so the weights of a torch.nn.GRUCell /
// LSTMCell (or one direction of one layer of nn.GRU / nn.LSTM: weight_ih_l0,
// weight_ih_l0_reverse, ...) load one to one:
//
//   weight_ih [gates * hidden, input]    bias_ih [gates * hidden]
//   weight_hh [gates * hidden, hidden]   bias_hh [gates * hidden]
//
// with the gates stacked in PyTorch's order (GRU: r, z, n; LSTM: i, f, g, o).
// Initialisation is PyTorch's: every weight and bias ~ U(-1/sqrt(hidden), 1/sqrt(hidden)).
//
// A step is a composition of engine ops (two fused Linears, then Sigmoid/Tanh/Mul/Add on
// slices of the gate pre-activations), so backward comes from autograd and every variant
// built on a cell is differentiable for free. oneDNN's fused RNN primitives are a later
// optimisation; when added they must be tested against this composition (see README.md).
//
// The input half of the gates, W_ih x + b_ih, does not depend on the state, so a
// sequence layer computes it for every time step in one matmul (ProjectInput) and then
// runs only the recurrent half per step (StepFromProjected).
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "framework/random/generator.h"
#include "layers/module.h"

namespace attnlab::nn {

// The state carried between steps. hidden: h [batch, hidden]; cell: c [batch, hidden]
// for an LSTM, undefined for a GRU.
struct RecurrentState {
  Tensor hidden;
  Tensor cell;
};

class RecurrentCell : public Module {
 public:
  // x: [..., input] -> [..., gates * hidden], W_ih x + b_ih (one matmul for any number of
  // leading dims, e.g. every time step of a sequence).
  Tensor ProjectInput(const Tensor& x) const;
  // One step from an already projected input. input_gates: [batch, gates * hidden] (a row
  // of ProjectInput's output); state tensors [batch, hidden].
  virtual RecurrentState StepFromProjected(const Tensor& input_gates,
                                           const RecurrentState& state) const = 0;
  // One step: x [batch, input] -> the new state.
  RecurrentState Forward(const Tensor& x, const RecurrentState& state) const {
    return StepFromProjected(ProjectInput(x), state);
  }

  // All-zero state for `batch` rows (the usual initial state).
  RecurrentState ZeroState(int64_t batch) const;
  virtual bool has_cell_state() const = 0;

  int64_t input_size() const { return input_size_; }
  int64_t hidden_size() const { return hidden_size_; }
  const Tensor& weight_ih() const { return weight_ih_; }
  const Tensor& weight_hh() const { return weight_hh_; }
  const Tensor& bias_ih() const { return bias_ih_; }
  const Tensor& bias_hh() const { return bias_hh_; }

 protected:
  RecurrentCell(int64_t input_size, int64_t hidden_size, int64_t gate_count, Generator& generator);

  // h: [batch, hidden] -> [batch, gates * hidden], W_hh h + b_hh.
  Tensor ProjectHidden(const Tensor& hidden) const;
  // Gate `index` (in PyTorch's order) of a [batch, gates * hidden] tensor: a view.
  Tensor Gate(const Tensor& gates, int64_t index) const;
  // Gates [first, first + count) as one view [batch, count * hidden].
  Tensor Gates(const Tensor& gates, int64_t first, int64_t count) const;
  // Checks that an input-gate row and a state agree with this cell's sizes.
  void CheckStep(const char* cell_name, const Tensor& input_gates,
                 const RecurrentState& state) const;

 private:
  int64_t input_size_;
  int64_t hidden_size_;
  int64_t gate_count_;
  Tensor weight_ih_, weight_hh_, bias_ih_, bias_hh_;
};

// "gru" or "lstm"; anything else is an InvalidArgument error naming both.
absl::StatusOr<std::shared_ptr<RecurrentCell>> MakeRecurrentCell(std::string_view kind,
                                                                 int64_t input_size,
                                                                 int64_t hidden_size,
                                                                 Generator& generator);

}  // namespace attnlab::nn
