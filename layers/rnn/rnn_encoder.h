// Bidirectional recurrent encoder (Bahdanau et al. 2014, section 3.2): a forward RNN
// reads the embedded source left to right, a backward RNN right to left, and the
// annotation of token j is the concatenation [h_fwd_j; h_bwd_j].
//
// Padding. Sequences in a batch are right-padded to the longest. A padded step does not
// update the state: with keep = 1 at real tokens and 0 at padding (a [batch, 1] column),
//
//   output_t = keep_t * h_new_t
//   h_t      = output_t + (1 - keep_t) * h_{t-1}
//
// so the backward direction stays at its zero initial state through the padding and
// starts at each sequence's true end, and the forward direction carries the state of the
// last real token to the end. The outputs (annotations) at padded positions are zero.
// This is what PyTorch computes for a pack_padded_sequence, and appending padding to a
// batch leaves every row's outputs and final states unchanged (tests/layers/rnn_test.cc).
// Steps where no row is padded skip the masking ops; steps where every row is padded
// skip the cell.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "framework/random/generator.h"
#include "layers/module.h"
#include "layers/rnn/recurrent_cell.h"

namespace attnlab::nn {

struct RnnEncoderOutput {
  Tensor outputs;                 // [batch, src, 2 * hidden]: [h_fwd_j; h_bwd_j], 0 at padding
  RecurrentState forward_final;   // after each row's last real token, [batch, hidden]
  RecurrentState backward_final;  // after position 0, [batch, hidden]
};

class RnnEncoder : public Module {
 public:
  // cell_kind: "gru" or "lstm". Parameters: forward_cell.{weight_ih, weight_hh, bias_ih,
  // bias_hh} and backward_cell.{...}, which are PyTorch's nn.GRU/nn.LSTM(bidirectional=True)
  // weight_ih_l0, ..., and weight_ih_l0_reverse, ... respectively.
  static absl::StatusOr<std::shared_ptr<RnnEncoder>> Create(std::string_view cell_kind,
                                                            int64_t input_size, int64_t hidden_size,
                                                            Generator& generator);

  // embedded: [batch, src, input]; padding_mask: f32 [batch, src], 1 at padding, or
  // undefined when nothing is padded.
  RnnEncoderOutput Forward(const Tensor& embedded, const Tensor& padding_mask) const;

  const RecurrentCell& forward_cell() const { return *forward_cell_; }
  const RecurrentCell& backward_cell() const { return *backward_cell_; }
  int64_t hidden_size() const { return forward_cell_->hidden_size(); }

 private:
  RnnEncoder(std::shared_ptr<RecurrentCell> forward_cell,
             std::shared_ptr<RecurrentCell> backward_cell);

  std::shared_ptr<RecurrentCell> forward_cell_;
  std::shared_ptr<RecurrentCell> backward_cell_;
};

}  // namespace attnlab::nn
