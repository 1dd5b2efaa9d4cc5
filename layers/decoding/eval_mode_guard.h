// Puts a module in evaluation mode (no dropout) for its scope and restores the previous
// mode afterwards, so decoding in the middle of training leaves training mode on.
#pragma once

#include "layers/module.h"

namespace attnlab::nn {

class EvalModeGuard {
 public:
  explicit EvalModeGuard(Module& module) : module_(module), was_training_(module.is_training()) {
    module_.Eval();
  }
  ~EvalModeGuard() { module_.Train(was_training_); }
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  Module& module_;
  bool was_training_;
};

}  // namespace attnlab::nn
