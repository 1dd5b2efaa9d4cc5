// The safetensors reader (framework/io/safetensors.h). A file it accepts must also
// survive writing: written back and read again, it gives the same tensors (names, order,
// dtypes, shapes, bytes) and the same metadata.
#include <cstring>
#include <string>

#include "framework/core/error.h"
#include "framework/io/safetensors.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

bool SameBytes(const attnlab::Tensor& a, const attnlab::Tensor& b) {
  const size_t bytes = static_cast<size_t>(a.numel()) * attnlab::ElementSize(a.dtype());
  return bytes == 0 || std::memcmp(a.raw_data(), b.raw_data(), bytes) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path =
      attnlab::fuzz::WriteScratchFile("fuzz.safetensors", attnlab::fuzz::AsText(data, size));
  const absl::StatusOr<attnlab::SafetensorsContents> read = attnlab::ReadSafetensors(path);
  if (!read.ok()) return 0;

  const std::string rewritten_path = (attnlab::fuzz::ScratchDirectory() / "rewritten").string();
  const absl::Status written =
      attnlab::WriteSafetensors(rewritten_path, read->tensors, read->metadata);
  ATTNLAB_CHECK(written.ok(), "a file that reads does not write back: ", written.message());
  const absl::StatusOr<attnlab::SafetensorsContents> reread =
      attnlab::ReadSafetensors(rewritten_path);
  ATTNLAB_CHECK(reread.ok(), "a rewritten file does not read back: ", reread.status().message());
  ATTNLAB_CHECK(reread->metadata == read->metadata, "the metadata changed when rewritten");
  ATTNLAB_CHECK(reread->tensors.size() == read->tensors.size(), "tensors were lost or added");
  for (size_t i = 0; i < read->tensors.size(); ++i) {
    const auto& [name, tensor] = read->tensors[i];
    const auto& [reread_name, reread_tensor] = reread->tensors[i];
    ATTNLAB_CHECK(name == reread_name && tensor.dtype() == reread_tensor.dtype() &&
                      tensor.shape() == reread_tensor.shape() && SameBytes(tensor, reread_tensor),
                  "tensor ", i, " \"", name, "\" ", tensor.Describe(), " was rewritten as \"",
                  reread_name, "\" ", reread_tensor.Describe());
  }
  return 0;
}
