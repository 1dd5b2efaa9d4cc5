// A module's parameter by its dotted name (`self_attn.q_proj.weight`), for tests that look
// at the shape of one weight or compute with it.
#pragma once

#include <string>

#include "framework/core/error.h"
#include "layers/module.h"

namespace attnlab::testing {

// The parameter called `name`; throws attnlab::Error (failing the test) if there is none.
inline Tensor NamedParameter(const nn::Module& module, const std::string& name) {
  for (const auto& [parameter_name, tensor] : module.NamedParameters()) {
    if (parameter_name == name) return tensor;
  }
  ATTNLAB_CHECK(false, "no parameter named ", name);
  return Tensor();
}

inline bool HasParameter(const nn::Module& module, const std::string& name) {
  for (const auto& [parameter_name, tensor] : module.NamedParameters()) {
    if (parameter_name == name) return true;
  }
  return false;
}

}  // namespace attnlab::testing
