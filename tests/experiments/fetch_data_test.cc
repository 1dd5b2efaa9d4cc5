// tools/fetch-data without the network: a corrupted local package (--from-file) fails the
// checksum with a clear message and writes nothing (no cache, no leftover work
// directory), also when an earlier cache exists (it stays as it was); a cache that
// matches its SHA256SUMS manifest is used as is; an unknown data set is an error.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "tests/support/file_contents.h"
#include "tests/support/temp_dir.h"

namespace attnlab {
namespace {

namespace fs = std::filesystem;

class FetchDataTest : public attnlab::testing::TempDirTest {
 protected:
  void SetUp() override { fs::create_directories(directory_ / "data"); }

  // Runs tools/fetch-data with ATTNLAB_DATA_DIR = directory_/data; returns the exit code
  // and puts stdout + stderr in output_.
  int Run(const std::string& arguments) {
    const fs::path log = directory_ / "log";
    const std::string command = "ATTNLAB_DATA_DIR='" + (directory_ / "data").string() + "' '" +
                                ATTNLAB_SOURCE_DIR "/tools/fetch-data' " + arguments + " >'" +
                                log.string() + "' 2>&1";
    const int status = std::system(command.c_str());
    output_ = attnlab::testing::ReadFile(log);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::string WriteFile(const std::string& name, const std::string& contents) {
    const fs::path path = directory_ / name;
    attnlab::testing::WriteFile(path, contents);
    return path.string();
  }

  // Entries of the data directory (the cache and any leftover work directory).
  int DataEntries() const {
    int count = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(directory_ / "data")) ++count;
    return count;
  }

  std::string output_;
};

TEST_F(FetchDataTest, CorruptedPackageFailsTheChecksumAndWritesNothing) {
  const std::string tarball = WriteFile("cmu-pronouncing-dictionary-3.0.0.tgz", "corrupted");
  EXPECT_EQ(Run("cmudict --from-file '" + tarball + "'"), 1) << output_;
  EXPECT_NE(output_.find("checksum mismatch"), std::string::npos) << output_;
  EXPECT_NE(output_.find("ca16ac157e95277ffe1ca105a5ca2c833a15626024f15711c2a425da367b68ce"),
            std::string::npos)
      << output_;
  EXPECT_FALSE(fs::exists(directory_ / "data" / "cmudict"));
  EXPECT_EQ(DataEntries(), 0);  // no work directory left behind
}

TEST_F(FetchDataTest, FailedRefetchLeavesTheOldCacheAsItWas) {
  // An invalid cache (its manifest does not match) is refetched; when the new package
  // fails its checksum, the old files stay untouched.
  fs::create_directories(directory_ / "data" / "de_en");
  WriteFile("data/de_en/de-en", "old contents\n");
  WriteFile("data/de_en/SHA256SUMS",
            "0000000000000000000000000000000000000000000000000000000000000000  de-en\n");
  const std::string deb = WriteFile("trans-de-en_1.9-6_all.deb", "corrupted");
  EXPECT_EQ(Run("de_en --from-file '" + deb + "'"), 1) << output_;
  EXPECT_NE(output_.find("does not match its manifest"), std::string::npos) << output_;
  EXPECT_NE(output_.find("checksum mismatch"), std::string::npos) << output_;
  std::ifstream in(directory_ / "data" / "de_en" / "de-en");
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "old contents");
  EXPECT_EQ(DataEntries(), 1);
}

TEST_F(FetchDataTest, ValidCacheIsUsedWithoutFetching) {
  fs::create_directories(directory_ / "data" / "cmudict");
  WriteFile("data/cmudict/index.js", "abc");
  // sha256("abc")
  WriteFile("data/cmudict/SHA256SUMS",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  index.js\n");
  // A corrupted --from-file would fail if it were looked at.
  const std::string tarball = WriteFile("bad.tgz", "corrupted");
  EXPECT_EQ(Run("cmudict --from-file '" + tarball + "'"), 0) << output_;
  EXPECT_NE(output_.find("already in"), std::string::npos) << output_;
}

TEST_F(FetchDataTest, UnknownDataSetAndHelp) {
  EXPECT_EQ(Run("wikipedia"), 1);
  EXPECT_NE(output_.find("unknown data set 'wikipedia' (known: cmudict, de_en)"), std::string::npos)
      << output_;
  EXPECT_EQ(Run("--help"), 0);
  EXPECT_NE(output_.find("usage: tools/fetch-data NAME"), std::string::npos) << output_;
}

}  // namespace
}  // namespace attnlab
