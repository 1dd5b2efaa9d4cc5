#include "layers/decoding/seq2seq_model.h"

#include "framework/ops/ops.h"

namespace attnlab::nn {

void ReorderRows(Tensor& rows, const Tensor& indices) {
  if (rows.defined()) rows = IndexSelect(rows, 0, indices);
}

}  // namespace attnlab::nn
