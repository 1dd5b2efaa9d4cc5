#include "framework/tensor/tensor.h"

#include <cstring>

#include "framework/autograd/node.h"
#include "framework/tensor/allocator.h"

namespace attnlab {

Storage::Storage(size_t bytes) : data(CachingAllocator::Global().Allocate(bytes)), bytes(bytes) {}
Storage::~Storage() { CachingAllocator::Global().Release(data, bytes); }

Tensor Tensor::Empty(const Shape& shape, DType dtype) {
  for (int64_t extent : shape) {
    ATTNLAB_CHECK(extent >= 0, "Empty: negative extent in shape ", ShapeToString(shape));
  }
  size_t bytes = 0;
  ATTNLAB_CHECK(
      !__builtin_mul_overflow(static_cast<size_t>(NumElements(shape)), ElementSize(dtype), &bytes),
      "Empty: shape ", ShapeToString(shape), " needs more bytes than a size_t can count");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(bytes);
  impl->shape = shape;
  impl->strides = ContiguousStrides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::Zeros(const Shape& shape, DType dtype) {
  Tensor tensor = Empty(shape, dtype);
  std::memset(tensor.raw_data(), 0, tensor.numel() * ElementSize(dtype));
  return tensor;
}

Tensor Tensor::Full(const Shape& shape, float value) {
  Tensor tensor = Empty(shape, DType::kF32);
  tensor.Fill(value);
  return tensor;
}

Tensor Tensor::FromFloats(std::span<const float> values, const Shape& shape) {
  ATTNLAB_CHECK(static_cast<int64_t>(values.size()) == NumElements(shape),
                "FromFloats: ", values.size(), " values for shape ", ShapeToString(shape));
  Tensor tensor = Empty(shape, DType::kF32);
  if (!values.empty()) std::memcpy(tensor.raw_data(), values.data(), values.size() * sizeof(float));
  return tensor;
}

Tensor Tensor::FromInts(std::span<const int32_t> values, const Shape& shape) {
  ATTNLAB_CHECK(static_cast<int64_t>(values.size()) == NumElements(shape),
                "FromInts: ", values.size(), " values for shape ", ShapeToString(shape));
  Tensor tensor = Empty(shape, DType::kI32);
  if (!values.empty())
    std::memcpy(tensor.raw_data(), values.data(), values.size() * sizeof(int32_t));
  return tensor;
}

int64_t Tensor::size(int64_t dim) const { return impl_->shape[NormalizeDim(dim, rank(), "size")]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t d = rank() - 1; d >= 0; --d) {
    if (impl_->shape[d] != 1 && impl_->strides[d] != expected) return false;
    expected *= impl_->shape[d];
  }
  return true;
}

std::string Tensor::Describe() const {
  if (impl_ == nullptr) return "undefined";
  return absl::StrCat(std::string(DTypeName(impl_->dtype)), ShapeToString(impl_->shape));
}

void* Tensor::raw_data() const {
  return static_cast<char*>(impl_->storage->data) + impl_->offset * ElementSize(impl_->dtype);
}

float Tensor::item() const {
  ATTNLAB_CHECK(numel() == 1, "item(): tensor ", Describe(), " has ", numel(), " elements");
  return *data<float>();
}

namespace {
// Visits the elements of a possibly strided tensor in row-major order.
template <typename T, typename Visit>
void ForEachElement(const Tensor& tensor, Visit visit) {
  const T* base = tensor.data<T>();
  const int64_t rank = tensor.rank();
  const int64_t count = tensor.numel();
  if (tensor.is_contiguous()) {
    for (int64_t i = 0; i < count; ++i) visit(base[i]);
    return;
  }
  Shape index(rank, 0);
  for (int64_t i = 0; i < count; ++i) {
    int64_t offset = 0;
    for (int64_t d = 0; d < rank; ++d) offset += index[d] * tensor.strides()[d];
    visit(base[offset]);
    for (int64_t d = rank - 1; d >= 0; --d) {
      if (++index[d] < tensor.shape()[d]) break;
      index[d] = 0;
    }
  }
}
}  // namespace

std::vector<float> Tensor::ToFloats() const {
  std::vector<float> values;
  values.reserve(numel());
  ForEachElement<float>(*this, [&](float v) { values.push_back(v); });
  return values;
}

std::vector<int32_t> Tensor::ToInts() const {
  std::vector<int32_t> values;
  values.reserve(numel());
  ForEachElement<int32_t>(*this, [&](int32_t v) { values.push_back(v); });
  return values;
}

void Tensor::Fill(float value) {
  ATTNLAB_CHECK(is_contiguous(), "Fill: tensor must be contiguous");
  if (dtype() == DType::kI32) {
    int32_t* out = data<int32_t>();
    for (int64_t i = 0, n = numel(); i < n; ++i) out[i] = static_cast<int32_t>(value);
    return;
  }
  float* out = data<float>();
  for (int64_t i = 0, n = numel(); i < n; ++i) out[i] = value;
}

Tensor& Tensor::set_requires_grad(bool requires_grad) {
  ATTNLAB_CHECK(impl_->grad_fn == nullptr, "set_requires_grad: only leaves can be marked; ",
                Describe(), " was produced by op '", OpName(impl_->grad_fn->op), "'");
  ATTNLAB_CHECK(!requires_grad || impl_->dtype == DType::kF32,
                "set_requires_grad: only f32 tensors can require grad, got ", Describe());
  impl_->requires_grad = requires_grad;
  return *this;
}

void Tensor::backward() const {
  ATTNLAB_CHECK(numel() == 1, "backward(): called on ", Describe(),
                "; it needs a one-element tensor such as a loss");
  autograd::RunBackward(*this, Full(shape(), 1.0f));
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->offset = impl_->offset;
  impl->shape = impl_->shape;
  impl->strides = impl_->strides;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::Clone() const {
  Tensor copy = Empty(shape(), dtype());
  if (is_contiguous()) {
    std::memcpy(copy.raw_data(), raw_data(), numel() * ElementSize(dtype()));
  } else if (dtype() == DType::kF32) {
    std::vector<float> values = ToFloats();
    std::memcpy(copy.raw_data(), values.data(), values.size() * sizeof(float));
  } else {
    std::vector<int32_t> values = ToInts();
    std::memcpy(copy.raw_data(), values.data(), values.size() * sizeof(int32_t));
  }
  return copy;
}

Tensor MakeView(const Tensor& base, const Shape& shape, const Strides& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl()->storage;
  impl->offset = offset;
  impl->shape = shape;
  impl->strides = strides;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

}  // namespace attnlab
