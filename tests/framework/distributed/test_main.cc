// main() of the distributed tests: one binary that runs as a plain process (one rank,
// ctest label `unit`) and under `mpirun -np 2` (label `mpi`). Every rank runs every test;
// tests that need another rank count skip. A collective that a failed assertion on one
// rank left unmatched fails on the other after the timeout below instead of hanging.
#include <cstdio>
#include <memory>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/framework/distributed/shared_communicator.h"

namespace attnlab::distributed::testing {
namespace {
std::unique_ptr<Communicator> shared_communicator;
}

Communicator& SharedCommunicator() { return *shared_communicator; }

}  // namespace attnlab::distributed::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  attnlab::distributed::CommunicatorOptions options;
  options.collective_timeout = absl::Seconds(60);
  auto communicator = attnlab::distributed::Communicator::Create(options);
  if (!communicator.ok()) {
    std::fprintf(stderr, "distributed tests: %s\n", communicator.status().ToString().c_str());
    return 1;
  }
  attnlab::distributed::testing::shared_communicator = *std::move(communicator);
  const int result = RUN_ALL_TESTS();
  attnlab::distributed::testing::shared_communicator.reset();  // finalises MPI
  return result;
}
