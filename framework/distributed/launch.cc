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

}  // namespace attnlab::distributed
