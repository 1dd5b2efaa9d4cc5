// Greedy decoding: at every step each row takes its most probable next token (never pad
// or bos, see decode_result.h). All rows advance together; a row stops at eos, and
// decoding stops when every row has stopped or after max_len tokens. Runs without
// autograd and in evaluation mode (restored after).
#pragma once

#include <cstdint>

#include "framework/tensor/tensor.h"
#include "layers/decoding/decode_result.h"
#include "layers/decoding/seq2seq_model.h"

namespace attnlab::nn {

// src: i32 [batch, src_len]. max_len bounds the generated tokens per row, eos included
// (and never exceeds the model's max_decode_positions()).
// A row's score is the sum of the log-probabilities of its tokens (eos included).
DecodeResult GreedyDecode(Seq2SeqModel& model, const Tensor& src, int64_t max_len);

}  // namespace attnlab::nn
