// Positional encodings: one interface and a registry, as for attention variants. A
// config picks one by name (`positional = "sinusoidal"`); a new scheme is one file and
// one ATTNLAB_REGISTER_POSITIONAL_ENCODING line.
//
// An encoding adds position information to token embeddings [batch, time, d_model]
// (the embedding scaling by sqrt(d_model) of Vaswani et al. 3.4 and the dropout after
// the sum belong to the model, not here). Schemes that act inside attention instead
// (RoPE) leave the embeddings alone and answer rotary() = true: the model then sets
// MultiHeadAttentionOptions::rotary.
//
// Registered: "sinusoidal" (Vaswani et al. 2017, 3.5), "learned" (Gehring et al. 2017;
// GPT, BERT), "none" (identity; e.g. with ALiBi attention) and "rope" (Su et al. 2021).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/random/generator.h"
#include "layers/module.h"

namespace attnlab::nn {

class PositionalEncoding : public Module {
 public:
  // embeddings: [batch, time, d_model]; row t is at absolute position t + position_offset
  // (the number of tokens already decoded when decoding incrementally). Returns
  // [batch, time, d_model]. A table-based encoding throws attnlab::Error for positions
  // at or beyond its max_len.
  virtual Tensor Forward(const Tensor& embeddings, int64_t position_offset) const = 0;
  // True when positions are applied to queries and keys inside attention (RoPE).
  virtual bool rotary() const { return false; }

 protected:
  // The Forward() of a table-based encoding (`encoding_name`, e.g. "learned"):
  // embeddings [batch, time, d_model] + table[position_offset : position_offset + time]
  // broadcast over the batch, where table is [max_len, d_model]. Throws attnlab::Error
  // for embeddings of another shape and for positions at or beyond max_len.
  Tensor AddPositionRows(const Tensor& embeddings, const Tensor& table, int64_t position_offset,
                         const char* encoding_name) const;
};

// ---- Registry ----------------------------------------------------------------------
using PositionalEncodingFactory = std::function<std::shared_ptr<PositionalEncoding>(
    int64_t d_model, int64_t max_len, Generator& generator)>;

void RegisterPositionalEncoding(const std::string& name, PositionalEncodingFactory factory);
// The encoding registered as `name`; an unknown name (or a non-positive d_model or
// max_len) is an error, the former listing the known names.
absl::StatusOr<std::shared_ptr<PositionalEncoding>> MakePositionalEncoding(std::string_view name,
                                                                           int64_t d_model,
                                                                           int64_t max_len,
                                                                           Generator& generator);
std::vector<std::string> PositionalEncodingNames();

struct PositionalEncodingRegistration {
  PositionalEncodingRegistration(const std::string& name, PositionalEncodingFactory factory) {
    RegisterPositionalEncoding(name, std::move(factory));
  }
};

// Checks that embeddings are [batch, time, d_model]; for encodings' Forward().
void CheckEmbeddingShape(const Tensor& embeddings, int64_t d_model, const char* encoding_name);

}  // namespace attnlab::nn

// At namespace scope in the encoding's file:
// ATTNLAB_REGISTER_POSITIONAL_ENCODING(sinusoidal, "sinusoidal", factory).
#define ATTNLAB_REGISTER_POSITIONAL_ENCODING(identifier, name, factory) \
  static ::attnlab::nn::PositionalEncodingRegistration                  \
      positional_encoding_registration_##identifier(name, factory)
