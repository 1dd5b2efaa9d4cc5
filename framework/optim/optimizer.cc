#include "framework/optim/optimizer.h"

#include <algorithm>
#include <limits>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/autograd/grad_mode.h"
#include "framework/io/safetensors.h"
#include "framework/parallel/parallel_for.h"
#include "framework/tensor/flat_arena.h"

namespace attnlab {
namespace {

// Elements per unit of parallel work. Fixed, so the split does not depend on threads.
constexpr int64_t kWorkGrain = int64_t{1} << 15;

constexpr std::string_view kGlobalStepName = "optim.step";

}  // namespace

Optimizer::Optimizer(NamedTensors parameters, std::vector<std::string> moment_names)
    : parameters_(std::move(parameters)), moment_names_(std::move(moment_names)) {
  absl::flat_hash_set<std::string> seen;
  for (const auto& [name, parameter] : parameters_) {
    CheckTrainableParameter("Optimizer", name, parameter);
    ATTNLAB_CHECK(seen.insert(name).second, "Optimizer: parameter name '", name, "' appears twice");
  }
  parameter_data_.assign(parameters_.size(), nullptr);
  gradient_data_.assign(parameters_.size(), nullptr);
}

void Optimizer::EnsureState() {
  if (state_ready_) return;
  const size_t count = parameters_.size();
  std::vector<int64_t> offsets(count);
  int64_t total = 0;
  for (size_t p = 0; p < count; ++p) {
    offsets[p] = total;
    // Each parameter's slice of a moment arena starts on a 64-byte boundary.
    total += AlignedSliceSize(parameters_[p].second.numel());
  }
  moment_arenas_.clear();
  moment_views_.assign(moment_names_.size(), {});
  moment_data_.assign(moment_names_.size(), {});
  for (size_t m = 0; m < moment_names_.size(); ++m) {
    moment_arenas_.push_back(Tensor::Zeros({total}));
    for (size_t p = 0; p < count; ++p) {
      const Shape& shape = parameters_[p].second.shape();
      moment_views_[m].push_back(
          MakeView(moment_arenas_[m], shape, ContiguousStrides(shape), offsets[p]));
      moment_data_[m].push_back(moment_arenas_[m].data<float>() + offsets[p]);
    }
  }
  step_arena_ = Tensor::Zeros({static_cast<int64_t>(count)}, DType::kI32);
  step_views_.clear();
  for (size_t p = 0; p < count; ++p) {
    step_views_.push_back(MakeView(step_arena_, {}, {}, static_cast<int64_t>(p)));
  }
  global_step_ = Tensor::Zeros({}, DType::kI32);
  work_.clear();
  for (size_t p = 0; p < count; ++p) {
    const int64_t numel = parameters_[p].second.numel();
    for (int64_t begin = 0; begin < numel; begin += kWorkGrain) {
      work_.push_back({p, begin, std::min(numel, begin + kWorkGrain)});
    }
  }
  state_ready_ = true;
}

void Optimizer::Step(double learning_rate) {
  ATTNLAB_CHECK(learning_rate >= 0.0, "Optimizer::Step: learning rate ", learning_rate,
                " must be non-negative");
  NoGradGuard no_grad;
  EnsureState();
  int32_t* steps = step_arena_.data<int32_t>();
  int32_t& global_step = *global_step_.data<int32_t>();
  ATTNLAB_CHECK(global_step < std::numeric_limits<int32_t>::max(),
                "Optimizer::Step: step counter overflow");
  ++global_step;
  for (size_t p = 0; p < parameters_.size(); ++p) {
    const TensorImpl& parameter = *parameters_[p].second.impl();
    parameter_data_[p] = parameters_[p].second.data<float>();
    if (parameter.grad == nullptr) {
      gradient_data_[p] = nullptr;
      continue;
    }
    const Tensor gradient(parameter.grad);
    ATTNLAB_CHECK(gradient.shape() == parameter.shape && gradient.is_contiguous(),
                  "Optimizer::Step: gradient ", gradient.Describe(), " of parameter '",
                  parameters_[p].first, "' does not match it (", ShapeToString(parameter.shape),
                  ") or is not contiguous");
    gradient_data_[p] = gradient.data<float>();
    ATTNLAB_CHECK(steps[p] < std::numeric_limits<int32_t>::max(),
                  "Optimizer::Step: step counter overflow");
    ++steps[p];
    PrepareParameter(p, steps[p], learning_rate);
  }
  ParallelFor(static_cast<int64_t>(work_.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t w = begin; w < end; ++w) {
      const WorkItem& item = work_[w];
      const float* gradient = gradient_data_[item.parameter];
      if (gradient != nullptr) UpdateRange(item.parameter, item.begin, item.end, gradient);
    }
  });
}

void Optimizer::ZeroGrad() {
  for (auto& [name, parameter] : parameters_) parameter.zero_grad();
}

int64_t Optimizer::step_count() const { return state_ready_ ? *global_step_.data<int32_t>() : 0; }

NamedTensors Optimizer::NamedState() {
  EnsureState();
  NamedTensors state;
  state.reserve(1 + parameters_.size() * (moment_names_.size() + 1));
  state.emplace_back(std::string(kGlobalStepName), global_step_);
  for (size_t p = 0; p < parameters_.size(); ++p) {
    const std::string prefix = absl::StrCat("optim.", parameters_[p].first, ".");
    for (size_t m = 0; m < moment_names_.size(); ++m) {
      state.emplace_back(absl::StrCat(prefix, moment_names_[m]), moment_views_[m][p]);
    }
    state.emplace_back(absl::StrCat(prefix, "step"), step_views_[p]);
  }
  return state;
}

absl::Status Optimizer::LoadState(const NamedTensors& state) {
  const NamedTensors destination = NamedState();
  std::vector<std::string> problems = NamedLoadProblems(destination, state, /*strict=*/true);
  // Step counts must be counts.
  absl::flat_hash_set<std::string_view> step_names;
  for (const auto& [name, tensor] : destination) {
    if (tensor.dtype() == DType::kI32) step_names.insert(name);
  }
  for (const auto& [name, tensor] : state) {
    if (!step_names.contains(name) || !tensor.defined() || tensor.dtype() != DType::kI32 ||
        tensor.numel() != 1) {
      continue;
    }
    const int32_t value = tensor.ToInts()[0];
    if (value < 0) problems.push_back(absl::StrCat("\"", name, "\": negative step count ", value));
  }
  if (!problems.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "optimizer state does not match this optimizer (", problems.size(),
        problems.size() == 1 ? " problem): " : " problems): ", absl::StrJoin(problems, "; ")));
  }
  return LoadIntoNamed(destination, state, /*strict=*/true);
}

}  // namespace attnlab
