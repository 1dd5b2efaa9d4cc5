// The environment a test's mpirun runs with, as a shell prefix.
#pragma once

#include <filesystem>
#include <string>

namespace attnlab::testing {

// CI and tools/check-fresh run as root, which Open MPI refuses unless both ALLOW
// variables say otherwise. And each job keeps its session directory under
// `session_base` (created here), one per test: two mpiruns that ctest -j starts at once
// race on the shared default, /tmp/ompi.HOST.UID, which one job's cleanup removes while
// the other creates its own in it ("mkdir ... File exists", then orte_init fails).
inline std::string MpirunEnvironment(const std::filesystem::path& session_base) {
  std::filesystem::create_directories(session_base);
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_orte_tmpdir_base='" +
         session_base.string() + "' ";
}

}  // namespace attnlab::testing
