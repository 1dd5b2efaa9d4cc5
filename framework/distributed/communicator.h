// Communicator: the ranks of one job and the collectives data-parallel training needs
// (rank, size, broadcast, barrier, and an all-reduce of flat f32 buffers that runs while
// the caller goes on computing), over MPI's C API. It knows nothing of models or tasks:
// the trainer decides what to shard and what to reduce.
//
// Two modes, chosen by Create() from the environment (framework/distributed/launch.h):
//  * Under an MPI launcher (mpirun -np N ...): MPI is initialised and N ranks talk.
//  * A plain process: one rank, and MPI is never initialised (not even as an Open MPI
//    singleton, which would fork a daemon first); every collective is then a no-op that
//    returns at once (an all-reduce of one rank is the identity, bit for bit, for sum and
//    for mean alike).
//
// Threading. One communication thread, started by Create(), makes every MPI call of the
// process, from MPI_Init_thread to MPI_Finalize; the caller's threads only queue requests
// and wait. So MPI is initialised with MPI_THREAD_FUNNELED (only the thread that
// initialised MPI calls it), which costs nothing, where MPI_THREAD_MULTIPLE would put a
// lock around every call. The queue is FIFO, so collectives reach MPI in the order the
// caller issued them; every rank must issue the same collectives in the same order with
// the same sizes (as with MPI itself).
//
// Overlap. StartAllReduce() queues a bucket and returns at once; the caller goes on (e.g.
// with the rest of backward) and calls Wait() before it reads the buffers. While a
// collective waits for a peer, the communication thread polls MPI with short sleeps
// instead of spinning inside a blocking call, so it leaves the cores to computation (on
// a machine with as many ranks as cores, a spinning thread would halve compute).
//
// Determinism. The all-reduce adds in rank order itself and uses MPI only to move data
// (rank_order_sum.h explains why and how): results are bit-identical on every rank and on
// every repetition with the same N, for any N.
//
// Errors. MPI errors are returned (MPI_ERRORS_RETURN), not fatal, and become an
// absl::Status that starts with "rank R of N:". After an error the communicator is
// unusable (MPI's state is undefined after an error): every later call returns the same
// error without calling MPI. A peer that dies is not an MPI error with Open MPI 4.1's
// shared-memory and TCP transports: mpirun notices the death, prints which rank died and
// ends every other rank within about a second (see framework/distributed/README.md for
// the observed messages). A peer that is alive but never joins a collective is caught by
// `collective_timeout`.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "framework/distributed/communication_stats.h"

namespace attnlab::distributed {

enum class ReduceOp {
  kSum,
  kMean,  // the sum divided by the number of ranks (once, after the sum)
};

struct CommunicatorOptions {
  // How long one collective may wait for its peers before it fails with
  // DeadlineExceeded ("rank R of N: all_reduce of ... did not complete within ..."), so
  // that a peer that is stuck, or busy with something the others do not wait for, cannot
  // hang the job: the caller reports the error and exits non-zero, and mpirun then ends
  // the other ranks. Zero means no limit. Set it above the longest time one rank can
  // legitimately run ahead of the others (e.g. rank 0 evaluating alone).
  absl::Duration collective_timeout = absl::ZeroDuration();
};

class Communicator {
 public:
  // Joins the job: under an MPI launcher, starts the communication thread, which
  // initialises MPI; otherwise a one-rank communicator without MPI. MPI can be
  // initialised once per process, so under a launcher a second Create() (even after the
  // first communicator is gone) is an error.
  static absl::StatusOr<std::unique_ptr<Communicator>> Create(
      const CommunicatorOptions& options = {});

  // Waits for every queued collective, then finalises MPI (unless an error left MPI in an
  // undefined state, when finalising could hang).
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  // Whether MPI was initialised (false for a plain process).
  bool uses_mpi() const { return uses_mpi_; }

  // Queues an all-reduce of `buffer` in place and returns at once. The buffer must hold
  // the same number of floats on every rank, stay alive, and be neither read nor written
  // by the caller until Wait() returns. Buckets are reduced one after the other, in the
  // order they were started.
  void StartAllReduce(std::span<float> buffer, ReduceOp op);
  // Blocks until every collective started so far has finished; returns the first error.
  absl::Status Wait();
  // StartAllReduce + Wait.
  absl::Status AllReduce(std::span<float> buffer, ReduceOp op);

  // Copies `root`'s buffer into every rank's buffer (same size everywhere). Waits for
  // everything queued before it, and for itself.
  absl::Status Broadcast(std::span<float> buffer, int root);
  // Returns when every rank has called Barrier(). Waits for everything queued before it.
  absl::Status Barrier();

  // Totals so far, and the records of the collectives finished since the last
  // TakeRecords() (at most kMaxRecords are kept; older ones are dropped and counted).
  CommunicationStats stats() const;
  std::vector<CollectiveRecord> TakeRecords();
  int64_t dropped_records() const;
  static constexpr size_t kMaxRecords = size_t{1} << 16;

  // Whether MPI is initialised in this process (and not finalised): false for a
  // one-rank communicator. For tests and diagnostics.
  static bool MpiIsInitialized();

 private:
  struct Request {
    CollectiveKind kind;
    std::span<float> buffer;
    ReduceOp op = ReduceOp::kSum;
    int root = 0;
    int64_t queued_ns = 0;
  };
  class MpiState;  // the MPI handles and scratch, owned by the communication thread

  Communicator(const CommunicatorOptions& options);
  // Queues a request (or, for one rank, records it as done at once).
  void Enqueue(Request request);
  // The communication thread: initialises MPI, reports through `init_status`, serves the
  // queue until shutdown, finalises.
  void ThreadMain();
  absl::Status Run(const Request& request, int64_t& bytes_sent);
  void Finish(const Request& request, int64_t started_ns, int64_t bytes_sent,
              const absl::Status& status);

  const CommunicatorOptions options_;
  int rank_ = 0;
  int size_ = 1;
  bool uses_mpi_ = false;

  mutable std::mutex mutex_;
  std::condition_variable work_ready_;  // the communication thread waits for requests
  std::condition_variable work_done_;   // Wait() waits for completions
  std::condition_variable initialized_;
  std::deque<Request> queue_;
  int64_t submitted_ = 0;
  int64_t completed_ = 0;
  bool shutdown_ = false;
  bool init_done_ = false;
  absl::Status init_status_;
  absl::Status first_error_;  // sticky: the communicator is unusable after an error
  CommunicationStats stats_;
  std::vector<CollectiveRecord> records_;
  int64_t dropped_records_ = 0;

  std::unique_ptr<MpiState> mpi_;
  std::thread thread_;
};

}  // namespace attnlab::distributed
