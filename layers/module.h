// Module: the base of every layer and model (after PyTorch's torch::nn::Module, without
// its template machinery). A module registers its parameters, buffers and child modules
// by name; NamedParameters() walks the tree and produces dotted names such as
// `encoder.layers.0.self_attn.q_proj.weight`, which are the checkpoint's names.
//
// Registered tensors are handles: the module's member and the registry share one
// TensorImpl, so loading a checkpoint copies into the existing storage.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "framework/profiler/profiler.h"
#include "framework/tensor/tensor.h"

namespace attnlab::nn {

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Every parameter of this module and its descendants, in registration order.
  NamedTensors NamedParameters() const;
  std::vector<Tensor> Parameters() const;
  // Buffers (non-trainable state); non-persistent ones (e.g. the sinusoidal table, which
  // is recomputed) are left out unless asked for.
  NamedTensors NamedBuffers(bool include_non_persistent = false) const;
  // Total number of parameter elements.
  int64_t ParameterCount() const;

  // Training mode switches dropout on; Eval() switches it off. Applies to the subtree.
  void Train(bool training = true);
  void Eval() { Train(false); }
  bool is_training() const { return training_; }

  // Forgets every parameter's gradient.
  void ZeroGrad();

  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const {
    return children_;
  }

  // The dotted name of this module below the root (`decoder.layers.1.self_attn`), from
  // where it was first registered; `kind` for a root (or unregistered) module.
  std::string DottedName(std::string_view kind) const;

 protected:
  // A profiler span for this module's forward, named by DottedName(kind). Costs one
  // branch when the profiler is off. Use at the top of a forward:
  //   const auto profile = ProfileScope("multi_head_attention");
  profiler::LayerScope ProfileScope(std::string_view kind) const {
    if (!profiler::Enabled()) return profiler::LayerScope();
    return profiler::LayerScope(ProfileNameId(kind));
  }

  // Registers `tensor` as a trainable parameter (it becomes a leaf requiring grad).
  Tensor RegisterParameter(const std::string& name, Tensor tensor);
  Tensor RegisterBuffer(const std::string& name, Tensor tensor, bool persistent = true);
  template <typename ModuleType>
  std::shared_ptr<ModuleType> RegisterModule(const std::string& name,
                                             std::shared_ptr<ModuleType> module) {
    RegisterChild(name, module);
    return module;
  }

 private:
  void RegisterChild(const std::string& name, std::shared_ptr<Module> module);
  void CollectParameters(const std::string& prefix, NamedTensors& out) const;
  void CollectBuffers(const std::string& prefix, bool include_non_persistent,
                      NamedTensors& out) const;

  struct Buffer {
    std::string name;
    Tensor tensor;
    bool persistent;
  };
  NamedTensors parameters_;
  std::vector<Buffer> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
  // Where this module was first registered (for DottedName), and its profiler name id.
  const Module* parent_ = nullptr;
  std::string name_in_parent_;
  uint32_t ProfileNameId(std::string_view kind) const;
  mutable uint32_t profile_name_id_ = 0;
};

}  // namespace attnlab::nn
