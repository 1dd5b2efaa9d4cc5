#include "layers/rnn/rnn_encoder.h"

#include <utility>
#include <vector>

#include "framework/ops/ops.h"

namespace attnlab::nn {
namespace {

// Which rows are real tokens at one time step.
struct StepMask {
  bool all_real = true;      // no row is padded: the step needs no masking
  bool all_padding = false;  // every row is padded: the step is skipped
  Tensor keep;               // f32 [batch, 1], 1 at real tokens (when some row is padded)
  Tensor carry;              // 1 - keep
};

std::vector<StepMask> BuildStepMasks(const Tensor& padding_mask, int64_t batch, int64_t length) {
  std::vector<StepMask> masks(length);
  if (!padding_mask.defined()) return masks;
  const std::vector<float> padding = padding_mask.ToFloats();
  for (int64_t t = 0; t < length; ++t) {
    std::vector<float> keep(batch), carry(batch);
    int64_t padded_rows = 0;
    for (int64_t b = 0; b < batch; ++b) {
      const bool is_padding = padding[b * length + t] != 0.0f;
      keep[b] = is_padding ? 0.0f : 1.0f;
      carry[b] = is_padding ? 1.0f : 0.0f;
      padded_rows += is_padding ? 1 : 0;
    }
    StepMask& mask = masks[t];
    mask.all_real = padded_rows == 0;
    mask.all_padding = padded_rows == batch;
    if (!mask.all_real && !mask.all_padding) {
      mask.keep = Tensor::FromFloats(keep, {batch, 1});
      mask.carry = Tensor::FromFloats(carry, {batch, 1});
    }
  }
  return masks;
}

// Runs one direction over time-major projected inputs.
// input_gates: [src, batch, gates * hidden]. Returns the per-position outputs
// [batch, src, hidden] and the final state.
std::pair<Tensor, RecurrentState> RunDirection(const RecurrentCell& cell, const Tensor& input_gates,
                                               const std::vector<StepMask>& masks, bool reverse) {
  const int64_t length = input_gates.size(0), batch = input_gates.size(1);
  const int64_t gate_width = input_gates.size(2), hidden = cell.hidden_size();
  RecurrentState state = cell.ZeroState(batch);
  std::vector<Tensor> outputs(length);  // each [batch, 1, hidden]
  for (int64_t step = 0; step < length; ++step) {
    const int64_t t = reverse ? length - 1 - step : step;
    const StepMask& mask = masks[t];
    if (mask.all_padding) {
      outputs[t] = Tensor::Zeros({batch, 1, hidden});
      continue;
    }
    // A time-major row is contiguous, so this reshape is a view.
    const Tensor step_gates = Reshape(Narrow(input_gates, 0, t, 1), {batch, gate_width});
    RecurrentState next = cell.StepFromProjected(step_gates, state);
    if (!mask.all_real) {
      // output = keep * h_new; h = output + (1 - keep) * h_prev (see the header).
      const Tensor output = mask.keep * next.hidden;
      next.hidden = output + mask.carry * state.hidden;
      if (next.cell.defined()) next.cell = mask.keep * next.cell + mask.carry * state.cell;
      outputs[t] = Reshape(output, {batch, 1, hidden});
    } else {
      outputs[t] = Reshape(next.hidden, {batch, 1, hidden});
    }
    state = std::move(next);
  }
  return {Concat(outputs, 1), state};
}

}  // namespace

absl::StatusOr<std::shared_ptr<RnnEncoder>> RnnEncoder::Create(std::string_view cell_kind,
                                                               int64_t input_size,
                                                               int64_t hidden_size,
                                                               Generator& generator) {
  ASSIGN_OR_RETURN(std::shared_ptr<RecurrentCell> forward_cell,
                   MakeRecurrentCell(cell_kind, input_size, hidden_size, generator));
  ASSIGN_OR_RETURN(std::shared_ptr<RecurrentCell> backward_cell,
                   MakeRecurrentCell(cell_kind, input_size, hidden_size, generator));
  return std::shared_ptr<RnnEncoder>(
      new RnnEncoder(std::move(forward_cell), std::move(backward_cell)));
}

RnnEncoder::RnnEncoder(std::shared_ptr<RecurrentCell> forward_cell,
                       std::shared_ptr<RecurrentCell> backward_cell)
    : forward_cell_(RegisterModule("forward_cell", std::move(forward_cell))),
      backward_cell_(RegisterModule("backward_cell", std::move(backward_cell))) {}

RnnEncoderOutput RnnEncoder::Forward(const Tensor& embedded, const Tensor& padding_mask) const {
  const auto profile_scope = ProfileScope("rnn_encoder");
  ATTNLAB_CHECK(embedded.rank() == 3 && embedded.size(2) == forward_cell_->input_size(),
                "RnnEncoder: embedded source ", embedded.Describe(), " should be [batch, src, ",
                forward_cell_->input_size(), "]");
  const int64_t batch = embedded.size(0), length = embedded.size(1);
  ATTNLAB_CHECK(length > 0, "RnnEncoder: empty source ", embedded.Describe());
  ATTNLAB_CHECK(!padding_mask.defined() || padding_mask.shape() == (Shape{batch, length}),
                "RnnEncoder: padding mask ", padding_mask.defined() ? padding_mask.Describe() : "",
                " should be [batch, src] for source ", embedded.Describe());
  const std::vector<StepMask> masks = BuildStepMasks(padding_mask, batch, length);
  // The input half of every gate for every step in one matmul per direction, time-major
  // so that each step's slice is contiguous: [src, batch, gates * hidden].
  const Tensor time_major = Permute(embedded, {1, 0, 2});
  auto [forward_outputs, forward_final] =
      RunDirection(*forward_cell_, forward_cell_->ProjectInput(time_major), masks, false);
  auto [backward_outputs, backward_final] =
      RunDirection(*backward_cell_, backward_cell_->ProjectInput(time_major), masks, true);
  RnnEncoderOutput output;
  output.outputs = Concat({forward_outputs, backward_outputs}, 2);  // [batch, src, 2H]
  output.forward_final = std::move(forward_final);
  output.backward_final = std::move(backward_final);
  return output;
}

}  // namespace attnlab::nn
