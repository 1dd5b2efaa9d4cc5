#include "layers/positional/positional_encoding.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/ops/ops.h"

namespace attnlab::nn {
namespace {

std::map<std::string, PositionalEncodingFactory>& Registry() {
  static auto* registry = new std::map<std::string, PositionalEncodingFactory>();
  return *registry;
}

}  // namespace

void RegisterPositionalEncoding(const std::string& name, PositionalEncodingFactory factory) {
  ATTNLAB_CHECK(Registry().count(name) == 0, "positional encoding '", name, "' registered twice");
  Registry()[name] = std::move(factory);
}

absl::StatusOr<std::shared_ptr<PositionalEncoding>> MakePositionalEncoding(std::string_view name,
                                                                           int64_t d_model,
                                                                           int64_t max_len,
                                                                           Generator& generator) {
  auto it = Registry().find(std::string(name));
  if (it == Registry().end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown positional encoding '", std::string(name),
                     "'; known: ", absl::StrJoin(PositionalEncodingNames(), ", ")));
  }
  if (d_model <= 0 || max_len <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("positional encoding '", std::string(name), "' needs positive d_model and ",
                     "max_len, got d_model ", d_model, " and max_len ", max_len));
  }
  return it->second(d_model, max_len, generator);
}

std::vector<std::string> PositionalEncodingNames() {
  std::vector<std::string> names;
  for (const auto& [name, factory] : Registry()) names.push_back(name);
  return names;
}

void CheckEmbeddingShape(const Tensor& embeddings, int64_t d_model, const char* encoding_name) {
  ATTNLAB_CHECK(embeddings.defined() && embeddings.rank() == 3 && embeddings.size(2) == d_model,
                encoding_name, " positional encoding: embeddings ",
                embeddings.defined() ? embeddings.Describe() : std::string("(undefined)"),
                " should be [batch, time, ", d_model, "]");
}

Tensor PositionalEncoding::AddPositionRows(const Tensor& embeddings, const Tensor& table,
                                           int64_t position_offset,
                                           const char* encoding_name) const {
  const auto profile_scope = ProfileScope("positional_encoding");
  const int64_t max_len = table.size(0);
  CheckEmbeddingShape(embeddings, table.size(1), encoding_name);
  const int64_t time = embeddings.size(1);
  ATTNLAB_CHECK(position_offset >= 0 && position_offset + time <= max_len, encoding_name,
                " positional encoding: positions ", position_offset, "..",
                position_offset + time - 1, " exceed max_len ", max_len,
                " (raise the model's max_len, or shorten the sequence)");
  return Add(embeddings, Narrow(table, 0, position_offset, time));
}

}  // namespace attnlab::nn
