// Sinusoidal positional encoding, Vaswani et al. 2017, section 3.5:
//   PE(pos, 2i)   = sin(pos / 10000^(2i / d_model))
//   PE(pos, 2i+1) = cos(pos / 10000^(2i / d_model))
// added to the embeddings. The [max_len, d_model] table is computed once (in double,
// then rounded) and kept as a non-persistent buffer: it is a function of the shape, so
// checkpoints leave it out and an old checkpoint loads into a model with another max_len.
#include <cmath>

#include "layers/positional/positional_encoding.h"

namespace attnlab::nn {
namespace {

class SinusoidalPositionalEncoding : public PositionalEncoding {
 public:
  SinusoidalPositionalEncoding(int64_t d_model, int64_t max_len) {
    Tensor table = Tensor::Empty({max_len, d_model});  // [max_len, d_model]
    float* values = table.data<float>();
    for (int64_t pos = 0; pos < max_len; ++pos) {
      for (int64_t channel = 0; channel < d_model; ++channel) {
        const int64_t pair = channel / 2;  // i in the paper's formula
        const double angle =
            static_cast<double>(pos) / std::pow(10000.0, 2.0 * pair / static_cast<double>(d_model));
        values[pos * d_model + channel] =
            static_cast<float>(channel % 2 == 0 ? std::sin(angle) : std::cos(angle));
      }
    }
    table_ = RegisterBuffer("table", table, /*persistent=*/false);
  }

  // [batch, time, d] + table[offset : offset + time] broadcast over the batch.
  Tensor Forward(const Tensor& embeddings, int64_t position_offset) const override {
    return AddPositionRows(embeddings, table_, position_offset, "sinusoidal");
  }

 private:
  Tensor table_;  // [max_len, d_model]
};

ATTNLAB_REGISTER_POSITIONAL_ENCODING(sinusoidal, "sinusoidal",
                                     [](int64_t d_model, int64_t max_len, Generator&) {
                                       return std::make_shared<SinusoidalPositionalEncoding>(
                                           d_model, max_len);
                                     });

}  // namespace
}  // namespace attnlab::nn
