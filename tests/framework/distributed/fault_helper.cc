// A two-rank program that fails on purpose, run under mpirun by fault_test.cc:
//   fault_helper kill      rank 1 SIGKILLs itself while both ranks are all-reducing
//   fault_helper exit      rank 1 exits with status 3 in the middle of the same loop
//   fault_helper timeout   rank 1 never joins an all-reduce; rank 0's 1 s collective
//                          timeout ends it
// Rank 0 all-reduces in a loop until an error; on one it prints the error as the trainer
// would ("attnlab: <status>") and exits 1.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "framework/distributed/communicator.h"

namespace {

using attnlab::distributed::Communicator;
using attnlab::distributed::CommunicatorOptions;
using attnlab::distributed::ReduceOp;

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "attnlab: %s\n", std::string(status.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s kill|exit|timeout\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  CommunicatorOptions options;
  options.collective_timeout = mode == "timeout" ? absl::Seconds(1) : absl::Seconds(60);
  auto created = Communicator::Create(options);
  if (!created.ok()) return Fail(created.status());
  Communicator& communicator = **created;
  if (communicator.size() != 2) {
    std::fprintf(stderr, "fault_helper: needs 2 ranks, got %d\n", communicator.size());
    return 2;
  }
  if (absl::Status status = communicator.Barrier(); !status.ok()) return Fail(status);

  std::vector<float> buffer(1 << 20, 1.0f);  // 4 MiB: a transfer takes a while
  for (int iteration = 0;; ++iteration) {
    if (communicator.rank() == 1 && iteration == 5) {
      if (mode == "kill") {
        communicator.StartAllReduce(buffer, ReduceOp::kMean);  // then die inside it
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        std::raise(SIGKILL);
      }
      if (mode == "exit") std::_Exit(3);
      if (mode == "timeout") std::this_thread::sleep_for(std::chrono::seconds(60));
    }
    if (absl::Status status = communicator.AllReduce(buffer, ReduceOp::kMean); !status.ok()) {
      return Fail(status);
    }
  }
}
