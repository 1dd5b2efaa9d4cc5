// What training and decoding need from an encoder-decoder model. The Transformer and
// RnnSeq2Seq implement it; greedy and beam search (layers/decoding/) use only this.
//
// Token conventions: ids are i32; source and target sequences are padded with pad_id;
// the decoder input starts with bos_id; a hypothesis ends at eos_id.
#pragma once

#include <limits>
#include <memory>

#include "layers/module.h"

namespace attnlab::nn {

struct SpecialTokens {
  int32_t pad_id = 0;
  int32_t bos_id = 1;
  int32_t eos_id = 2;
};

// A model's decoding state for N rows (batch, or batch x beam): encoder output, caches.
struct DecoderState {
  virtual ~DecoderState() = default;
};

class Seq2SeqModel : public Module {
 public:
  // Teacher forcing: src i32 [batch, src_len], tgt_in i32 [batch, tgt_len] (bos + target
  // without its last token) -> logits [batch, tgt_len, tgt_vocab].
  virtual Tensor Forward(const Tensor& src, const Tensor& tgt_in) = 0;

  // Encodes src i32 [batch, src_len]; the state decodes one row per source row.
  virtual std::unique_ptr<DecoderState> StartDecoding(const Tensor& src) = 0;
  // One step for every row: last_tokens i32 [rows] -> log-probabilities [rows, tgt_vocab].
  virtual Tensor DecodeStep(DecoderState& state, const Tensor& last_tokens) = 0;
  // Re-indexes the rows of the state: new row i is old row indices[i] (i32 [new_rows]).
  // Beam search uses it to expand sources into beams and to follow surviving beams.
  virtual void ReorderState(DecoderState& state, const Tensor& indices) = 0;

  virtual const SpecialTokens& special_tokens() const = 0;
  virtual int64_t target_vocab_size() const = 0;
  // The most positions one decoder row can hold (a Transformer's positional table:
  // max_len); greedy and beam search stop there whatever length they were asked for.
  // Recurrent decoders have no such limit.
  virtual int64_t max_decode_positions() const { return std::numeric_limits<int64_t>::max(); }
};

// For ReorderState: rows = rows[indices] along dimension 0 (indices i32 [new_rows]); an
// undefined tensor (a part of the state the model does not use) stays undefined.
void ReorderRows(Tensor& rows, const Tensor& indices);

}  // namespace attnlab::nn
