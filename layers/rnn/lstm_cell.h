// Long short-term memory (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et
// al. 2000), in PyTorch's formulation (torch.nn.LSTMCell):
//
//   i  = sigmoid(W_ii x + b_ii + W_hi h + b_hi)
//   f  = sigmoid(W_if x + b_if + W_hf h + b_hf)
//   g  = tanh(W_ig x + b_ig + W_hg h + b_hg)
//   o  = sigmoid(W_io x + b_io + W_ho h + b_ho)
//   c' = f * c + i * g
//   h' = o * tanh(c')
//
// Parameters (see recurrent_cell.h): weight_ih [4H, input] = [W_ii; W_if; W_ig; W_io],
// weight_hh [4H, H], bias_ih and bias_hh [4H], gate order i, f, g, o — the layout of
// torch.nn.LSTMCell, so its state_dict maps one to one.
#pragma once

#include "layers/rnn/recurrent_cell.h"

namespace attnlab::nn {

class LstmCell : public RecurrentCell {
 public:
  LstmCell(int64_t input_size, int64_t hidden_size, Generator& generator);

  // input_gates: [batch, 4H]; state.hidden, state.cell: [batch, H] -> (h', c').
  RecurrentState StepFromProjected(const Tensor& input_gates,
                                   const RecurrentState& state) const override;
  bool has_cell_state() const override { return true; }
};

}  // namespace attnlab::nn
