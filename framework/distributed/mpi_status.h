// MPI error codes as absl::Status, naming the rank: "rank 1 of 4: MPI_Ialltoallv
// (all_reduce of 1000 floats) failed: MPI_ERR_TRUNCATE: message truncated".
#pragma once

#include <string_view>

#include "absl/status/status.h"

namespace attnlab::distributed {

// OK for MPI_SUCCESS. Otherwise an Internal error whose message starts with the rank,
// then `call`, then `what` (the collective and its size), then MPI's error class and
// MPI's own description of `code`. Call only from a thread that may call MPI.
absl::Status MpiStatus(int code, int rank, int size, std::string_view call, std::string_view what);

}  // namespace attnlab::distributed
