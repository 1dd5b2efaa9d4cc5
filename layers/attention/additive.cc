// Additive ("concat") attention, Bahdanau et al. 2014, appendix A.1.2, as written by
// Luong et al. 2015, eq. (8): score(q, k) = v^T tanh(W_q q + W_k k). Per head, with
// W_q, W_k [head_dim, head_dim] (no bias) and v [head_dim], shared by every head.
// Initialisation: Xavier-uniform for W_q, W_k, and for v as the [1, head_dim] matrix v^T.
//
// Every (query, key) pair gets its own tanh, so the scores cost a
// [batch, heads, tgt, src, head_dim] intermediate: fine for the RNN-sized models the
// paper used, O(tgt * src * d) memory for long sequences.
#include "framework/ops/ops.h"
#include "layers/attention/attention.h"
#include "layers/init.h"

namespace attnlab::nn {
namespace {

class AdditiveAttention : public ScoreAttention {
 public:
  AdditiveAttention(const AttentionShape& shape, Generator& generator) : head_dim_(shape.head_dim) {
    Tensor query_weight = Tensor::Empty({head_dim_, head_dim_});
    Tensor key_weight = Tensor::Empty({head_dim_, head_dim_});
    Tensor score_weight = Tensor::Empty({1, head_dim_});  // v^T
    init::XavierUniform(query_weight, generator);
    init::XavierUniform(key_weight, generator);
    init::XavierUniform(score_weight, generator);
    query_weight_ = RegisterParameter("query_weight", query_weight);
    key_weight_ = RegisterParameter("key_weight", key_weight);
    score_vector_ = RegisterParameter("score_vector", score_weight.reshape({head_dim_}));
  }

 protected:
  Tensor Scores(const AttentionInputs& in) const override {
    const int64_t batch = in.query.size(0), heads = in.query.size(1);
    const int64_t tgt = in.query.size(2), src = in.key.size(2);
    // W_q q and W_k k, broadcast against each other: [b, h, tgt, 1, d] + [b, h, 1, src, d]
    const Tensor queries =
        Reshape(Linear(in.query, query_weight_, Tensor()), {batch, heads, tgt, 1, head_dim_});
    const Tensor keys =
        Reshape(Linear(in.key, key_weight_, Tensor()), {batch, heads, 1, src, head_dim_});
    const Tensor hidden = Tanh(Add(queries, keys));  // [b, h, tgt, src, d]
    // v^T tanh(...): [b, h, tgt, src, d] x [1, d]^T -> [b, h, tgt, src, 1]
    const Tensor scores = Linear(hidden, Reshape(score_vector_, {1, head_dim_}), Tensor());
    return Reshape(scores, {batch, heads, tgt, src});
  }

 private:
  int64_t head_dim_;
  Tensor query_weight_, key_weight_;  // W_q, W_k: [head_dim, head_dim], as [out, in]
  Tensor score_vector_;               // v: [head_dim]
};

ATTNLAB_REGISTER_ATTENTION(additive, "additive",
                           [](const AttentionShape& shape, Generator& generator) {
                             return std::make_shared<AdditiveAttention>(shape, generator);
                           });

}  // namespace
}  // namespace attnlab::nn
