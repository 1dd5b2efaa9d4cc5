// T5's relative position buckets (Raffel et al. 2020, "Exploring the Limits of Transfer
// Learning with a Unified Text-to-Text Transformer", section 2.1), the bucketing behind
// the `t5_bias` attention variant (t5_bias.cc), exposed so it can be tested on its own.
#pragma once

#include <cstdint>

namespace attnlab::nn {

// The bucket of relative_position = key position - query position, as T5's
// _relative_position_bucket (mesh_tensorflow's transformer layers) defines it. With
// n = query - key (how far the key lies behind the query):
//  * bidirectional (encoder self-attention): half of the buckets are for keys behind or
//    at the query (n >= 0), the other half, offset by num_buckets / 2, for keys after
//    it (n < 0), each half then bucketing |n| over its num_buckets / 2 buckets;
//    unidirectional (causal decoder self-attention): n = max(n, 0), so every later key
//    shares bucket 0 with the query's own (the causal mask hides them anyway);
//  * within a half of B buckets, with max_exact = B / 2: distances below max_exact get
//    a bucket each; larger ones share log-spaced buckets up to max_distance,
//      max_exact + floor(log(n / max_exact) / log(max_distance / max_exact)
//                        * (B - max_exact)),
//    and every distance >= max_distance falls into the last bucket, B - 1.
// Result in [0, num_buckets). Needs num_buckets >= 4 (so that max_exact >= 1) and
// max_distance >= 1.
int64_t T5RelativePositionBucket(int64_t relative_position, bool bidirectional, int64_t num_buckets,
                                 int64_t max_distance);

}  // namespace attnlab::nn
