// UTF-8 validation. TOML configs, JSON checkpoint headers and vocabularies must be
// well-formed UTF-8, so every text that reaches them from a user is checked first.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace attnlab {

// The byte offset of the first byte of `text` that does not start a well-formed UTF-8
// character (overlong forms, surrogates and code points past U+10FFFF included), or
// nullopt if `text` is valid UTF-8.
std::optional<size_t> FirstInvalidUtf8(std::string_view text);

}  // namespace attnlab
