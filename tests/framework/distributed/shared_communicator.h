// The one Communicator of a distributed test binary. MPI can be initialised once per
// process, so the binary's main() creates it before the tests and destroys it after them
// (which finalises MPI); the tests share it.
#pragma once

#include "framework/distributed/communicator.h"

namespace attnlab::distributed::testing {

// The communicator main() created (never null while tests run).
Communicator& SharedCommunicator();

}  // namespace attnlab::distributed::testing
