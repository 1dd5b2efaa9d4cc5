#include "layers/rnn/lstm_cell.h"

#include "framework/ops/ops.h"

namespace attnlab::nn {
namespace {
// PyTorch's gate order inside the stacked [4H] axis.
constexpr int64_t kInputGate = 0, kForgetGate = 1, kCellGate = 2, kOutputGate = 3;
}  // namespace

LstmCell::LstmCell(int64_t input_size, int64_t hidden_size, Generator& generator)
    : RecurrentCell(input_size, hidden_size, /*gate_count=*/4, generator) {}

RecurrentState LstmCell::StepFromProjected(const Tensor& input_gates,
                                           const RecurrentState& state) const {
  const auto profile_scope = ProfileScope("lstm_cell");
  CheckStep("LstmCell", input_gates, state);
  const int64_t hidden = hidden_size();
  const Tensor gates = input_gates + ProjectHidden(state.hidden);  // [batch, 4H]
  // i and f are adjacent: one Sigmoid over [batch, 2H].
  const Tensor input_forget = Sigmoid(Gates(gates, kInputGate, 2));
  const Tensor input_gate = Narrow(input_forget, 1, 0, hidden);
  const Tensor forget_gate = Narrow(input_forget, 1, (kForgetGate - kInputGate) * hidden, hidden);
  const Tensor cell_candidate = Tanh(Gate(gates, kCellGate));
  const Tensor output_gate = Sigmoid(Gate(gates, kOutputGate));
  RecurrentState next;
  next.cell = forget_gate * state.cell + input_gate * cell_candidate;
  next.hidden = output_gate * Tanh(next.cell);
  return next;
}

}  // namespace attnlab::nn
