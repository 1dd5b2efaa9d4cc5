// Where tools/fetch-data puts a data set, and the one clear error when it is not there.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "experiments/config/config.h"

namespace attnlab::experiments {

// task.data_dir/`data_set` (a relative task.data_dir is relative to the current
// directory; its default, "data", is the repository's data/ when run from the root).
std::string FetchedDataDir(const Config& config, const std::string& data_set);

// The contents of FetchedDataDir(config, data_set)/`file`. When it is missing, the error
// names the file and the command that fetches it (`tools/fetch-data <data_set>`).
absl::StatusOr<std::string> ReadFetchedFile(const Config& config, const std::string& data_set,
                                            const std::string& file);

}  // namespace attnlab::experiments
