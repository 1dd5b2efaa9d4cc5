// What `attnlab decode` and `attnlab score` accept in a line: UTF-8 text whose sequences,
// tokenised, fit the model's positions. Each check says what is wrong without saying
// where; the caller prefixes FILE:LINE.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "tools/cli/model_loading.h"

namespace attnlab::cli {

// An error naming the first byte (of the line) that is not UTF-8.
absl::Status CheckUtf8Line(const std::string& line);

// A source text that the model can read: its token ids, eos included, no more than the
// model's positions (model.max_len for table-based positional encodings).
absl::Status CheckSourceFits(const std::string& source, const LoadedModel& loaded);

// A target text that the decoder can be fed: the same limit, for its ids with eos.
absl::Status CheckTargetFits(const std::string& target, const LoadedModel& loaded);

}  // namespace attnlab::cli
