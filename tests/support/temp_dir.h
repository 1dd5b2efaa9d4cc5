// A scratch directory for a test: <TempDir>/attnlab_<suite>_<test>_<pid>, emptied when it
// is made and removed (with everything in it) when it goes away. The process id keeps
// concurrent runs apart (ctest -j, other build directories); the test's name keeps the
// tests of one process apart.
//
//   class ConfigTest : public attnlab::testing::TempDirTest {};   // directory_ per test
//   TEST_F(ConfigTest, ...) { Write(directory_ / "a.toml", ...); }
//
//   static void SetUpTestSuite() {                                // one for a whole suite
//     directory_ = new attnlab::testing::ScratchDirectory("cli");
//   }
#pragma once

#include <filesystem>
#include <string>

#include "gtest/gtest.h"

namespace attnlab::testing {

class ScratchDirectory {
 public:
  // Named after the running test (suite and name).
  ScratchDirectory();
  // <TempDir>/attnlab_<name>_<pid>, e.g. for a directory a suite shares.
  explicit ScratchDirectory(const std::string& name);
  // Removes the directory, also when a test left parts of it unwritable.
  ~ScratchDirectory();
  ScratchDirectory(const ScratchDirectory&) = delete;
  ScratchDirectory& operator=(const ScratchDirectory&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::filesystem::path& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// A fixture whose every test gets a fresh scratch directory, `directory_`. A fixture
// with set-up of its own derives from it and finds the directory made in SetUp.
class TempDirTest : public ::testing::Test {
 protected:
  const ScratchDirectory scratch_;
  const std::filesystem::path directory_ = scratch_.path();
};

}  // namespace attnlab::testing
