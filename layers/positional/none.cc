// No positional encoding: the embeddings pass through unchanged. For models that get
// positions elsewhere (ALiBi's attention biases, Press et al. 2022, which add no
// position embeddings at all) and for ablations ("how much do positions matter here?").
// No table, hence no max_len limit.
#include "layers/positional/positional_encoding.h"

namespace attnlab::nn {
namespace {

class NoPositionalEncoding : public PositionalEncoding {
 public:
  explicit NoPositionalEncoding(int64_t d_model) : d_model_(d_model) {}

  Tensor Forward(const Tensor& embeddings, int64_t position_offset) const override {
    CheckEmbeddingShape(embeddings, d_model_, "none");
    return embeddings;
  }

 private:
  int64_t d_model_;
};

ATTNLAB_REGISTER_POSITIONAL_ENCODING(none, "none", [](int64_t d_model, int64_t, Generator&) {
  return std::make_shared<NoPositionalEncoding>(d_model);
});

}  // namespace
}  // namespace attnlab::nn
