#include "framework/tensor/flat_arena.h"

#include <cstring>
#include <utility>

namespace attnlab {
namespace {}  // namespace

void CheckTrainableParameter(std::string_view holder, const std::string& name,
                             const Tensor& parameter) {
  ATTNLAB_CHECK(parameter.defined(), holder, ": parameter '", name, "' is undefined");
  ATTNLAB_CHECK(parameter.dtype() == DType::kF32 && parameter.is_contiguous(), holder,
                ": parameter '", name, "' must be a contiguous f32 tensor, got ",
                parameter.Describe());
  ATTNLAB_CHECK(parameter.grad_fn() == nullptr, holder, ": parameter '", name,
                "' is not a leaf (it was produced by an op)");
}

int64_t AlignedSliceSize(int64_t numel) {
  constexpr int64_t kAlignment = 64 / sizeof(float);  // floats in 64 bytes
  return (numel + kAlignment - 1) / kAlignment * kAlignment;
}

FlatArena FlatArena::Adopt(const NamedTensors& parameters) {
  // Which name first used each TensorImpl and each storage.
  absl::flat_hash_map<const TensorImpl*, std::string> impls;
  absl::flat_hash_map<const Storage*, std::string> storages;
  FlatArena arena;
  int64_t total = 0;
  for (const auto& [name, parameter] : parameters) {
    CheckTrainableParameter("FlatArena::Adopt", name, parameter);
    ATTNLAB_CHECK(parameter.impl()->grad_arena_view == nullptr, "FlatArena::Adopt: parameter '",
                  name, "' is already in a FlatArena");
    const auto [impl_entry, new_impl] = impls.try_emplace(parameter.impl(), name);
    ATTNLAB_CHECK(new_impl, "FlatArena::Adopt: '", name, "' is the same tensor as '",
                  impl_entry->second, "'");
    const auto [storage_entry, new_storage] =
        storages.try_emplace(parameter.impl()->storage.get(), name);
    ATTNLAB_CHECK(new_storage, "FlatArena::Adopt: '", name, "' shares its storage with '",
                  storage_entry->second, "' (moving one would untie them)");
    arena.slot_of_[parameter.impl()] = static_cast<int>(arena.offsets_.size());
    arena.offsets_.push_back(total);
    total += AlignedSliceSize(parameter.numel());
  }
  arena.parameter_buffer_ = Tensor::Zeros({total});
  arena.gradient_buffer_ = Tensor::Zeros({total});
  arena.parameters_ = parameters;
  float* parameter_base = arena.parameter_buffer_.data<float>();
  float* gradient_base = arena.gradient_buffer_.data<float>();
  for (size_t i = 0; i < parameters.size(); ++i) {
    TensorImpl& impl = *parameters[i].second.impl();
    const int64_t offset = arena.offsets_[i];
    const size_t bytes = static_cast<size_t>(NumElements(impl.shape)) * sizeof(float);
    std::memcpy(parameter_base + offset, parameters[i].second.data<float>(), bytes);
    impl.storage = arena.parameter_buffer_.impl()->storage;
    impl.offset = offset;
    impl.strides = ContiguousStrides(impl.shape);
    impl.grad_arena_view =
        MakeView(arena.gradient_buffer_, impl.shape, ContiguousStrides(impl.shape), offset)
            .impl_ptr();
    if (impl.grad != nullptr) {  // a gradient already accumulated moves in too
      const Tensor gradient = Tensor(impl.grad).contiguous();
      std::memcpy(gradient_base + offset, gradient.data<float>(), bytes);
      impl.grad = impl.grad_arena_view;
    }
  }
  return arena;
}

std::span<float> FlatArena::parameter_span() const {
  return {parameter_buffer_.data<float>(), static_cast<size_t>(numel())};
}

std::span<float> FlatArena::gradient_span() const {
  return {gradient_buffer_.data<float>(), static_cast<size_t>(numel())};
}

NamedTensors FlatArena::GradientViews() const {
  NamedTensors views;
  views.reserve(parameters_.size());
  for (const auto& [name, parameter] : parameters_) {
    views.emplace_back(name, Tensor(parameter.impl()->grad_arena_view));
  }
  return views;
}

void FlatArena::ZeroGrad() {
  std::memset(gradient_buffer_.data<float>(), 0, static_cast<size_t>(numel()) * sizeof(float));
  for (auto& [name, parameter] : parameters_) parameter.zero_grad();
}

bool FlatArena::GradientsAreInArena() const {
  for (const auto& [name, parameter] : parameters_) {
    const TensorImpl& impl = *parameter.impl();
    if (impl.grad != nullptr && impl.grad != impl.grad_arena_view) return false;
  }
  return true;
}

int FlatArena::SlotOf(const TensorImpl* parameter) const {
  const auto it = slot_of_.find(parameter);
  return it == slot_of_.end() ? -1 : it->second;
}

void FlatArena::FillMissingGradient(int slot) {
  ATTNLAB_CHECK(slot >= 0 && static_cast<size_t>(slot) < parameters_.size(),
                "FlatArena::FillMissingGradient: slot ", slot, " of ", parameters_.size());
  const auto& [name, parameter] = parameters_[slot];
  TensorImpl& impl = *parameter.impl();
  ATTNLAB_CHECK(impl.grad == nullptr || impl.grad == impl.grad_arena_view,
                "FlatArena::FillMissingGradient: the gradient of '", name,
                "' was replaced by a tensor outside the arena");
  if (impl.grad != nullptr) return;
  std::memset(Tensor(impl.grad_arena_view).raw_data(), 0,
              static_cast<size_t>(NumElements(impl.shape)) * sizeof(float));
  impl.grad = impl.grad_arena_view;
}

void FlatArena::FillMissingGradients() {
  for (size_t slot = 0; slot < parameters_.size(); ++slot) {
    FillMissingGradient(static_cast<int>(slot));
  }
}

}  // namespace attnlab
