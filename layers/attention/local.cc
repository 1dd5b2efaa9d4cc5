// Local (sliding-window) attention, as in Longformer (Beltagy et al. 2020, section 3.1,
// "sliding window") and the local patterns of Child et al. 2019: scaled dot-product
// attention in which a query sees only the keys within `window` positions of its own.
// With query i at position p_i = i + query_offset and key j at p_j = j + key_offset:
//   non-causal self-attention (encoder): key j is visible iff |p_i - p_j| <= window,
//     i.e. 2 window + 1 keys centred on the query;
//   causal self-attention (decoder):     key j is visible iff 0 <= p_i - p_j <= window,
//     i.e. the query's own key and the `window` before it (window + 1 keys).
// Keys outside the window get -inf before the softmax, hence weight exactly 0.
//
// Decoding: a causal query never sees a key more than `window` positions back, so the
// decoder's self-attention cache keeps only the last `window` keys and values between
// steps (CacheWindow()); each step then attends over at most window + 1 keys, and its
// cost and memory no longer grow with the decoded length.
//
// Cross-attention (keys from the encoder output: a block built with AttentionRole::kCross)
// is not windowed: target and source positions are different sequences, and a window
// over source positions centred on the target position would only suit monotone tasks
// of equal lengths. There the variant is exactly scaled_dot, and its cache keeps every
// key (the encoder output is cached once anyway).
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <optional>
#include <vector>

#include "framework/ops/ops.h"
#include "layers/attention/attention.h"

namespace attnlab::nn {
namespace {

struct LocalOptions {
  int64_t window = 16;
};

const OptionFields<LocalOptions>& LocalOptionFields() {
  static const auto* fields = new OptionFields<LocalOptions>{
      IntOption("window", &LocalOptions::window,
                "Self-attention sees keys at most this many positions away (causal: this many "
                "before the query, plus itself); the decoder's cache keeps only them.",
                1, 4096),
  };
  return *fields;
}

class LocalAttention : public ScoreAttention {
 public:
  LocalAttention(const AttentionShape& shape, const LocalOptions& options)
      : scale_(1.0f / std::sqrt(static_cast<float>(shape.head_dim))),
        window_(options.window),
        windowed_(shape.role == AttentionRole::kSelf) {}

  std::optional<int64_t> CacheWindow() const override {
    return windowed_ ? std::optional<int64_t>(window_) : std::nullopt;
  }

 protected:
  // q k^T / sqrt(d_k) + window mask: [b, h, tgt, src] + [tgt, src]
  Tensor Scores(const AttentionInputs& in) const override {
    const Tensor scores = MulScalar(Matmul(in.query, in.key, false, true), scale_);
    if (!windowed_) return scores;
    const Tensor mask = WindowMask(in);
    return mask.defined() ? Add(scores, mask) : scores;
  }

 private:
  // [tgt, src]: 0 inside the window, -inf outside; undefined when the window holds
  // every pair (then the scores are scaled_dot's, bit for bit).
  Tensor WindowMask(const AttentionInputs& in) const {
    const int64_t tgt = in.query.size(2), src = in.key.size(2);
    std::vector<float> mask(tgt * src, 0.0f);
    bool any_outside = false;
    for (int64_t i = 0; i < tgt; ++i) {
      for (int64_t j = 0; j < src; ++j) {
        // p_i - p_j: how far the key lies before the query (negative: after it).
        const int64_t behind = (i + in.query_offset) - (j + in.key_offset);
        // Causal: keys after the query are the causal mask's business, not the window's.
        const bool outside = in.causal ? behind > window_ : std::llabs(behind) > window_;
        if (outside) {
          mask[i * src + j] = -std::numeric_limits<float>::infinity();
          any_outside = true;
        }
      }
    }
    return any_outside ? Tensor::FromFloats(mask, {tgt, src}) : Tensor();
  }

  float scale_;
  int64_t window_;
  bool windowed_;  // self-attention; cross-attention is not windowed
};

ATTNLAB_REGISTER_ATTENTION(local, "local", LocalOptionFields(),
                           [](const AttentionShape& shape, const LocalOptions& options,
                              Generator&) {
                             return std::make_shared<LocalAttention>(shape, options);
                           });

}  // namespace
}  // namespace attnlab::nn
