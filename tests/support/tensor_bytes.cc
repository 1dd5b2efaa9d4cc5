#include "tests/support/tensor_bytes.h"

#include "framework/io/safetensors.h"

namespace attnlab::testing {

absl::StatusOr<std::map<std::string, std::string>> TensorBytesOf(
    const std::filesystem::path& path) {
  absl::StatusOr<SafetensorsContents> contents = ReadSafetensors(path.string());
  if (!contents.ok()) return contents.status();
  std::map<std::string, std::string> tensors;
  for (const auto& [name, tensor] : contents->tensors) {
    const Tensor contiguous = tensor.Clone();
    tensors[name] = std::string(static_cast<const char*>(contiguous.raw_data()),
                                contiguous.numel() * ElementSize(contiguous.dtype()));
  }
  return tensors;
}

}  // namespace attnlab::testing
