// The arithmetic of the deterministic all-reduce, apart from MPI so that it can be
// tested on its own.
//
// Why this exists. MPI_Allreduce does not fix the order in which it adds the ranks'
// values: Open MPI's coll/tuned picks an algorithm (recursive doubling, ring, segmented
// ring, Rabenseifner...) from the message size and rank count, and each adds in its own
// order, possibly a different order on different ranks. Floating-point addition is
// commutative but not associative, so for N > 2 the sums can differ in the last bits
// between algorithms, between Open MPI versions or tunings, and even between the ranks
// of one job (replicas would drift apart). For N = 2 every algorithm computes a + b or
// b + a, which are equal, but nothing above 2 is guaranteed.
//
// So attnlab's all-reduce does the additions itself, in one fixed order, and leaves MPI
// only data movement (which has no rounding):
//   1. The buffer of n floats is cut into N chunks (ChunkLayout); rank r owns chunk r.
//   2. MPI_Alltoallv: every rank sends chunk j of its buffer to rank j, so rank r holds
//      all N ranks' values of chunk r.
//   3. Rank r adds them in rank order, ((x_0 + x_1) + x_2) + ... + x_{N-1}, element by
//      element (SumInRankOrder), and for a mean divides by N once at the end.
//   4. MPI_Allgatherv: every rank receives every reduced chunk.
// Every element is therefore summed by exactly one rank, in the same order on every
// repetition, and copied bit for bit to the others: bit-identical across repetitions and
// across ranks for any N, whatever algorithms Open MPI chooses. Each rank sends and
// receives (N-1)/N of the buffer twice, the same volume as a ring all-reduce.
#pragma once

#include <cstdint>
#include <span>

namespace attnlab::distributed {

// How n elements are cut into `parts` contiguous chunks: sizes differ by at most one,
// the larger ones first. Chunk i is [begin(i), begin(i) + size(i)).
class ChunkLayout {
 public:
  ChunkLayout(int64_t count, int parts);
  int64_t begin(int part) const;
  int64_t size(int part) const;
  int parts() const { return parts_; }

 private:
  int64_t count_;
  int parts_;
  int64_t base_;   // count / parts
  int64_t extra_;  // count % parts: the first `extra_` chunks have one more element
};

// out[k] = ((contributions[0][k] + contributions[1][k]) + ...) / divisor, for k < count,
// adding in the order of `contributions` (rank order) and dividing once at the end
// (divisor 1 for a sum, N for a mean; a division by 1 changes no bit). `out` may be one
// of the contributions: each block of out is written after all of its reads.
void SumInRankOrder(std::span<const float* const> contributions, int64_t count, float divisor,
                    float* out);

}  // namespace attnlab::distributed
