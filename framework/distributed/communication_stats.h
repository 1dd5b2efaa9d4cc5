// What the communicator measured, for the profiler (its tables and one Chrome-trace track
// per rank) and for the trainer's per-step log. Times are std::chrono::steady_clock
// nanoseconds, the clock the profiler uses too, so spans line up with backward's.
#pragma once

#include <cstdint>
#include <string_view>

namespace attnlab::distributed {

enum class CollectiveKind { kAllReduce, kBroadcast, kBarrier };

std::string_view CollectiveName(CollectiveKind kind);

// One collective, as the communication thread ran it. queued -> started is time spent
// waiting behind earlier collectives; started -> finished is time in MPI (including
// waiting for the slowest peer to join).
struct CollectiveRecord {
  CollectiveKind kind = CollectiveKind::kAllReduce;
  int64_t bytes = 0;       // the buffer's size (payload), the same on every rank
  int64_t bytes_sent = 0;  // what this rank sent over the wire for it
  int64_t queued_ns = 0;
  int64_t started_ns = 0;
  int64_t finished_ns = 0;
};

// Running totals since the communicator was created.
struct CommunicationStats {
  int64_t all_reduce_count = 0;
  int64_t all_reduce_bytes = 0;       // payload
  int64_t all_reduce_bytes_sent = 0;  // by this rank
  double all_reduce_seconds = 0.0;    // sum of started -> finished
  int64_t broadcast_count = 0;
  int64_t broadcast_bytes = 0;
  double broadcast_seconds = 0.0;
  int64_t barrier_count = 0;
  double barrier_seconds = 0.0;
  // Time callers spent blocked in Wait() (and in Broadcast/Barrier): communication that
  // was not overlapped with computation.
  double wait_seconds = 0.0;
};

}  // namespace attnlab::distributed
