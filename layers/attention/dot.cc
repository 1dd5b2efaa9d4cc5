// Luong et al. 2015, eq. (8) "dot": score(h_t, h_s) = h_t^T h_s, unscaled.
#include "framework/ops/ops.h"
#include "layers/attention/attention.h"

namespace attnlab::nn {
namespace {

class DotAttention : public ScoreAttention {
 protected:
  // [b, h, tgt, d] x [b, h, src, d]^T -> [b, h, tgt, src]
  Tensor Scores(const AttentionInputs& in) const override {
    return Matmul(in.query, in.key, false, true);
  }
};

ATTNLAB_REGISTER_ATTENTION(dot, "dot", [](const AttentionShape&, Generator&) {
  return std::make_shared<DotAttention>();
});

}  // namespace
}  // namespace attnlab::nn
