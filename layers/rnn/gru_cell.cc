#include "layers/rnn/gru_cell.h"

#include "framework/ops/ops.h"

namespace attnlab::nn {
namespace {
// PyTorch's gate order inside the stacked [3H] axis.
constexpr int64_t kResetGate = 0, kUpdateGate = 1, kNewGate = 2;
}  // namespace

GruCell::GruCell(int64_t input_size, int64_t hidden_size, Generator& generator)
    : RecurrentCell(input_size, hidden_size, /*gate_count=*/3, generator) {}

RecurrentState GruCell::StepFromProjected(const Tensor& input_gates,
                                          const RecurrentState& state) const {
  const auto profile_scope = ProfileScope("gru_cell");
  CheckStep("GruCell", input_gates, state);
  const int64_t hidden = hidden_size();
  const Tensor& h = state.hidden;                // [batch, H]
  const Tensor hidden_gates = ProjectHidden(h);  // [batch, 3H]
  // r and z are adjacent, so one Add and one Sigmoid serve both: [batch, 2H].
  const Tensor reset_update =
      Sigmoid(Gates(input_gates, kResetGate, 2) + Gates(hidden_gates, kResetGate, 2));
  const Tensor reset = Narrow(reset_update, 1, 0, hidden);
  const Tensor update = Narrow(reset_update, 1, (kUpdateGate - kResetGate) * hidden, hidden);
  const Tensor candidate = Tanh(Gate(input_gates, kNewGate) + reset * Gate(hidden_gates, kNewGate));
  // h' = (1 - z) * n + z * h, written as n + z * (h - n): three ops instead of five.
  RecurrentState next;
  next.hidden = candidate + update * (h - candidate);
  return next;
}

}  // namespace attnlab::nn
