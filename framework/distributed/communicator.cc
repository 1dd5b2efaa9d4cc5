#include "framework/distributed/communicator.h"

#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "framework/core/error.h"
#include "framework/distributed/launch.h"
#include "framework/distributed/mpi_status.h"
#include "framework/distributed/rank_order_sum.h"

namespace attnlab::distributed {
namespace {

// MPI counts and displacements are ints: a buffer is reduced or broadcast in pieces of at
// most this many floats (1 GiB), each on its own; no element changes its order of
// additions, so splitting changes no result.
constexpr int64_t kMaxPieceFloats = int64_t{1} << 28;

// Polling a pending collective: the first tests back to back (a collective whose peers
// are ready finishes within microseconds, and a transfer in flight moves forward only
// while MPI is called), then sleeps that double from kMinSleep up to kMaxSleep between
// tests, so a thread that waits for a slow peer leaves the cores to computation.
constexpr int kSpinTests = 2000;
constexpr std::chrono::microseconds kMinSleep(5);
constexpr std::chrono::microseconds kMaxSleep(200);

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// MPI can be initialised once per process, even after MPI_Finalize.
std::atomic<bool> mpi_claimed{false};

}  // namespace

// What only the communication thread touches: MPI handles and the all-reduce's scratch
// (kept between calls, so a steady-state all-reduce allocates nothing).
class Communicator::MpiState {
 public:
  MPI_Comm comm = MPI_COMM_NULL;  // a duplicate of MPI_COMM_WORLD, ours alone
  bool finalize = false;          // we initialised MPI, so we finalise it
  std::vector<float> scratch;     // [size][chunk]: every rank's values of our chunk
  std::vector<int> send_counts, send_displacements, receive_counts, receive_displacements;
  std::vector<const float*> contributions;  // [size]: where each rank's values of our chunk are
};

Communicator::Communicator(const CommunicatorOptions& options) : options_(options) {}

absl::StatusOr<std::unique_ptr<Communicator>> Communicator::Create(
    const CommunicatorOptions& options) {
  if (options.collective_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("collective_timeout must not be negative, got ",
                     absl::FormatDuration(options.collective_timeout)));
  }
  std::unique_ptr<Communicator> communicator(new Communicator(options));
  if (!StartedByMpiLauncher()) return communicator;  // one rank, no MPI
  if (mpi_claimed.exchange(true)) {
    return absl::FailedPreconditionError(
        "a Communicator over MPI was already created in this process (MPI can be "
        "initialised only once per process); share that one");
  }
  communicator->uses_mpi_ = true;
  communicator->mpi_ = std::make_unique<MpiState>();
  communicator->thread_ = std::thread(&Communicator::ThreadMain, communicator.get());
  absl::Status init_status;
  {
    std::unique_lock lock(communicator->mutex_);
    communicator->initialized_.wait(lock, [&] { return communicator->init_done_; });
    init_status = communicator->init_status_;
  }
  if (!init_status.ok()) {
    communicator->thread_.join();  // ThreadMain has returned
    return init_status;
  }
  return communicator;
}

Communicator::~Communicator() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    shutdown_ = true;
  }
  work_ready_.notify_all();
  thread_.join();
}

bool Communicator::MpiIsInitialized() {
  // Both may be called from any thread, before MPI_Init and after MPI_Finalize.
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized != 0 && finalized == 0;
}

void Communicator::ThreadMain() {
  MpiState& mpi = *mpi_;
  absl::Status status;
  int provided = MPI_THREAD_SINGLE;
  // argc/argv may be null (MPI-2): mpirun passes what MPI needs in the environment.
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);  // errors are fatal here
  mpi.finalize = true;
  int rank = 0, size = 1;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (provided < MPI_THREAD_FUNNELED) {
    status = absl::FailedPreconditionError(absl::StrCat(
        "rank ", rank, " of ", size,
        ": the MPI library does not support MPI_THREAD_FUNNELED (provides level ", provided, ")"));
  } else {
    status = MpiStatus(MPI_Comm_dup(MPI_COMM_WORLD, &mpi.comm), rank, size, "MPI_Comm_dup",
                       "the communicator");
    if (status.ok()) MPI_Comm_set_errhandler(mpi.comm, MPI_ERRORS_RETURN);
  }
  {
    std::lock_guard lock(mutex_);
    rank_ = rank;
    size_ = size;
    init_status_ = status;
    init_done_ = true;
  }
  initialized_.notify_all();

  while (status.ok()) {
    Request request;
    absl::Status earlier_error;
    {
      std::unique_lock lock(mutex_);
      work_ready_.wait(lock, [&] { return shutdown_ || !queue_.empty(); });
      if (queue_.empty()) break;  // shut down with nothing left to do
      request = queue_.front();
      queue_.pop_front();
      earlier_error = first_error_;
    }
    const int64_t started_ns = NowNs();
    int64_t bytes_sent = 0;
    // After an error MPI's state is undefined: later requests fail without calling it.
    const absl::Status result = earlier_error.ok() ? Run(request, bytes_sent) : earlier_error;
    Finish(request, started_ns, bytes_sent, result);
  }

  bool healthy;
  {
    std::lock_guard lock(mutex_);
    healthy = first_error_.ok();
  }
  // After an error (a timed-out collective still pending, a transport failure)
  // MPI_Finalize could wait forever for peers; the process exits without it, and mpirun
  // reports the non-zero exit.
  if (healthy && mpi.finalize) {
    if (mpi.comm != MPI_COMM_NULL) MPI_Comm_free(&mpi.comm);
    MPI_Finalize();
  }
}

void Communicator::Enqueue(Request request) {
  request.queued_ns = NowNs();
  if (!uses_mpi_) {
    // One rank: a broadcast or barrier does nothing, and an all-reduce of one value is
    // that value (for a mean, x / 1 == x bit for bit).
    {
      std::lock_guard lock(mutex_);
      ++submitted_;
    }
    Finish(request, request.queued_ns, 0, absl::OkStatus());
    return;
  }
  {
    std::lock_guard lock(mutex_);
    ++submitted_;
    queue_.push_back(request);
  }
  work_ready_.notify_one();
}

void Communicator::Finish(const Request& request, int64_t started_ns, int64_t bytes_sent,
                          const absl::Status& status) {
  const int64_t finished_ns = NowNs();
  const double seconds = static_cast<double>(finished_ns - started_ns) * 1e-9;
  const int64_t bytes = static_cast<int64_t>(request.buffer.size_bytes());
  {
    std::lock_guard lock(mutex_);
    switch (request.kind) {
      case CollectiveKind::kAllReduce:
        ++stats_.all_reduce_count;
        stats_.all_reduce_bytes += bytes;
        stats_.all_reduce_bytes_sent += bytes_sent;
        stats_.all_reduce_seconds += seconds;
        break;
      case CollectiveKind::kBroadcast:
        ++stats_.broadcast_count;
        stats_.broadcast_bytes += bytes;
        stats_.broadcast_seconds += seconds;
        break;
      case CollectiveKind::kBarrier:
        ++stats_.barrier_count;
        stats_.barrier_seconds += seconds;
        break;
    }
    if (records_.size() < kMaxRecords) {
      records_.push_back(
          {request.kind, bytes, bytes_sent, request.queued_ns, started_ns, finished_ns});
    } else {
      ++dropped_records_;
    }
    if (!status.ok() && first_error_.ok()) first_error_ = status;
    ++completed_;
  }
  work_done_.notify_all();
}

absl::Status Communicator::Run(const Request& request, int64_t& bytes_sent) {
  MpiState& mpi = *mpi_;
  const int64_t count = static_cast<int64_t>(request.buffer.size());
  // Only an error message needs the collective's description, so it is built only then
  // (a steady-state step allocates nothing here).
  const auto what = [&] {
    const std::string name(CollectiveName(request.kind));
    return request.kind == CollectiveKind::kBarrier ? name
                                                    : absl::StrCat(name, " of ", count, " floats");
  };
  const bool has_deadline = options_.collective_timeout > absl::ZeroDuration();
  const int64_t deadline_ns =
      has_deadline ? NowNs() + absl::ToInt64Nanoseconds(options_.collective_timeout) : 0;

  // Starts nothing; waits for one non-blocking MPI call to finish (see kSpinTests).
  auto complete = [&](int start_code, MPI_Request& pending, std::string_view call) {
    if (start_code != MPI_SUCCESS) return MpiStatus(start_code, rank_, size_, call, what());
    std::chrono::microseconds sleep(0);
    for (int tests = 1;; ++tests) {
      int done = 0;
      const int test_code = MPI_Test(&pending, &done, MPI_STATUS_IGNORE);
      if (test_code != MPI_SUCCESS) return MpiStatus(test_code, rank_, size_, call, what());
      if (done) return absl::OkStatus();
      if (has_deadline && NowNs() > deadline_ns) {
        return absl::DeadlineExceededError(
            absl::StrCat("rank ", rank_, " of ", size_, ": ", what(), " did not complete within ",
                         absl::FormatDuration(options_.collective_timeout),
                         " (a peer is stuck, or is not taking part in this collective)"));
      }
      if (tests < kSpinTests) continue;
      sleep = std::min(std::max(sleep * 2, kMinSleep), kMaxSleep);
      std::this_thread::sleep_for(sleep);
    }
  };

  switch (request.kind) {
    case CollectiveKind::kBarrier: {
      MPI_Request pending;
      return complete(MPI_Ibarrier(mpi.comm, &pending), pending, "MPI_Ibarrier");
    }
    case CollectiveKind::kBroadcast: {
      for (int64_t begin = 0; begin < count; begin += kMaxPieceFloats) {
        const int piece = static_cast<int>(std::min(kMaxPieceFloats, count - begin));
        MPI_Request pending;
        RETURN_IF_ERROR(complete(MPI_Ibcast(request.buffer.data() + begin, piece, MPI_FLOAT,
                                            request.root, mpi.comm, &pending),
                                 pending, "MPI_Ibcast"));
      }
      return absl::OkStatus();
    }
    case CollectiveKind::kAllReduce:
      break;
  }

  // The deterministic all-reduce of rank_order_sum.h, piece by piece.
  const float divisor = request.op == ReduceOp::kMean ? static_cast<float>(size_) : 1.0f;
  std::vector<const float*>& contributions = mpi.contributions;
  contributions.resize(size_);
  for (int64_t begin = 0; begin < count; begin += kMaxPieceFloats) {
    const int64_t piece = std::min(kMaxPieceFloats, count - begin);
    float* data = request.buffer.data() + begin;
    const ChunkLayout chunks(piece, size_);
    const int64_t own = chunks.size(rank_);
    mpi.scratch.resize(static_cast<size_t>(own) * size_);
    mpi.send_counts.assign(size_, 0);
    mpi.send_displacements.assign(size_, 0);
    mpi.receive_counts.assign(size_, 0);
    mpi.receive_displacements.assign(size_, 0);
    for (int peer = 0; peer < size_; ++peer) {
      if (peer == rank_) continue;  // our own chunk stays where it is
      mpi.send_counts[peer] = static_cast<int>(chunks.size(peer));
      mpi.send_displacements[peer] = static_cast<int>(chunks.begin(peer));
      mpi.receive_counts[peer] = static_cast<int>(own);
      mpi.receive_displacements[peer] = static_cast<int>(own * peer);
    }
    // 1-2. Every rank's values of our chunk come to us.
    MPI_Request pending;
    RETURN_IF_ERROR(
        complete(MPI_Ialltoallv(data, mpi.send_counts.data(), mpi.send_displacements.data(),
                                MPI_FLOAT, mpi.scratch.data(), mpi.receive_counts.data(),
                                mpi.receive_displacements.data(), MPI_FLOAT, mpi.comm, &pending),
                 pending, "MPI_Ialltoallv"));
    // 3. Sum them in rank order, into our chunk of the buffer.
    float* own_chunk = data + chunks.begin(rank_);
    for (int peer = 0; peer < size_; ++peer) {
      contributions[peer] = peer == rank_ ? own_chunk : mpi.scratch.data() + own * peer;
    }
    SumInRankOrder(contributions, own, divisor, own_chunk);
    // 4. Every reduced chunk goes to every rank.
    for (int peer = 0; peer < size_; ++peer) {
      mpi.receive_counts[peer] = static_cast<int>(chunks.size(peer));
      mpi.receive_displacements[peer] = static_cast<int>(chunks.begin(peer));
    }
    RETURN_IF_ERROR(complete(
        MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, mpi.receive_counts.data(),
                        mpi.receive_displacements.data(), MPI_FLOAT, mpi.comm, &pending),
        pending, "MPI_Iallgatherv"));
    bytes_sent += static_cast<int64_t>(sizeof(float)) * ((piece - own) + own * (size_ - 1));
  }
  return absl::OkStatus();
}

void Communicator::StartAllReduce(std::span<float> buffer, ReduceOp op) {
  Request request;
  request.kind = CollectiveKind::kAllReduce;
  request.buffer = buffer;
  request.op = op;
  Enqueue(request);
}

absl::Status Communicator::Wait() {
  const int64_t start_ns = NowNs();
  std::unique_lock lock(mutex_);
  work_done_.wait(lock, [&] { return completed_ == submitted_; });
  stats_.wait_seconds += static_cast<double>(NowNs() - start_ns) * 1e-9;
  return first_error_;
}

absl::Status Communicator::AllReduce(std::span<float> buffer, ReduceOp op) {
  StartAllReduce(buffer, op);
  return Wait();
}

absl::Status Communicator::Broadcast(std::span<float> buffer, int root) {
  if (root < 0 || root >= size_) {
    return absl::InvalidArgumentError(absl::StrCat("rank ", rank_, " of ", size_,
                                                   ": broadcast from rank ", root,
                                                   ", which is not a rank of this job"));
  }
  Request request;
  request.kind = CollectiveKind::kBroadcast;
  request.buffer = buffer;
  request.root = root;
  Enqueue(request);
  return Wait();
}

absl::Status Communicator::Barrier() {
  Request request;
  request.kind = CollectiveKind::kBarrier;
  Enqueue(request);
  return Wait();
}

CommunicationStats Communicator::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

std::vector<CollectiveRecord> Communicator::TakeRecords() {
  std::lock_guard lock(mutex_);
  std::vector<CollectiveRecord> taken;
  taken.swap(records_);
  return taken;
}

int64_t Communicator::dropped_records() const {
  std::lock_guard lock(mutex_);
  return dropped_records_;
}

}  // namespace attnlab::distributed
