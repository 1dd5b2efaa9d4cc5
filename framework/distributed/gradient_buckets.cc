#include "framework/distributed/gradient_buckets.h"

#include "framework/core/error.h"

namespace attnlab::distributed {

GradientBuckets::GradientBuckets(std::span<const int64_t> slot_offsets, int64_t total,
                                 int64_t bucket_elements) {
  ATTNLAB_CHECK(bucket_elements >= 1, "GradientBuckets: bucket size ", bucket_elements,
                " must be at least one element");
  const int slots = static_cast<int>(slot_offsets.size());
  for (int slot = 0; slot < slots; ++slot) {
    const int64_t end = slot + 1 < slots ? slot_offsets[slot + 1] : total;
    ATTNLAB_CHECK(slot_offsets[slot] >= 0 && slot_offsets[slot] <= end && end <= total,
                  "GradientBuckets: slot ", slot, " at ", slot_offsets[slot],
                  " is out of order or outside the arena of ", total, " elements");
  }
  bucket_of_slot_.assign(slots, 0);
  int end_slot = slots;
  while (end_slot > 0) {
    Bucket bucket;
    bucket.end_slot = end_slot;
    bucket.end = end_slot < slots ? slot_offsets[end_slot] : total;
    int first = end_slot - 1;
    while (first > 0 && bucket.end - slot_offsets[first] < bucket_elements) --first;
    bucket.first_slot = first;
    bucket.begin = slot_offsets[first];
    for (int slot = first; slot < end_slot; ++slot) {
      bucket_of_slot_[slot] = static_cast<int>(buckets_.size());
    }
    buckets_.push_back(bucket);
    end_slot = first;
  }
  Reset();
}

void GradientBuckets::Reset() {
  pending_slots_.clear();
  for (const Bucket& bucket : buckets_)
    pending_slots_.push_back(bucket.end_slot - bucket.first_slot);
  slot_ready_.assign(bucket_of_slot_.size(), false);
  next_to_start_ = 0;
}

GradientBuckets::BucketRange GradientBuckets::MarkReady(int slot) {
  ATTNLAB_CHECK(slot >= 0 && static_cast<size_t>(slot) < slot_ready_.size(),
                "GradientBuckets::MarkReady: slot ", slot, " of ", slot_ready_.size());
  ATTNLAB_CHECK(!slot_ready_[slot], "GradientBuckets::MarkReady: slot ", slot,
                " was already marked in this backward (missing Reset()?)");
  slot_ready_[slot] = true;
  --pending_slots_[bucket_of_slot_[slot]];
  const int first = next_to_start_;
  while (next_to_start_ < static_cast<int>(buckets_.size()) &&
         pending_slots_[next_to_start_] == 0) {
    ++next_to_start_;
  }
  return BucketRange{first, next_to_start_};
}

GradientBuckets::BucketRange GradientBuckets::Remaining() {
  const int first = next_to_start_;
  next_to_start_ = static_cast<int>(buckets_.size());
  return BucketRange{first, next_to_start_};
}

}  // namespace attnlab::distributed
