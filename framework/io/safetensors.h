// safetensors: the tensor file format PyTorch and Hugging Face read and write
// (https://github.com/huggingface/safetensors). A file is
//   8 bytes      N, the header length, unsigned little-endian
//   N bytes      a JSON object, padded with spaces:
//                  {"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
//                   ..., "__metadata__": {"<key>": "<string value>", ...}}
//   the data     each tensor's bytes, row-major little-endian, at data_offsets
//                [begin, end) counted from the end of the header
// attnlab reads and writes the dtypes it has: F32, I32 and BF16.
//
// Checkpoints are written atomically (temporary file, flush, fsync, rename), so an
// interrupted write leaves the previous file as it was. Reading validates everything a
// damaged or foreign file can get wrong and reports it as one line naming the file.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "framework/tensor/tensor.h"

namespace attnlab {

using SafetensorsMetadata = std::map<std::string, std::string>;

struct SafetensorsContents {
  NamedTensors tensors;  // in the order of their data in the file
  SafetensorsMetadata metadata;
};

// Writes `tensors` (any layout; strided views are gathered) in the given order, with
// `metadata` as "__metadata__" (omitted when empty). Names must be unique, non-empty and
// not "__metadata__". The file at `path` is replaced atomically: on any error it is
// left as it was and no temporary file remains.
absl::Status WriteSafetensors(const std::string& path, const NamedTensors& tensors,
                              const SafetensorsMetadata& metadata = {});

// Reads a whole file. Errors (one line, starting with the path) for: a file shorter than
// its 8-byte header length, a header length over 100 MB or beyond the file, a header
// that is not a JSON object, an entry without a valid dtype/shape/data_offsets, a dtype
// other than F32/I32/BF16, a shape whose byte size differs from its offsets, offsets
// past the data, overlapping or leaving gaps, and bytes after the last tensor.
absl::StatusOr<SafetensorsContents> ReadSafetensors(const std::string& path);

// Copies each tensor of `loaded` into the tensor of the same name in `destination`
// (e.g. a model's parameters, whose storage is overwritten in place). A shape or dtype
// mismatch is always an error; in strict mode so is a destination name missing from
// `loaded` or a loaded name the destination does not have. Every problem is listed in
// one message, and on error nothing is copied.
absl::Status LoadIntoNamed(const NamedTensors& destination, const NamedTensors& loaded,
                           bool strict);

// The problems LoadIntoNamed would report, one entry each ("missing \"x\"", "unexpected
// \"y\"", "\"z\": expected f32[2], got f32[3]", ...); empty when loading would succeed.
std::vector<std::string> NamedLoadProblems(const NamedTensors& destination,
                                           const NamedTensors& loaded, bool strict);

// Copies the elements of `source` into `destination` (same dtype and shape; either may
// be a strided view). Not recorded by autograd.
void CopyTensorData(const Tensor& destination, const Tensor& source);

}  // namespace attnlab
