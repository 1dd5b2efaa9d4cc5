// Learned absolute positional embeddings (Gehring et al. 2017, ConvS2S, section 3.1;
// Vaswani et al. 2017, 3.5 and table 3 row (E), found nearly identical to sinusoids; the
// choice of GPT and BERT): a parameter `weight` [max_len, d_model], row p added to the
// embedding at position p.
//
// Initialisation: N(0, 0.02^2), as GPT-2 and BERT initialise theirs. Small next to
// token embeddings, so the model starts close to position-free and learns positions as
// the data asks; a unit-scale init would swamp the token signal at d_model = 8..64.
#include "layers/init.h"
#include "layers/positional/positional_encoding.h"

namespace attnlab::nn {
namespace {

constexpr float kLearnedPositionStddev = 0.02f;

class LearnedPositionalEncoding : public PositionalEncoding {
 public:
  LearnedPositionalEncoding(int64_t d_model, int64_t max_len, Generator& generator) {
    Tensor weight = Tensor::Empty({max_len, d_model});
    init::Normal(weight, 0.0f, kLearnedPositionStddev, generator);
    weight_ = RegisterParameter("weight", weight);
  }

  // [batch, time, d] + weight[offset : offset + time] broadcast over the batch; rows
  // outside the window receive no gradient.
  Tensor Forward(const Tensor& embeddings, int64_t position_offset) const override {
    return AddPositionRows(embeddings, weight_, position_offset, "learned");
  }

 private:
  Tensor weight_;  // [max_len, d_model]
};

ATTNLAB_REGISTER_POSITIONAL_ENCODING(learned, "learned",
                                     [](int64_t d_model, int64_t max_len, Generator& generator) {
                                       return std::make_shared<LearnedPositionalEncoding>(
                                           d_model, max_len, generator);
                                     });

}  // namespace
}  // namespace attnlab::nn
