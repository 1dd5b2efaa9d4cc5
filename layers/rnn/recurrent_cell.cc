#include "layers/rnn/recurrent_cell.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "framework/ops/ops.h"
#include "layers/init.h"
#include "layers/rnn/gru_cell.h"
#include "layers/rnn/lstm_cell.h"

namespace attnlab::nn {

RecurrentCell::RecurrentCell(int64_t input_size, int64_t hidden_size, int64_t gate_count,
                             Generator& generator)
    : input_size_(input_size), hidden_size_(hidden_size), gate_count_(gate_count) {
  ATTNLAB_CHECK(input_size > 0 && hidden_size > 0,
                "RecurrentCell: sizes must be positive, got input ", input_size, ", hidden ",
                hidden_size);
  // PyTorch's RNN initialisation: U(-k, k), k = 1/sqrt(hidden), for weights and biases alike.
  const float bound = 1.0f / std::sqrt(static_cast<float>(hidden_size));
  const int64_t gate_rows = gate_count * hidden_size;
  weight_ih_ = Tensor::Empty({gate_rows, input_size});
  weight_hh_ = Tensor::Empty({gate_rows, hidden_size});
  bias_ih_ = Tensor::Empty({gate_rows});
  bias_hh_ = Tensor::Empty({gate_rows});
  for (Tensor* tensor : {&weight_ih_, &weight_hh_, &bias_ih_, &bias_hh_}) {
    init::Uniform(*tensor, -bound, bound, generator);
  }
  weight_ih_ = RegisterParameter("weight_ih", weight_ih_);
  weight_hh_ = RegisterParameter("weight_hh", weight_hh_);
  bias_ih_ = RegisterParameter("bias_ih", bias_ih_);
  bias_hh_ = RegisterParameter("bias_hh", bias_hh_);
}

Tensor RecurrentCell::ProjectInput(const Tensor& x) const {
  ATTNLAB_CHECK(x.rank() >= 1 && x.size(-1) == input_size_, "RecurrentCell: input ", x.Describe(),
                " should end in input_size ", input_size_);
  return Linear(x, weight_ih_, bias_ih_);
}

Tensor RecurrentCell::ProjectHidden(const Tensor& hidden) const {
  return Linear(hidden, weight_hh_, bias_hh_);
}

Tensor RecurrentCell::Gate(const Tensor& gates, int64_t index) const {
  return Gates(gates, index, 1);
}

Tensor RecurrentCell::Gates(const Tensor& gates, int64_t first, int64_t count) const {
  return Narrow(gates, -1, first * hidden_size_, count * hidden_size_);
}

RecurrentState RecurrentCell::ZeroState(int64_t batch) const {
  RecurrentState state;
  state.hidden = Tensor::Zeros({batch, hidden_size_});
  if (has_cell_state()) state.cell = Tensor::Zeros({batch, hidden_size_});
  return state;
}

void RecurrentCell::CheckStep(const char* cell_name, const Tensor& input_gates,
                              const RecurrentState& state) const {
  ATTNLAB_CHECK(input_gates.rank() == 2 && input_gates.size(1) == gate_count_ * hidden_size_,
                cell_name, ": input gates ", input_gates.Describe(), " should be [batch, ",
                gate_count_ * hidden_size_, "]");
  const Shape state_shape = {input_gates.size(0), hidden_size_};
  ATTNLAB_CHECK(state.hidden.defined() && state.hidden.shape() == state_shape, cell_name,
                ": hidden state ", state.hidden.defined() ? state.hidden.Describe() : "undefined",
                " should be ", ShapeToString(state_shape));
  if (has_cell_state()) {
    ATTNLAB_CHECK(state.cell.defined() && state.cell.shape() == state_shape, cell_name,
                  ": cell state ", state.cell.defined() ? state.cell.Describe() : "undefined",
                  " should be ", ShapeToString(state_shape));
  }
}

absl::StatusOr<std::shared_ptr<RecurrentCell>> MakeRecurrentCell(std::string_view kind,
                                                                 int64_t input_size,
                                                                 int64_t hidden_size,
                                                                 Generator& generator) {
  if (input_size <= 0 || hidden_size <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "recurrent cell sizes must be positive, got input ", input_size, ", hidden ", hidden_size));
  }
  if (kind == "gru") return std::make_shared<GruCell>(input_size, hidden_size, generator);
  if (kind == "lstm") return std::make_shared<LstmCell>(input_size, hidden_size, generator);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown recurrent cell '", std::string(kind), "'; known: gru, lstm"));
}

}  // namespace attnlab::nn
