// safetensors: round trips, byte-exact agreement with the format, one clear error (and no
// crash) for each kind of damaged file, atomic replacement when a write fails, and
// loading by name.
#include "framework/io/safetensors.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/file_contents.h"
#include "tests/support/gradcheck.h"
#include "tests/support/temp_dir.h"

namespace attnlab {
namespace {

using testing::AllClose;
using testing::ReadFile;
using testing::WriteFile;

// Each test gets a fresh directory (directory_), removed afterwards.
class SafetensorsTest : public attnlab::testing::TempDirTest {
 protected:
  std::string Path(const std::string& name) const { return (directory_ / name).string(); }

  // Names of the files in the test directory (to see that no temporary file remains).
  std::vector<std::string> Files() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(directory_)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }
};

std::string LittleEndian64(uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  return bytes;
}

// A file from a header text and `data_bytes` zero bytes of data.
std::string FileWith(const std::string& header, size_t data_bytes) {
  return LittleEndian64(header.size()) + header + std::string(data_bytes, '\0');
}

// ---- Round trips -------------------------------------------------------------------

TEST_F(SafetensorsTest, RoundTripKeepsNamesOrderValuesAndMetadata) {
  const Tensor matrix =
      Tensor::FromFloats(std::vector<float>{1, -2, 3.5f, 0, 1e-8f, -1e8f}, {2, 3});
  const Tensor ids = Tensor::FromInts(std::vector<int32_t>{7, -1, 2147483647, 0}, {4});
  const Tensor scalar = Tensor::Scalar(0.25f);
  const Tensor empty = Tensor::Zeros({0, 3});
  Tensor half = Tensor::Empty({3}, DType::kBF16);
  const uint16_t half_bits[] = {0x3f80, 0xc000, 0x7f80};  // 1.0, -2.0, +inf in bf16
  std::memcpy(half.raw_data(), half_bits, sizeof(half_bits));
  const NamedTensors tensors = {{"encoder.layers.0.weight", matrix},
                                {"ids", ids},
                                {"scalar", scalar},
                                {"empty", empty},
                                {"half", half}};
  const SafetensorsMetadata metadata = {{"format", "attnlab-1"},
                                        {"config", "[model]\nd_model = 128\n\"quoted\" \\ ü"}};
  const std::string path = Path("model.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, tensors, metadata).ok());

  absl::StatusOr<SafetensorsContents> read = ReadSafetensors(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->metadata, metadata);
  ASSERT_EQ(read->tensors.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(read->tensors[i].first, tensors[i].first);
    EXPECT_EQ(read->tensors[i].second.Describe(), tensors[i].second.Describe());
  }
  EXPECT_EQ(read->tensors[0].second.ToFloats(), matrix.ToFloats());
  EXPECT_EQ(read->tensors[1].second.ToInts(), ids.ToInts());
  EXPECT_EQ(read->tensors[2].second.Describe(), "f32[]");
  EXPECT_EQ(read->tensors[2].second.item(), 0.25f);
  EXPECT_EQ(read->tensors[3].second.numel(), 0);
  EXPECT_EQ(std::memcmp(read->tensors[4].second.raw_data(), half_bits, sizeof(half_bits)), 0);

  // The header is padded with spaces to a multiple of 8, so the data is 8-byte aligned.
  const std::string bytes = ReadFile(path);
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  EXPECT_EQ(header_size % 8, 0u);
  EXPECT_EQ(Files(), std::vector<std::string>{"model.safetensors"});  // no temporary left
}

TEST_F(SafetensorsTest, StridedViewsAreWrittenInRowMajorOrder) {
  const Tensor wide = Tensor::FromFloats(std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7}, {2, 4});
  const Tensor window = wide.narrow(1, 1, 2);  // [[1, 2], [5, 6]], not contiguous
  ASSERT_FALSE(window.is_contiguous());
  const std::string path = Path("view.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, {{"window", window}}).ok());
  absl::StatusOr<SafetensorsContents> read = ReadSafetensors(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->tensors[0].second.shape(), (Shape{2, 2}));
  EXPECT_EQ(read->tensors[0].second.ToFloats(), (std::vector<float>{1, 2, 5, 6}));
}

TEST_F(SafetensorsTest, WrittenBytesAreExactlyTheFormat) {
  // {"x": f32[2] = [1.5, -2.0]}, metadata {"k": "v"}. The header JSON is 79 bytes, padded
  // with one space to 80; 1.5f = 0x3fc00000, -2.0f = 0xc0000000, stored little-endian.
  const std::string path = Path("golden.safetensors");
  ASSERT_TRUE(WriteSafetensors(path,
                               {{"x", Tensor::FromFloats(std::vector<float>{1.5f, -2.0f}, {2})}},
                               {{"k", "v"}})
                  .ok());
  const std::string header =
      R"({"__metadata__":{"k":"v"},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} )";
  ASSERT_EQ(header.size(), 80u);
  const std::string expected = std::string("\x50\0\0\0\0\0\0\0", 8) + header +
                               std::string("\x00\x00\xc0\x3f\x00\x00\x00\xc0", 8);
  EXPECT_EQ(ReadFile(path), expected);
}

TEST_F(SafetensorsTest, ReadsAFileWrittenByHand) {
  // A 107-byte header without padding (readers must not require it), data in the
  // opposite order of the header's keys, and no metadata:
  //   x: F32 [2] at [4, 12) = 1.5, -2.0;  n: I32 [] at [0, 4) = 7
  const std::string header = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},)"
                             R"("n":{"dtype":"I32","shape":[],"data_offsets":[0,4]}})";
  ASSERT_EQ(header.size(), 107u);
  std::string bytes;
  bytes += std::string("\x6b\x00\x00\x00\x00\x00\x00\x00", 8);  // 107, little-endian
  bytes += header;
  bytes += std::string("\x07\x00\x00\x00", 4);                  // n = 7
  bytes += std::string("\x00\x00\xc0\x3f\x00\x00\x00\xc0", 8);  // x = 1.5, -2.0
  const std::string path = Path("by_hand.safetensors");
  WriteFile(path, bytes);

  absl::StatusOr<SafetensorsContents> read = ReadSafetensors(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(read->metadata.empty());
  ASSERT_EQ(read->tensors.size(), 2u);
  EXPECT_EQ(read->tensors[0].first, "n");  // in data order
  EXPECT_EQ(read->tensors[0].second.Describe(), "i32[]");
  EXPECT_EQ(read->tensors[0].second.ToInts(), std::vector<int32_t>{7});
  EXPECT_EQ(read->tensors[1].first, "x");
  EXPECT_EQ(read->tensors[1].second.ToFloats(), (std::vector<float>{1.5f, -2.0f}));
}

// ---- Damaged files -----------------------------------------------------------------

struct CorruptionCase {
  const char* name;
  std::string bytes;
  const char* expected;  // a phrase the error must contain
};

// A shape of 100 ones: more dimensions than any tensor has.
std::string LongShapeHeader() {
  std::string shape = "1";
  for (int i = 1; i < 100; ++i) shape += ",1";
  return R"({"x":{"dtype":"F32","shape":[)" + shape + R"(],"data_offsets":[0,4]}})";
}

// A valid one-tensor header: x, F32 [3], 12 bytes.
const char kValidHeader[] = R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})";

std::vector<CorruptionCase> CorruptionCases() {
  const std::string valid = FileWith(kValidHeader, 12);
  return {
      {"Empty", "", "too short for the 8-byte header length"},
      {"ShorterThanTheLength", "\x10\x00\x00", "too short for the 8-byte header length"},
      {"TruncatedData", valid.substr(0, valid.size() - 5), "out of range"},
      {"TruncatedHeader", valid.substr(0, 30), "runs past the end of the file"},
      {"HeaderLengthBeyondFile", LittleEndian64(1000) + "{}", "runs past the end of the file"},
      {"HugeHeaderLength", LittleEndian64(uint64_t{1} << 62) + "{}", "exceeds the limit"},
      {"HeaderLengthAllOnes", LittleEndian64(~uint64_t{0}) + "{}", "exceeds the limit"},
      {"BadJson", FileWith(R"({"x":{"dtype":"F32",)", 0), "not valid JSON"},
      {"BinaryGarbage", FileWith(std::string("\xff\xfe\x00\x01", 4), 0), "not valid JSON"},
      {"JsonNotAnObject", FileWith("[1, 2, 3]", 0), "not a JSON object"},
      {"TrailingGarbageAfterJson", FileWith("{}xyz", 0), "not valid JSON"},
      {"OffsetsOutOfRange",
       FileWith(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})", 8), "out of range"},
      {"OffsetsReversed", FileWith(R"({"x":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", 8),
       "0 <= begin <= end"},
      {"NegativeOffset", FileWith(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", 4),
       "0 <= begin <= end"},
      {"UnknownDType", FileWith(R"({"x":{"dtype":"Q7","shape":[3],"data_offsets":[0,12]}})", 12),
       "unknown dtype \"Q7\""},
      {"UnsupportedDType",
       FileWith(R"({"x":{"dtype":"F16","shape":[6],"data_offsets":[0,12]}})", 12),
       "unsupported dtype \"F16\""},
      {"DTypeNotAString", FileWith(R"({"x":{"dtype":4,"shape":[3],"data_offsets":[0,12]}})", 12),
       "dtype must be a string"},
      {"ShapeBytesMismatch",
       FileWith(R"({"x":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", 12),
       "needs 16 bytes but data_offsets [0,12] hold 12"},
      {"ShapeOverflow",
       FileWith(R"({"x":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,12]}})",
                12),
       "more than 2^64"},
      {"NegativeExtent",
       FileWith(R"({"x":{"dtype":"F32","shape":[-3],"data_offsets":[0,12]}})", 12),
       "non-negative integers"},
      {"FractionalExtent",
       FileWith(R"({"x":{"dtype":"F32","shape":[1.5],"data_offsets":[0,12]}})", 12),
       "non-negative integers"},
      {"MissingShape", FileWith(R"({"x":{"dtype":"F32","data_offsets":[0,12]}})", 12),
       "missing \"shape\""},
      {"EntryNotAnObject", FileWith(R"({"x":[1,2]})", 0), "expected an object"},
      {"Overlapping",
       FileWith(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                12),
       "overlaps"},
      {"Gap",
       FileWith(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                12),
       "belong to no tensor"},
      {"TrailingBytes", FileWith(kValidHeader, 16), "4 trailing bytes"},
      {"DuplicateName",
       FileWith(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                R"("x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                8),
       "\"x\" twice"},
      {"DeepNesting", FileWith(std::string(100000, '[') + std::string(100000, ']'), 0),
       "nests deeper"},
      {"LongArray", FileWith(LongShapeHeader(), 4), "array longer than 64"},
      {"MetadataNotStrings", FileWith(R"({"__metadata__":{"step":12}})", 0), "is not a string"},
  };
}

class SafetensorsHeaderTest : public ::testing::TestWithParam<CorruptionCase> {};

TEST_P(SafetensorsHeaderTest, RejectedWithOneClearLine) {
  const CorruptionCase& c = GetParam();
  const std::string path = ::testing::TempDir() + "/corrupt_" + c.name + ".safetensors";
  WriteFile(path, c.bytes);
  const absl::StatusOr<SafetensorsContents> read = ReadSafetensors(path);
  std::remove(path.c_str());
  ASSERT_FALSE(read.ok()) << c.name;
  const std::string message(read.status().message());
  EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << "the error must start with the path: " << message;
  EXPECT_NE(message.find(c.expected), std::string::npos)
      << "expected '" << c.expected << "' in: " << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(Safetensors, SafetensorsHeaderTest, ::testing::ValuesIn(CorruptionCases()),
                         [](const ::testing::TestParamInfo<CorruptionCase>& info) {
                           return std::string(info.param.name);
                         });

TEST_F(SafetensorsTest, MissingFileAndDirectoryAreNotFound) {
  const absl::StatusOr<SafetensorsContents> missing = ReadSafetensors(Path("absent.safetensors"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(Path("absent.safetensors")), std::string::npos);
  const absl::StatusOr<SafetensorsContents> directory = ReadSafetensors(directory_.string());
  ASSERT_FALSE(directory.ok());
  EXPECT_NE(directory.status().message().find("not a regular file"), std::string::npos);
}

// ---- Atomic writes -----------------------------------------------------------------

class SafetensorsAtomicWriteTest : public SafetensorsTest {
 protected:
  void SetUp() override {
    SafetensorsTest::SetUp();
    path_ = Path("checkpoint.safetensors");
    ASSERT_TRUE(WriteSafetensors(path_, {{"w", Tensor::FromFloats(std::vector<float>{1, 2}, {2})}},
                                 {{"step", "100"}})
                    .ok());
    original_bytes_ = ReadFile(path_);
  }

  // The old checkpoint reads back unchanged and nothing else is in the directory.
  void ExpectOriginalIntact() {
    EXPECT_EQ(ReadFile(path_), original_bytes_);
    absl::StatusOr<SafetensorsContents> read = ReadSafetensors(path_);
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(read->metadata.at("step"), "100");
    EXPECT_EQ(Files(), std::vector<std::string>{"checkpoint.safetensors"});
  }

  std::string path_;
  std::string original_bytes_;
};

TEST_F(SafetensorsAtomicWriteTest, FailureMidWriteLeavesTheOldFile) {
  // A file-size limit makes the write fail part way through the data (EFBIG), as a full
  // disk would. Root is not exempt from RLIMIT_FSIZE.
  rlimit saved;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  struct sigaction ignore = {}, previous = {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGXFSZ, &ignore, &previous), 0);
  rlimit limited = saved;
  limited.rlim_cur = 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limited), 0);
  const absl::Status status =
      WriteSafetensors(path_, {{"w", Tensor::Zeros({1 << 18})}}, {{"step", "200"}});
  ::setrlimit(RLIMIT_FSIZE, &saved);
  ::sigaction(SIGXFSZ, &previous, nullptr);

  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(path_), std::string::npos) << status;
  ExpectOriginalIntact();
}

TEST_F(SafetensorsAtomicWriteTest, FailedRenameLeavesNoTemporaryFile) {
  // The destination is a non-empty directory: everything succeeds up to the rename.
  const std::string target = Path("occupied");
  ASSERT_EQ(::mkdir(target.c_str(), 0755), 0);
  WriteFile(target + "/keep", "x");
  const absl::Status status = WriteSafetensors(target, {{"w", Tensor::Zeros({4})}});
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("cannot replace"), std::string::npos) << status;
  EXPECT_EQ(ReadFile(target + "/keep"), "x");
  EXPECT_EQ(Files(), (std::vector<std::string>{"checkpoint.safetensors", "occupied"}));
  std::filesystem::remove_all(target);
  ExpectOriginalIntact();
}

TEST_F(SafetensorsAtomicWriteTest, UnwritableDirectoryLeavesTheOldFile) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  ASSERT_EQ(::chmod(directory_.c_str(), 0555), 0);
  const absl::Status status = WriteSafetensors(path_, {{"w", Tensor::Zeros({4})}});
  ::chmod(directory_.c_str(), 0755);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  ExpectOriginalIntact();
}

TEST_F(SafetensorsAtomicWriteTest, InvalidTensorsAreRejectedBeforeTouchingDisk) {
  const Tensor w = Tensor::Zeros({2});
  for (const NamedTensors& tensors :
       {NamedTensors{{"w", w}, {"w", w}}, NamedTensors{{"__metadata__", w}}, NamedTensors{{"", w}},
        NamedTensors{{"w", Tensor()}}}) {
    const absl::Status status = WriteSafetensors(path_, tensors);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  }
  ExpectOriginalIntact();
}

TEST_F(SafetensorsTest, WriteIntoMissingDirectoryFails) {
  const std::string path = Path("no/such/dir/model.safetensors");
  const absl::Status status = WriteSafetensors(path, {{"w", Tensor::Zeros({2})}});
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_NE(status.message().find(path), std::string::npos) << status;
  EXPECT_TRUE(Files().empty());
}

// ---- LoadIntoNamed -----------------------------------------------------------------

TEST(SafetensorsLoadIntoNamedTest, CopiesIntoTheDestinationStorage) {
  const Tensor weight = Tensor::Zeros({2, 2});
  const Tensor bias = Tensor::Zeros({2});
  const Tensor weight_before = weight;  // same handle: the storage is written in place
  const NamedTensors destination = {{"linear.weight", weight}, {"linear.bias", bias}};
  const NamedTensors loaded = {
      {"linear.bias", Tensor::FromFloats(std::vector<float>{5, 6}, {2})},
      {"linear.weight", Tensor::FromFloats(std::vector<float>{1, 2, 3, 4}, {2, 2})}};
  ASSERT_TRUE(LoadIntoNamed(destination, loaded, /*strict=*/true).ok());
  EXPECT_EQ(weight_before.ToFloats(), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(bias.ToFloats(), (std::vector<float>{5, 6}));
}

TEST(SafetensorsLoadIntoNamedTest, CopiesIntoStridedViews) {
  const Tensor wide = Tensor::Zeros({2, 4});
  const NamedTensors destination = {{"window", wide.narrow(1, 1, 2)}};
  ASSERT_TRUE(
      LoadIntoNamed(destination,
                    {{"window", Tensor::FromFloats(std::vector<float>{1, 2, 3, 4}, {2, 2})}}, true)
          .ok());
  EXPECT_EQ(wide.ToFloats(), (std::vector<float>{0, 1, 2, 0, 0, 3, 4, 0}));
}

TEST(SafetensorsLoadIntoNamedTest, StrictListsEveryProblemAndCopiesNothing) {
  const Tensor a = Tensor::Zeros({2}), b = Tensor::Zeros({3, 4}), c = Tensor::Zeros({1}),
               d = Tensor::Zeros({2}, DType::kI32);
  const NamedTensors destination = {{"a", a}, {"b", b}, {"c", c}, {"d", d}};
  const NamedTensors loaded = {{"a", Tensor::Full({2}, 1.0f)},
                               {"b", Tensor::Full({4, 3}, 1.0f)},
                               {"d", Tensor::Full({2}, 1.0f)},
                               {"extra.one", Tensor::Full({1}, 1.0f)},
                               {"extra.two", Tensor::Full({1}, 1.0f)}};
  const absl::Status status = LoadIntoNamed(destination, loaded, /*strict=*/true);
  ASSERT_FALSE(status.ok());
  const std::string message(status.message());
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  for (const char* expected :
       {"5 problems", "missing \"c\"", "unexpected \"extra.one\"", "unexpected \"extra.two\"",
        "\"b\": expected f32[3, 4], got f32[4, 3]", "\"d\": expected i32[2], got f32[2]"}) {
    EXPECT_NE(message.find(expected), std::string::npos)
        << "no '" << expected << "' in: " << message;
  }
  EXPECT_EQ(a.ToFloats(), (std::vector<float>{0, 0}));  // "a" matched but was not copied
}

TEST(SafetensorsLoadIntoNamedTest, NonStrictIgnoresMissingAndUnexpectedButNotShapes) {
  const Tensor a = Tensor::Zeros({2}), c = Tensor::Zeros({1});
  const NamedTensors destination = {{"a", a}, {"c", c}};
  ASSERT_TRUE(LoadIntoNamed(destination,
                            {{"a", Tensor::Full({2}, 3.0f)}, {"extra", Tensor::Full({5}, 1.0f)}},
                            /*strict=*/false)
                  .ok());
  EXPECT_EQ(a.ToFloats(), (std::vector<float>{3, 3}));
  EXPECT_EQ(c.ToFloats(), (std::vector<float>{0}));
  const absl::Status mismatch =
      LoadIntoNamed(destination, {{"a", Tensor::Full({3}, 1.0f)}}, /*strict=*/false);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.message().find("\"a\": expected f32[2], got f32[3]"), std::string::npos)
      << mismatch;
}

}  // namespace
}  // namespace attnlab
