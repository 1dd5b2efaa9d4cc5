#include "layers/module.h"

#include "absl/strings/str_cat.h"

namespace attnlab::nn {
namespace {
void CheckUnique(const std::string& name, const NamedTensors& tensors) {
  for (const auto& [existing, tensor] : tensors) {
    ATTNLAB_CHECK(existing != name, "Module: name '", name, "' registered twice");
  }
}
}  // namespace

Tensor Module::RegisterParameter(const std::string& name, Tensor tensor) {
  ATTNLAB_CHECK(!name.empty() && name.find('.') == std::string::npos, "Module: parameter name '",
                name, "' must be non-empty and have no dots");
  CheckUnique(name, parameters_);
  tensor.set_requires_grad(true);
  parameters_.emplace_back(name, tensor);
  return tensor;
}

Tensor Module::RegisterBuffer(const std::string& name, Tensor tensor, bool persistent) {
  for (const Buffer& buffer : buffers_) {
    ATTNLAB_CHECK(buffer.name != name, "Module: buffer '", name, "' registered twice");
  }
  buffers_.push_back({name, tensor, persistent});
  return tensor;
}

void Module::RegisterChild(const std::string& name, std::shared_ptr<Module> module) {
  ATTNLAB_CHECK(module != nullptr, "Module: child '", name, "' is null");
  for (const auto& [existing, child] : children_) {
    ATTNLAB_CHECK(existing != name, "Module: child '", name, "' registered twice");
  }
  module->Train(training_);
  if (module->parent_ == nullptr) {  // a module shared by two parents keeps its first name
    module->parent_ = this;
    module->name_in_parent_ = name;
  }
  children_.emplace_back(name, std::move(module));
}

std::string Module::DottedName(std::string_view kind) const {
  if (parent_ == nullptr) return std::string(kind);
  std::string name = name_in_parent_;
  for (const Module* ancestor = parent_; ancestor->parent_ != nullptr;
       ancestor = ancestor->parent_) {
    name = absl::StrCat(ancestor->name_in_parent_, ".", name);
  }
  return name;
}

uint32_t Module::ProfileNameId(std::string_view kind) const {
  // Interned once: a module's place in the tree is fixed once the model is built.
  if (profile_name_id_ == 0) profile_name_id_ = profiler::InternName(DottedName(kind));
  return profile_name_id_;
}

void Module::CollectParameters(const std::string& prefix, NamedTensors& out) const {
  for (const auto& [name, tensor] : parameters_) out.emplace_back(prefix + name, tensor);
  for (const auto& [name, child] : children_) child->CollectParameters(prefix + name + ".", out);
}

void Module::CollectBuffers(const std::string& prefix, bool include_non_persistent,
                            NamedTensors& out) const {
  for (const Buffer& buffer : buffers_) {
    if (buffer.persistent || include_non_persistent)
      out.emplace_back(prefix + buffer.name, buffer.tensor);
  }
  for (const auto& [name, child] : children_) {
    child->CollectBuffers(prefix + name + ".", include_non_persistent, out);
  }
}

NamedTensors Module::NamedParameters() const {
  NamedTensors out;
  CollectParameters("", out);
  return out;
}

std::vector<Tensor> Module::Parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, tensor] : NamedParameters()) out.push_back(tensor);
  return out;
}

NamedTensors Module::NamedBuffers(bool include_non_persistent) const {
  NamedTensors out;
  CollectBuffers("", include_non_persistent, out);
  return out;
}

int64_t Module::ParameterCount() const {
  int64_t count = 0;
  for (const auto& [name, tensor] : NamedParameters()) count += tensor.numel();
  return count;
}

void Module::Train(bool training) {
  training_ = training;
  for (auto& [name, child] : children_) child->Train(training);
}

void Module::ZeroGrad() {
  for (auto& [name, tensor] : NamedParameters()) tensor.zero_grad();
}

}  // namespace attnlab::nn
