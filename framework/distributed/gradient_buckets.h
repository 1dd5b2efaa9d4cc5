// Buckets of a flat gradient arena for an all-reduce that overlaps backward, formed as
// PyTorch's DDP forms them: parameter slots are taken from the last to the first
// (backward reaches the last parameters first), a bucket closes once it holds at least
// `bucket_elements`, and a slot is never split. Since slots are adjacent in the arena,
// every bucket is one contiguous range of it: bucket 0 is the tail of the arena.
//
// During one backward, MarkReady(slot) is called as each parameter's gradient becomes
// final (autograd's GradientReadyHook). Buckets are handed out strictly in bucket order:
// bucket k only after buckets 0..k-1, because every rank must start the same collectives
// in the same order, and the order in which gradients become final may differ between
// ranks (a parameter that one rank's batch does not use is final only at the end).
// After backward, Remaining() hands out the buckets still held back. A parameter that
// backward never reaches (unused by the model) holds back its bucket and every later one
// until then: keep such parameters first in the arena, so theirs is the last bucket.
//
//   buckets.Reset();
//   autograd::RunBackward(loss, Tensor::Scalar(1.0f), [&](TensorImpl& leaf) {
//     const int slot = arena.SlotOf(&leaf);
//     if (slot < 0) return;
//     arena.FillMissingGradient(slot);  // zero if no gradient reached it
//     for (int b : buckets.MarkReady(slot)) communicator.StartAllReduce(span(b), kMean);
//   });
//   arena.FillMissingGradients();       // parameters backward never reached
//   for (int b : buckets.Remaining()) communicator.StartAllReduce(span(b), kMean);
//   RETURN_IF_ERROR(communicator.Wait());
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace attnlab::distributed {

class GradientBuckets {
 public:
  struct Bucket {
    int64_t begin = 0;   // first element of the arena
    int64_t end = 0;     // one past the last (the next slot's offset, or the arena's end)
    int first_slot = 0;  // slots [first_slot, end_slot) of the arena
    int end_slot = 0;
  };

  // `slot_offsets`: where each slot starts in the arena (increasing, from 0), as
  // FlatArena::offsets(); `total`: the arena's size in elements (FlatArena::numel()).
  GradientBuckets(std::span<const int64_t> slot_offsets, int64_t total, int64_t bucket_elements);

  const std::vector<Bucket>& buckets() const { return buckets_; }
  int BucketOfSlot(int slot) const { return bucket_of_slot_[slot]; }

  // Before each backward: every slot pending, no bucket handed out.
  void Reset();
  // The bucket indices [begin, end), for a range-for; returning it allocates nothing.
  // Bucket indices [first, last), iterable with a range-for. (Not std::ranges::iota_view:
  // clang 14, which builds the fuzzers, rejects libstdc++ 12's.)
  struct BucketRange {
    struct Iterator {
      int index;
      int operator*() const { return index; }
      Iterator& operator++() {
        ++index;
        return *this;
      }
      bool operator!=(const Iterator& other) const { return index != other.index; }
    };
    int first = 0, last = 0;
    Iterator begin() const { return {first}; }
    Iterator end() const { return {last}; }
    int size() const { return last - first; }
    bool empty() const { return first == last; }
  };
  // Marks `slot`'s gradient final (at most once per backward). Returns the buckets that
  // may start now, in order: possibly none, possibly several that waited for this one.
  BucketRange MarkReady(int slot);
  // The buckets not handed out yet, in order (marks them handed out).
  BucketRange Remaining();

 private:
  std::vector<Bucket> buckets_;
  std::vector<int> bucket_of_slot_;
  std::vector<int> pending_slots_;  // per bucket, slots not yet final
  std::vector<bool> slot_ready_;
  int next_to_start_ = 0;  // buckets [0, next_to_start_) were handed out
};

}  // namespace attnlab::distributed
