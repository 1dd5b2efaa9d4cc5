// A hash of text that is the same on every platform and in every run (std::hash is
// neither): it decides which split an example lands in and names cached files.
#pragma once

#include <cstdint>
#include <string>

namespace attnlab::experiments {

// 64-bit FNV-1a of `text` with `seed` mixed into the offset basis, finished with
// splitmix64's mixer (FNV's low bits alone are poorly spread over short keys).
uint64_t StableHash(const std::string& text, uint64_t seed);

}  // namespace attnlab::experiments
