// The raw bytes of every tensor of a safetensors file, by name: what tests compare when
// they claim two checkpoints are bit-identical (parameters and optimizer moments alike).
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace attnlab::testing {

absl::StatusOr<std::map<std::string, std::string>> TensorBytesOf(const std::filesystem::path& path);

// The same for a file that must load: one that does not fails the running test (and gives
// an empty map).
std::map<std::string, std::string> LoadedTensorBytesOf(const std::filesystem::path& path);

}  // namespace attnlab::testing
