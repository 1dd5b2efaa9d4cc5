// Tensor: a shared handle to a shape, strides, an element type and a block of storage
// from the caching allocator, plus the autograd fields (requires_grad, grad, grad_fn).
//
// Copying a Tensor copies the handle, not the data (as in PyTorch). Storage is
// row-major; views (reshape of a contiguous tensor, narrow) share storage and may be
// strided; ops that need contiguous memory call contiguous(), which copies only when
// needed. Every op lives in framework/ops/; the members below that compute something
// (reshape, narrow, permute, ...) are thin forwards to those ops.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "framework/core/error.h"
#include "framework/tensor/dtype.h"
#include "framework/tensor/shape.h"

namespace attnlab {

namespace autograd {
struct Node;
}

// A block of memory from the caching allocator; returned to it when the last view dies.
struct Storage {
  Storage(size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data;
  size_t bytes;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements, from the start of storage
  Shape shape;
  Strides strides;  // in elements
  DType dtype = DType::kF32;

  // Autograd. A leaf has no grad_fn; an op output that needs a gradient has one.
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;         // accumulated gradient of a leaf
  std::shared_ptr<autograd::Node> grad_fn;  // the op that produced this tensor
  // Set by FlatArena (framework/tensor/flat_arena.h) for a parameter whose gradient lives
  // in a flat gradient arena: this leaf's view of it. Backward then writes the leaf's
  // first gradient into this view (a copy, bit for bit) instead of a fresh tensor, and
  // adds later ones in place, so `grad` is either null (set-to-none) or this view.
  std::shared_ptr<TensorImpl> grad_arena_view;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- Creation -------------------------------------------------------------------
  // Uninitialised contiguous tensor.
  static Tensor Empty(const Shape& shape, DType dtype = DType::kF32);
  static Tensor Zeros(const Shape& shape, DType dtype = DType::kF32);
  static Tensor Full(const Shape& shape, float value);
  static Tensor FromFloats(std::span<const float> values, const Shape& shape);
  static Tensor FromInts(std::span<const int32_t> values, const Shape& shape);
  static Tensor Scalar(float value) { return Full({}, value); }

  // ---- Metadata -------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl_->shape; }
  const Strides& strides() const { return impl_->strides; }
  int64_t rank() const { return static_cast<int64_t>(impl_->shape.size()); }
  // Extent of dimension `dim`; negative counts from the end.
  int64_t size(int64_t dim) const;
  int64_t numel() const { return NumElements(impl_->shape); }
  DType dtype() const { return impl_->dtype; }
  bool is_contiguous() const;
  // "f32[2, 3, 4]", for error messages.
  std::string Describe() const;

  // ---- Data access (the element type must match) -------------------------------
  template <typename T>
  T* data() const {
    ATTNLAB_CHECK(impl_ != nullptr, "data(): undefined tensor");
    ATTNLAB_CHECK(impl_->dtype == DTypeOf<T>::value, "data(): tensor is ", Describe(),
                  ", requested ", DTypeName(DTypeOf<T>::value));
    return static_cast<T*>(impl_->storage->data) + impl_->offset;
  }
  // Untyped pointer to the first element (for backends that take the dtype separately).
  void* raw_data() const;
  // The single value of a one-element f32 tensor.
  float item() const;
  // A copy of the elements in row-major order (handles strided views).
  std::vector<float> ToFloats() const;
  std::vector<int32_t> ToInts() const;
  // Fills with `value` in place (no autograd).
  void Fill(float value);

  // ---- Autograd -------------------------------------------------------------------
  bool requires_grad() const { return impl_->requires_grad; }
  // Marks a leaf as needing a gradient. Returns *this for chaining.
  Tensor& set_requires_grad(bool requires_grad);
  // The accumulated gradient of a leaf (undefined until a backward reaches it).
  Tensor grad() const { return Tensor(impl_->grad); }
  // Forgets the accumulated gradient.
  void zero_grad() { impl_->grad.reset(); }
  const std::shared_ptr<autograd::Node>& grad_fn() const { return impl_->grad_fn; }
  // Back-propagates from this one-element tensor (seed gradient 1).
  void backward() const;
  // Same storage, cut from the graph.
  Tensor detach() const;

  // ---- Shape ops (recorded by autograd; see framework/ops/shape.cc) --------------
  Tensor reshape(const Shape& shape) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor contiguous() const;
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;

  // Deep copy with its own storage (contiguous, not recorded by autograd).
  Tensor Clone() const;

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Named tensors in a fixed order: parameters, buffers, optimizer state, checkpoints.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// A view of `base`'s storage with another shape/strides/offset (no autograd).
Tensor MakeView(const Tensor& base, const Shape& shape, const Strides& strides, int64_t offset);

}  // namespace attnlab
