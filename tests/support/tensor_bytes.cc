#include "tests/support/tensor_bytes.h"

#include "framework/io/safetensors.h"
#include "gtest/gtest.h"

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

std::map<std::string, std::string> LoadedTensorBytesOf(const std::filesystem::path& path) {
  absl::StatusOr<std::map<std::string, std::string>> tensors = TensorBytesOf(path);
  EXPECT_TRUE(tensors.ok()) << tensors.status();
  return tensors.ok() ? *std::move(tensors) : std::map<std::string, std::string>{};
}

}  // namespace attnlab::testing
