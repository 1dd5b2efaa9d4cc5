// Times attnlab's all-reduce against MPI_Allreduce on the same buffer, under mpirun:
//
//   mpirun --oversubscribe -np 2 build/tests/attnlab_bench_all_reduce [MB] [BUCKET_MB] [REPS]
//
// (defaults: 10 MB, buckets of 10 MB, i.e. one, 20 repetitions). Every rank runs the same
// fixed number of repetitions (Google Benchmark picks its own count per process, which
// would leave collectives unmatched). Rank 0 prints the median and minimum over the
// repetitions, after two warm-up calls. With ATTNLAB_BENCH_MPI_ALLREDUCE set (mpirun -x),
// it times Open MPI's MPI_Allreduce instead, the reference (in its own job: MPI can be
// initialised once per process, and the communicator owns it otherwise).
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "framework/distributed/communicator.h"

namespace {

using attnlab::distributed::Communicator;
using attnlab::distributed::ReduceOp;

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void Report(const char* what, std::vector<double> times, double megabytes) {
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  std::printf("%-40s median %8.3f ms  min %8.3f ms  (%.0f MB/s of payload)\n", what, median * 1e3,
              times.front() * 1e3, megabytes / median);
}

}  // namespace

int main(int argc, char** argv) {
  const double megabytes = argc > 1 ? std::atof(argv[1]) : 10.0;
  const double bucket_megabytes = argc > 2 ? std::atof(argv[2]) : megabytes;
  const int repetitions = argc > 3 ? std::atoi(argv[3]) : 20;
  const auto count = static_cast<int64_t>(megabytes * 1e6 / sizeof(float));
  const auto bucket = std::max<int64_t>(1, static_cast<int64_t>(bucket_megabytes * 1e6 / 4));
  std::vector<float> buffer(count, 1.0f);

  if (std::getenv("ATTNLAB_BENCH_MPI_ALLREDUCE") != nullptr) {
    // The reference: Open MPI's own MPI_Allreduce (its tuned algorithm, blocking).
    MPI_Init(&argc, &argv);
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    std::vector<double> times;
    for (int i = 0; i < repetitions + 2; ++i) {
      MPI_Barrier(MPI_COMM_WORLD);
      const auto start = std::chrono::steady_clock::now();
      MPI_Allreduce(MPI_IN_PLACE, buffer.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM,
                    MPI_COMM_WORLD);
      if (i >= 2) times.push_back(Seconds(start));
    }
    if (rank == 0) Report("MPI_Allreduce (Open MPI tuned)", times, megabytes);
    MPI_Finalize();
    return 0;
  }

  auto created = Communicator::Create();
  if (!created.ok()) {
    std::fprintf(stderr, "%s\n", created.status().ToString().c_str());
    return 1;
  }
  Communicator& communicator = **created;
  std::vector<double> times;
  for (int i = 0; i < repetitions + 2; ++i) {
    if (!communicator.Barrier().ok()) return 1;
    const auto start = std::chrono::steady_clock::now();
    for (int64_t begin = 0; begin < count; begin += bucket) {
      communicator.StartAllReduce(
          std::span<float>(buffer).subspan(begin, std::min(bucket, count - begin)), ReduceOp::kSum);
    }
    if (absl::Status status = communicator.Wait(); !status.ok()) {
      std::fprintf(stderr, "%s\n", status.ToString().c_str());
      return 1;
    }
    if (i >= 2) times.push_back(Seconds(start));
  }
  if (communicator.rank() == 0) {
    const std::string what =
        "attnlab all-reduce, " + std::to_string((count + bucket - 1) / bucket) + " bucket(s)";
    Report(what.c_str(), times, megabytes);
  }
  return 0;
}
