// Faults of a two-rank job, end to end: mpirun runs fault_helper (see there), and the job
// must end with a non-zero status and one line that names the rank at fault, within a
// bounded time (never a hang). The messages are Open MPI 4.1's own; the README of
// framework/distributed lists them.
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "tests/support/mpirun_environment.h"

#if !defined(ATTNLAB_FAULT_HELPER) || !defined(ATTNLAB_MPIEXEC)
#error "ATTNLAB_FAULT_HELPER and ATTNLAB_MPIEXEC must be defined by the build"
#endif

namespace {

struct JobResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr of mpirun and both ranks
  double seconds = 0.0;
};

// Runs `mpirun -np 2 fault_helper MODE`, bounded by coreutils' timeout so that a hang
// fails the test (exit 124) instead of stalling the suite; its session directory is its
// own (mpirun_environment.h).
JobResult RunJob(const std::string& mode) {
  const std::string command =
      attnlab::testing::MpirunEnvironment(std::filesystem::path(::testing::TempDir()) /
                                          ("attnlab-fault-mpi-" + mode)) +
      "timeout -s KILL 60 '" + std::string(ATTNLAB_MPIEXEC) + "' --oversubscribe -np 2 '" +
      std::string(ATTNLAB_FAULT_HELPER) + "' " + mode + " 2>&1";
  const auto start = std::chrono::steady_clock::now();
  JobResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char chunk[4096];
  size_t read;
  while ((read = std::fread(chunk, 1, sizeof(chunk), pipe)) > 0) result.output.append(chunk, read);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

TEST(DistributedFault, KilledRankEndsTheJobNamingIt) {
  const JobResult job = RunJob("kill");
  EXPECT_NE(job.exit_code, 0) << job.output;
  EXPECT_NE(job.exit_code, 124) << "the job hung: " << job.output;
  EXPECT_LT(job.seconds, 20.0) << job.output;
  EXPECT_NE(job.output.find("process rank 1 with PID"), std::string::npos) << job.output;
  EXPECT_NE(job.output.find("exited on signal 9 (Killed)"), std::string::npos) << job.output;
}

TEST(DistributedFault, RankExitingNonZeroEndsTheJobNamingIt) {
  const JobResult job = RunJob("exit");
  EXPECT_EQ(job.exit_code, 3) << job.output;  // mpirun passes on the first failed status
  EXPECT_LT(job.seconds, 20.0) << job.output;
  // Open MPI names the process as [[jobid,1],rank].
  EXPECT_NE(job.output.find(",1],1]"), std::string::npos) << job.output;
  EXPECT_NE(job.output.find("Exit code:    3"), std::string::npos) << job.output;
}

TEST(DistributedFault, PeerThatNeverJoinsTimesOutWithTheRank) {
  const JobResult job = RunJob("timeout");
  EXPECT_EQ(job.exit_code, 1) << job.output;
  EXPECT_LT(job.seconds, 20.0) << job.output;
  EXPECT_NE(job.output.find("attnlab: rank 0 of 2: all_reduce of 1048576 floats did not "
                            "complete within 1s"),
            std::string::npos)
      << job.output;
}

}  // namespace
