#include "tests/support/temp_dir.h"

#include <unistd.h>

#include <algorithm>
#include <system_error>

namespace attnlab::testing {
namespace {

namespace fs = std::filesystem;

std::string CurrentTestName() {
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  if (test == nullptr) return "no_test";
  std::string name = std::string(test->test_suite_name()) + "_" + test->name();
  std::replace(name.begin(), name.end(), '/', '_');  // parameterised tests: Suite/0
  return name;
}

}  // namespace

ScratchDirectory::ScratchDirectory() : ScratchDirectory(CurrentTestName()) {}

ScratchDirectory::ScratchDirectory(const std::string& name)
    : path_(fs::path(::testing::TempDir()) /
            ("attnlab_" + name + "_" + std::to_string(::getpid()))) {
  std::error_code error;
  fs::remove_all(path_, error);  // left by a crashed earlier run of the same pid
  fs::create_directories(path_, error);
  EXPECT_FALSE(error) << path_ << ": " << error.message();
}

ScratchDirectory::~ScratchDirectory() {
  std::error_code error;
  if (fs::remove_all(path_, error) != static_cast<std::uintmax_t>(-1) && !error) return;
  // A test made a directory unreadable or unwritable (to provoke an error): give it back.
  fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, error);
  for (auto it = fs::recursive_directory_iterator(
           path_, fs::directory_options::skip_permission_denied, error);
       !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    if (it->is_directory(error)) {
      fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, error);
    }
  }
  fs::remove_all(path_, error);
}

}  // namespace attnlab::testing
