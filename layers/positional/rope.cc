// Rotary position embedding (Su et al. 2021, RoFormer, eq. 34). The rotation itself is
// the fused `rotary` op (framework/ops/rotary.cc); MultiHeadAttention applies it to the
// per-head queries and keys when MultiHeadAttentionOptions::rotary is set.
//
// As a PositionalEncoding, "rope" leaves the embeddings unchanged and answers
// rotary() = true, which tells the model to switch rotary on in its attention layers.
// Angles are computed per call, so there is no table and no max_len limit.
#include "layers/positional/rope.h"

#include "framework/ops/ops.h"
#include "layers/positional/positional_encoding.h"

namespace attnlab::nn {

Tensor ApplyRotaryEmbedding(const Tensor& x, int64_t position_offset) {
  return Rotary(x, position_offset);
}

namespace {

class RotaryPositionalEncoding : public PositionalEncoding {
 public:
  explicit RotaryPositionalEncoding(int64_t d_model) : d_model_(d_model) {}

  Tensor Forward(const Tensor& embeddings, int64_t position_offset) const override {
    CheckEmbeddingShape(embeddings, d_model_, "rope");
    return embeddings;
  }
  bool rotary() const override { return true; }

 private:
  int64_t d_model_;
};

ATTNLAB_REGISTER_POSITIONAL_ENCODING(rope, "rope", [](int64_t d_model, int64_t, Generator&) {
  return std::make_shared<RotaryPositionalEncoding>(d_model);
});

}  // namespace
}  // namespace attnlab::nn
