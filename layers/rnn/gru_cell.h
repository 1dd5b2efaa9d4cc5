// Gated recurrent unit (Cho et al. 2014, eq. 5-8), in PyTorch's formulation
// (torch.nn.GRUCell), which puts the reset gate after the recurrent matmul:
//
//   r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
//   z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
//   n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
//   h' = (1 - z) * n + z * h
//
// Parameters (see recurrent_cell.h): weight_ih [3H, input] = [W_ir; W_iz; W_in],
// weight_hh [3H, H] = [W_hr; W_hz; W_hn], bias_ih and bias_hh [3H], gate order r, z, n —
// the layout of torch.nn.GRUCell, so its state_dict maps one to one.
#pragma once

#include "layers/rnn/recurrent_cell.h"

namespace attnlab::nn {

class GruCell : public RecurrentCell {
 public:
  GruCell(int64_t input_size, int64_t hidden_size, Generator& generator);

  // input_gates: [batch, 3H] (ProjectInput's row); state.hidden: [batch, H] -> h' [batch, H].
  RecurrentState StepFromProjected(const Tensor& input_gates,
                                   const RecurrentState& state) const override;
  bool has_cell_state() const override { return false; }
};

}  // namespace attnlab::nn
