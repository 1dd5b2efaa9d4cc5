// Luong et al. 2015, "Effective Approaches to Attention-based Neural Machine
// Translation", eq. (8) "general": score(h_t, h_s) = h_t^T W_a h_s, unscaled as in the
// paper. Here h_t is a query q and h_s a key k, per head: score = q^T W_a k with one
// W_a [head_dim, head_dim] shared by every head (the heads already differ by their
// projections). Initialisation: Xavier-uniform, like the projections around it.
#include "framework/ops/ops.h"
#include "layers/attention/attention.h"
#include "layers/init.h"

namespace attnlab::nn {
namespace {

class GeneralAttention : public ScoreAttention {
 public:
  GeneralAttention(const AttentionShape& shape, Generator& generator) {
    Tensor weight = Tensor::Empty({shape.head_dim, shape.head_dim});
    init::XavierUniform(weight, generator);
    weight_ = RegisterParameter("weight", weight);
  }

 protected:
  // (q W_a) k^T: [b, h, tgt, d] x [d, d] -> [b, h, tgt, d]; x [b, h, src, d]^T -> [b, h, tgt, src]
  Tensor Scores(const AttentionInputs& in) const override {
    return Matmul(Matmul(in.query, weight_), in.key, false, true);
  }

 private:
  Tensor weight_;  // W_a: [head_dim, head_dim]
};

ATTNLAB_REGISTER_ATTENTION(general, "general",
                           [](const AttentionShape& shape, Generator& generator) {
                             return std::make_shared<GeneralAttention>(shape, generator);
                           });

}  // namespace
}  // namespace attnlab::nn
