#include "framework/distributed/launch.h"

#include <cstdlib>
#include <initializer_list>

namespace attnlab::distributed {

bool StartedByMpiLauncher() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"}) {
    if (std::getenv(name) != nullptr) return true;
  }
  return false;
}

bool IsMpiLauncherVariable(std::string_view entry) {
  for (const std::string_view prefix : {"OMPI_", "PMIX_", "PMI_"}) {
    if (entry.substr(0, prefix.size()) == prefix) return true;
  }
  return false;
}

}  // namespace attnlab::distributed
