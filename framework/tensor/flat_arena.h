// FlatArena: every parameter in one contiguous f32 buffer and every gradient in another,
// each named parameter (and its gradient) a view into them, as llm.c keeps its
// parameters and gradients. Then an all-reduce of all gradients is one call on one
// buffer (or a few calls on contiguous buckets), and zeroing is one memset.
//
// Adopt() moves existing parameters into the arena in place of their storage: a
// parameter's TensorImpl, which the module's member, its registry entry and the
// optimizer all share, is re-pointed at its slot of the arena (values copied bit for
// bit), so nothing that holds the parameter has to change. Each parameter also gets its
// gradient slot as TensorImpl::grad_arena_view; backward (framework/autograd/engine.cc)
// then writes the first gradient into that view (a copy, the same bits as the fresh
// tensor it would otherwise allocate) and adds later micro-batches' gradients in place.
// Optimizer and clipping read `grad` as before and give bit-identical results.
//
// Gradients keep PyTorch's set-to-none meaning: after zero_grad()/Optimizer::ZeroGrad()
// a parameter's `grad` is null until backward reaches it, and the optimizer skips
// parameters it did not reach. Their slots of the arena may then hold an old gradient:
// before reducing the whole arena, call FillMissingGradients(), which zeroes those slots
// and makes every parameter's gradient its view (what data-parallel training needs: a
// parameter reached on one rank only must be updated on every rank).
//
// Layout: slot i starts at offsets()[i], a multiple of 16 floats (64 bytes, so every view
// is as aligned as a fresh tensor); padding between slots stays zero in both arenas.
//
// What must not be done after Adopt: keeping an older view of a parameter's storage
// (MakeView/narrow of the parameter made before Adopt still reads the old memory), or
// replacing `grad` by hand with another tensor (the arena would no longer see it; the
// gradient accessors check for that).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "framework/tensor/tensor.h"

namespace attnlab {

// What a holder of trainable parameters (FlatArena::Adopt, the optimizer) requires of
// each: defined, a contiguous f32 tensor, and a leaf (not produced by an op). Anything
// else is a programming error (attnlab::Error naming `holder` and the parameter).
void CheckTrainableParameter(std::string_view holder, const std::string& name,
                             const Tensor& parameter);

// The floats a parameter of `numel` elements takes in a flat buffer whose every slice
// starts on a 64-byte boundary, as a freshly allocated tensor's data does.
int64_t AlignedSliceSize(int64_t numel);

class FlatArena {
 public:
  // Moves `parameters` into a new arena. Each must be a defined, contiguous f32 leaf
  // with its own storage (not a view sharing storage with another tensor), and no tensor
  // may appear twice; anything else is a programming error (attnlab::Error).
  static FlatArena Adopt(const NamedTensors& parameters);

  FlatArena(FlatArena&&) = default;
  FlatArena& operator=(FlatArena&&) = default;

  // The whole arenas, f32 [numel()] (padding included).
  const Tensor& parameter_buffer() const { return parameter_buffer_; }
  const Tensor& gradient_buffer() const { return gradient_buffer_; }
  std::span<float> parameter_span() const;
  std::span<float> gradient_span() const;
  int64_t numel() const { return parameter_buffer_.numel(); }

  // The adopted parameters (the same handles, now views into parameter_buffer()), in
  // Adopt's order, and where each one's slot starts in both arenas.
  const NamedTensors& parameters() const { return parameters_; }
  const std::vector<int64_t>& offsets() const { return offsets_; }
  // Views of each parameter's gradient slot, whether or not the parameter has a
  // gradient now (named as the parameters).
  NamedTensors GradientViews() const;
  // The index of `parameter`'s slot, or -1 when it is not in this arena (e.g. the leaf
  // that autograd's gradient-ready hook reports is an input, not a parameter).
  int SlotOf(const TensorImpl* parameter) const;

  // Zeroes the whole gradient arena and forgets every gradient (set-to-none), so the
  // next backward starts from zero everywhere.
  void ZeroGrad();
  // Zeroes the slot of every parameter without a gradient and makes every parameter's
  // gradient its view. Checks that no gradient was replaced by a tensor outside the arena.
  void FillMissingGradients();
  // The same for one slot (from a gradient-ready hook, before its bucket is reduced).
  void FillMissingGradient(int slot);
  // Whether every parameter that has a gradient has it in the arena.
  bool GradientsAreInArena() const;

 private:
  FlatArena() = default;

  NamedTensors parameters_;
  std::vector<int64_t> offsets_;
  absl::flat_hash_map<const TensorImpl*, int> slot_of_;
  Tensor parameter_buffer_;
  Tensor gradient_buffer_;
};

}  // namespace attnlab
