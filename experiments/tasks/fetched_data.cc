#include "experiments/tasks/fetched_data.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace attnlab::experiments {

std::string FetchedDataDir(const Config& config, const std::string& data_set) {
  return (std::filesystem::path(config.task().data_dir) / data_set).string();
}

absl::StatusOr<std::string> ReadFetchedFile(const Config& config, const std::string& data_set,
                                            const std::string& file) {
  const std::string path =
      (std::filesystem::path(FetchedDataDir(config, data_set)) / file).string();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const std::string& data_dir = config.task().data_dir;
    // tools/fetch-data's default directory is the repository's data/, which is
    // task.data_dir's default when attnlab runs from the repository root.
    const std::string command = data_dir == "data" ? absl::StrCat("tools/fetch-data ", data_set)
                                                   : absl::StrCat("ATTNLAB_DATA_DIR=", data_dir,
                                                                  " tools/fetch-data ", data_set);
    return absl::NotFoundError(absl::StrCat(path, ": not found (task.data_dir = \"", data_dir,
                                            "\"); fetch it with `", command,
                                            "` from the repository root"));
  }
  std::stringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return contents.str();
}

}  // namespace attnlab::experiments
