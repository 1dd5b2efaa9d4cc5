#include "framework/io/safetensors.h"

#include <sys/stat.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "framework/io/atomic_file.h"

namespace attnlab {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; attnlab writes it from memory as is");

// ordered_json keeps the header's keys in file order, so tensors that share an offset
// (empty ones) come back in the order they were written.
using Json = nlohmann::ordered_json;

constexpr absl::string_view kMetadataKey = "__metadata__";
// The reference implementation's limit; a larger header is a damaged or hostile file.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// Deepest nesting a valid header has, counting the top object as 0: tensor entries and
// __metadata__ are 1, shape and data_offsets arrays 2.
constexpr int kMaxJsonDepth = 2;
constexpr size_t kMaxRank = 64;

// Thrown from the JSON parser's callback to stop parsing a header that cannot be valid.
struct HeaderRejected {
  std::string reason;
};

// ---- dtypes ------------------------------------------------------------------------

absl::string_view SafetensorsDTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "F32";
    case DType::kI32:
      return "I32";
    case DType::kBF16:
      return "BF16";
  }
  return "?";
}

std::optional<DType> ParseSafetensorsDType(absl::string_view name) {
  if (name == "F32") return DType::kF32;
  if (name == "I32") return DType::kI32;
  if (name == "BF16") return DType::kBF16;
  return std::nullopt;
}

// Valid in the format but not representable in attnlab's tensors.
bool IsOtherSafetensorsDType(absl::string_view name) {
  static constexpr absl::string_view kOthers[] = {
      "BOOL", "U8",      "I8",      "U16",     "I16", "F16",     "U32",     "U64", "I64",
      "F64",  "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4",  "F6_E2M3", "F6_E3M2", "C64"};
  return std::find(std::begin(kOthers), std::end(kOthers), name) != std::end(kOthers);
}

// ---- strided copies ----------------------------------------------------------------

// Copies `shape`'s elements between two strided layouts (strides in elements).
void CopyStrided(char* destination, const Strides& destination_strides, const char* source,
                 const Strides& source_strides, const Shape& shape, size_t element_size) {
  const int64_t count = NumElements(shape);
  if (count == 0) return;
  const int64_t rank = static_cast<int64_t>(shape.size());
  Shape index(rank, 0);
  for (int64_t i = 0; i < count; ++i) {
    int64_t destination_offset = 0, source_offset = 0;
    for (int64_t d = 0; d < rank; ++d) {
      destination_offset += index[d] * destination_strides[d];
      source_offset += index[d] * source_strides[d];
    }
    std::memcpy(destination + destination_offset * element_size,
                source + source_offset * element_size, element_size);
    for (int64_t d = rank - 1; d >= 0; --d) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
}

size_t ByteSize(const Tensor& tensor) { return tensor.numel() * ElementSize(tensor.dtype()); }

std::string Quoted(absl::string_view name) { return absl::StrCat("\"", name, "\""); }

// ---- writing -----------------------------------------------------------------------

// The header: JSON padded with spaces to a multiple of 8 bytes, so the data that follows
// the 8-byte length starts 8-byte aligned (as the reference implementation writes it).
absl::StatusOr<std::string> BuildHeader(const std::string& path, const NamedTensors& tensors,
                                        const SafetensorsMetadata& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) {
    Json metadata_json = Json::object();
    for (const auto& [key, value] : metadata) metadata_json[key] = value;
    header[std::string(kMetadataKey)] = std::move(metadata_json);
  }
  absl::flat_hash_set<absl::string_view> names;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name.empty() || name == kMetadataKey) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": cannot write a tensor named ", Quoted(name)));
    }
    if (!names.insert(name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor name ", Quoted(name), " appears twice"));
    }
    if (!tensor.defined()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor ", Quoted(name), " is undefined"));
    }
    Json shape = Json::array();
    for (int64_t extent : tensor.shape()) shape.push_back(extent);
    const uint64_t end = offset + ByteSize(tensor);
    Json entry = Json::object();
    entry["dtype"] = std::string(SafetensorsDTypeName(tensor.dtype()));
    entry["shape"] = std::move(shape);
    entry["data_offsets"] = Json::array({offset, end});
    header[name] = std::move(entry);
    offset = end;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const Json::exception& error) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": a tensor name or metadata string is not valid UTF-8 (", error.what(), ")"));
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

// ---- reading -----------------------------------------------------------------------

struct EntryInfo {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin;
  uint64_t end;
};

// Closes the file when reading returns.
struct FileCloser {
  void operator()(FILE* file) const { std::fclose(file); }
};
using FilePointer = std::unique_ptr<FILE, FileCloser>;

// A non-negative JSON integer, or nullopt.
std::optional<uint64_t> AsCount(const Json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0) return value.get<int64_t>();
  return std::nullopt;
}

// Parses one tensor entry of the header; `error` gets the reason on failure.
std::optional<EntryInfo> ParseEntry(const std::string& name, const Json& value, uint64_t data_size,
                                    std::string& error) {
  const std::string where = absl::StrCat("tensor ", Quoted(name));
  if (!value.is_object()) {
    error = absl::StrCat(where, ": expected an object, got ", value.dump());
    return std::nullopt;
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!value.contains(key)) {
      error = absl::StrCat(where, ": missing \"", key, "\"");
      return std::nullopt;
    }
  }
  EntryInfo entry;
  entry.name = name;

  const Json& dtype = value["dtype"];
  if (!dtype.is_string()) {
    error = absl::StrCat(where, ": dtype must be a string, got ", dtype.dump());
    return std::nullopt;
  }
  const std::string dtype_name = dtype.get<std::string>();
  const std::optional<DType> parsed_dtype = ParseSafetensorsDType(dtype_name);
  if (!parsed_dtype.has_value()) {
    error =
        absl::StrCat(where, ": ", IsOtherSafetensorsDType(dtype_name) ? "unsupported" : "unknown",
                     " dtype ", Quoted(dtype_name), " (attnlab reads F32, I32 and BF16)");
    return std::nullopt;
  }
  entry.dtype = *parsed_dtype;

  const Json& shape = value["shape"];
  if (!shape.is_array() || shape.size() > kMaxRank) {
    error = absl::StrCat(where, ": shape must be an array of at most ", kMaxRank,
                         " non-negative integers, got ", shape.dump());
    return std::nullopt;
  }
  uint64_t bytes = ElementSize(entry.dtype);
  bool overflow = false;
  for (const Json& extent : shape) {
    const std::optional<uint64_t> count = AsCount(extent);
    if (!count.has_value() || *count > static_cast<uint64_t>(INT64_MAX)) {
      error = absl::StrCat(where, ": shape must hold non-negative integers, got ", shape.dump());
      return std::nullopt;
    }
    overflow = overflow || __builtin_mul_overflow(bytes, *count, &bytes);
    entry.shape.push_back(static_cast<int64_t>(*count));
  }

  const Json& offsets = value["data_offsets"];
  std::optional<uint64_t> begin, end;
  if (offsets.is_array() && offsets.size() == 2) {
    begin = AsCount(offsets[0]);
    end = AsCount(offsets[1]);
  }
  if (!begin.has_value() || !end.has_value() || *begin > *end) {
    error = absl::StrCat(where, ": data_offsets must be [begin, end] with 0 <= begin <= end, got ",
                         offsets.dump());
    return std::nullopt;
  }
  if (*end > data_size) {
    error = absl::StrCat(where, ": data_offsets ", offsets.dump(),
                         " are out of range (the data is ", data_size, " bytes)");
    return std::nullopt;
  }
  if (overflow || bytes != *end - *begin) {
    error = absl::StrCat(where, ": shape ", shape.dump(), " of dtype ", dtype_name, " needs ",
                         overflow ? std::string("more than 2^64") : absl::StrCat(bytes),
                         " bytes but data_offsets ", offsets.dump(), " hold ", *end - *begin);
    return std::nullopt;
  }
  entry.begin = *begin;
  entry.end = *end;
  return entry;
}

}  // namespace

// ---- public ------------------------------------------------------------------------

absl::Status WriteSafetensors(const std::string& path, const NamedTensors& tensors,
                              const SafetensorsMetadata& metadata) {
  ASSIGN_OR_RETURN(const std::string header, BuildHeader(path, tensors, metadata));
  AtomicFile file(path);
  RETURN_IF_ERROR(file.Open());
  unsigned char length[8];
  const uint64_t header_size = header.size();
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(header_size >> (8 * i));
  RETURN_IF_ERROR(file.Write(length, sizeof(length)));
  RETURN_IF_ERROR(file.Write(header.data(), header.size()));
  std::vector<char> gathered;  // for strided views only
  for (const auto& [name, tensor] : tensors) {
    const size_t bytes = ByteSize(tensor);
    if (bytes == 0) continue;
    if (tensor.is_contiguous()) {
      RETURN_IF_ERROR(file.Write(tensor.raw_data(), bytes));
    } else {
      gathered.resize(bytes);
      CopyStrided(gathered.data(), ContiguousStrides(tensor.shape()),
                  static_cast<const char*>(tensor.raw_data()), tensor.strides(), tensor.shape(),
                  ElementSize(tensor.dtype()));
      RETURN_IF_ERROR(file.Write(gathered.data(), bytes));
    }
  }
  return file.Commit();
}

absl::StatusOr<SafetensorsContents> ReadSafetensors(const std::string& path) {
  auto corrupt = [&path](auto&&... parts) {
    return absl::DataLossError(absl::StrCat(path, ": not a valid safetensors file: ", parts...));
  };
  FilePointer file(std::fopen(path.c_str(), "rb"));
  if (file == nullptr) return ErrnoStatus(errno, path, "cannot open");
  struct stat info;
  if (::fstat(::fileno(file.get()), &info) != 0) return ErrnoStatus(errno, path, "cannot stat");
  if (!S_ISREG(info.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  const uint64_t file_size = static_cast<uint64_t>(info.st_size);
  if (file_size < 8) {
    return corrupt("the file is ", file_size, " bytes, too short for the 8-byte header length");
  }
  unsigned char length[8];
  if (std::fread(length, 1, 8, file.get()) != 8) return ErrnoStatus(errno, path, "read failed");
  uint64_t header_size = 0;
  for (int i = 0; i < 8; ++i) header_size |= static_cast<uint64_t>(length[i]) << (8 * i);
  if (header_size > kMaxHeaderBytes) {
    return corrupt("declared header length ", header_size, " bytes exceeds the limit of ",
                   kMaxHeaderBytes, " bytes");
  }
  if (header_size > file_size - 8) {
    return corrupt("declared header length ", header_size, " bytes runs past the end of the file (",
                   file_size, " bytes)");
  }
  std::string header_text(header_size, '\0');
  if (header_size > 0 &&
      std::fread(header_text.data(), 1, header_size, file.get()) != header_size) {
    return ErrnoStatus(errno, path, "read failed");
  }
  const uint64_t data_size = file_size - 8 - header_size;

  // Parse, rejecting duplicate names (the DOM would keep only the last) and, as soon as
  // they appear, structures no header has (nesting, long arrays), whose DOM a hostile
  // file could make many times larger than itself.
  std::string duplicate;
  int64_t array_elements = 0;
  absl::flat_hash_set<std::string> top_level_keys;
  const Json::parser_callback_t callback = [&](int depth, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::key:
        if (depth == 1 && !top_level_keys.insert(parsed.get<std::string>()).second &&
            duplicate.empty()) {
          duplicate = parsed.get<std::string>();
        }
        break;
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        if (depth > kMaxJsonDepth) {
          throw HeaderRejected{"the header nests deeper than a safetensors header does"};
        }
        array_elements = 0;
        break;
      case Json::parse_event_t::value:
        if (depth > kMaxJsonDepth && ++array_elements > static_cast<int64_t>(kMaxRank)) {
          throw HeaderRejected{absl::StrCat("the header has an array longer than ", kMaxRank)};
        }
        break;
      default:
        break;
    }
    return true;
  };
  Json header;
  try {
    header = Json::parse(header_text, callback);
  } catch (const HeaderRejected& rejected) {
    return corrupt(rejected.reason);
  } catch (const Json::exception& error) {
    // "[json.exception.parse_error.101] parse error at ..." -> "parse error at ..."
    absl::string_view message = error.what();
    if (const size_t bracket = message.find("] "); bracket != absl::string_view::npos) {
      message.remove_prefix(bracket + 2);
    }
    return corrupt("the header is not valid JSON: ", message);
  }
  if (!header.is_object()) return corrupt("the header is not a JSON object");
  if (!duplicate.empty()) return corrupt("the header names ", Quoted(duplicate), " twice");

  SafetensorsContents contents;
  std::vector<EntryInfo> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == kMetadataKey) {
      if (!value.is_object()) return corrupt("__metadata__ must be an object of strings");
      for (const auto& [key, item] : value.items()) {
        if (!item.is_string()) {
          return corrupt("__metadata__ value of ", Quoted(key), " is not a string: ", item.dump());
        }
        contents.metadata[key] = item.get<std::string>();
      }
      continue;
    }
    std::string error;
    std::optional<EntryInfo> entry = ParseEntry(name, value, data_size, error);
    if (!entry.has_value()) return corrupt(error);
    entries.push_back(std::move(*entry));
  }

  // The tensors must tile the data exactly: no overlap, no gap, nothing after the last.
  std::stable_sort(entries.begin(), entries.end(), [](const EntryInfo& a, const EntryInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const EntryInfo& entry = entries[i];
    if (entry.begin < covered) {
      return corrupt("tensor ", Quoted(entry.name), " at bytes [", entry.begin, ", ", entry.end,
                     ") overlaps tensor ", Quoted(entries[i - 1].name), " at [",
                     entries[i - 1].begin, ", ", entries[i - 1].end, ")");
    }
    if (entry.begin > covered) {
      return corrupt("bytes [", covered, ", ", entry.begin, ") before tensor ", Quoted(entry.name),
                     " belong to no tensor");
    }
    covered = entry.end;
  }
  if (covered != data_size) {
    return corrupt(data_size - covered, " trailing bytes after the last tensor (the data is ",
                   data_size, " bytes, the tensors cover ", covered, ")");
  }

  contents.tensors.reserve(entries.size());
  for (const EntryInfo& entry : entries) {
    Tensor tensor = Tensor::Empty(entry.shape, entry.dtype);
    const size_t bytes = entry.end - entry.begin;
    if (bytes > 0 && std::fread(tensor.raw_data(), 1, bytes, file.get()) != bytes) {
      return std::ferror(file.get()) ? ErrnoStatus(errno, path, "read failed")
                                     : corrupt("the file ended while reading ", Quoted(entry.name));
    }
    contents.tensors.emplace_back(entry.name, std::move(tensor));
  }
  return contents;
}

void CopyTensorData(const Tensor& destination, const Tensor& source) {
  ATTNLAB_CHECK(destination.dtype() == source.dtype() && destination.shape() == source.shape(),
                "CopyTensorData: destination ", destination.Describe(), " and source ",
                source.Describe(), " differ");
  if (destination.numel() == 0) return;
  if (destination.is_contiguous() && source.is_contiguous()) {
    std::memmove(destination.raw_data(), source.raw_data(), ByteSize(source));
    return;
  }
  CopyStrided(static_cast<char*>(destination.raw_data()), destination.strides(),
              static_cast<const char*>(source.raw_data()), source.strides(), source.shape(),
              ElementSize(source.dtype()));
}

std::vector<std::string> NamedLoadProblems(const NamedTensors& destination,
                                           const NamedTensors& loaded, bool strict) {
  std::vector<std::string> missing, unexpected, mismatched;
  absl::flat_hash_map<absl::string_view, const Tensor*> destination_by_name;
  for (const auto& [name, tensor] : destination) destination_by_name.emplace(name, &tensor);
  absl::flat_hash_set<absl::string_view> loaded_names;
  for (const auto& [name, tensor] : loaded) {
    if (!loaded_names.insert(name).second) {
      mismatched.push_back(absl::StrCat(Quoted(name), " is given twice"));
      continue;
    }
    const auto found = destination_by_name.find(name);
    if (found == destination_by_name.end()) {
      if (strict) unexpected.push_back(absl::StrCat("unexpected ", Quoted(name)));
      continue;
    }
    const Tensor& expected = *found->second;
    if (!tensor.defined() || tensor.dtype() != expected.dtype() ||
        tensor.shape() != expected.shape()) {
      mismatched.push_back(absl::StrCat(Quoted(name), ": expected ", expected.Describe(), ", got ",
                                        tensor.Describe()));
    }
  }
  if (strict) {
    for (const auto& [name, tensor] : destination) {
      if (!loaded_names.contains(name)) missing.push_back(absl::StrCat("missing ", Quoted(name)));
    }
  }
  std::vector<std::string> problems = std::move(missing);
  problems.insert(problems.end(), unexpected.begin(), unexpected.end());
  problems.insert(problems.end(), mismatched.begin(), mismatched.end());
  return problems;
}

absl::Status LoadIntoNamed(const NamedTensors& destination, const NamedTensors& loaded,
                           bool strict) {
  const std::vector<std::string> problems = NamedLoadProblems(destination, loaded, strict);
  if (!problems.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot load tensors by name (", problems.size(),
        problems.size() == 1 ? " problem): " : " problems): ", absl::StrJoin(problems, "; ")));
  }
  absl::flat_hash_map<absl::string_view, const Tensor*> loaded_by_name;
  for (const auto& [name, tensor] : loaded) loaded_by_name.emplace(name, &tensor);
  for (const auto& [name, tensor] : destination) {
    const auto found = loaded_by_name.find(name);
    if (found != loaded_by_name.end()) CopyTensorData(tensor, *found->second);
  }
  return absl::OkStatus();
}

}  // namespace attnlab
