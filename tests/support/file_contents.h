// A whole file's bytes, read and written: how tests set up input files and look at what
// a run wrote.
//
//   WriteFile(directory_ / "a.toml", "[model]\n");
//   EXPECT_EQ(ReadFile(directory_ / "run" / "samples.txt"), expected);
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace attnlab::testing {

// The file's bytes; "" when it is missing or unreadable.
std::string ReadFile(const std::filesystem::path& path);

// Replaces the file with `bytes`; a write that fails fails the running test.
void WriteFile(const std::filesystem::path& path, std::string_view bytes);

}  // namespace attnlab::testing
