// `attnlab dump`: one forward and backward on a given batch, with dropout off, writing
// the logits, the loss and every parameter's gradient. With `init`, this lets anyone
// check attnlab's numbers against another framework (tools/make-golden does, with PyTorch).
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "experiments/trainer/checkpoint.h"
#include "experiments/trainer/model_factory.h"
#include "framework/core/error.h"
#include "framework/io/safetensors.h"
#include "framework/ops/ops.h"
#include "tools/cli/command.h"
#include "tools/cli/flags.h"

namespace attnlab::cli {
namespace {

std::vector<FlagSpec> DumpFlags() {
  return {{"config", "experiment config (TOML)"},
          {"checkpoint", "weights (e.g. from attnlab init)"},
          {"batch", "safetensors with i32 tensors src [B, S], tgt_in [B, T], tgt_out [B, T]"},
          {"out", "safetensors to write: logits, loss, grad.<parameter name>"},
          {"set", "override a config key: table.key=value", true, true},
          ThreadsFlag()};
}

absl::StatusOr<Tensor> BatchTensor(const SafetensorsContents& batch, const std::string& name,
                                   const std::string& path) {
  for (const auto& [tensor_name, tensor] : batch.tensors) {
    if (tensor_name != name) continue;
    if (tensor.dtype() != DType::kI32 || tensor.rank() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": '", name, "' must be i32 [batch, len], is ", tensor.Describe()));
    }
    return tensor;
  }
  return absl::InvalidArgumentError(absl::StrCat(path, ": no tensor '", name, "'"));
}

absl::Status RunDump(const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(const ParsedFlags flags, ParseFlags(args, DumpFlags()));
  for (const char* required : {"config", "checkpoint", "batch", "out"}) {
    if (!flags.Has(required))
      return absl::InvalidArgumentError(absl::StrCat("missing --", required));
  }
  RETURN_IF_ERROR(ApplyThreadsFlag(flags));
  ASSIGN_OR_RETURN(const experiments::Config config,
                   experiments::Config::Load(flags.Get("config"), flags.GetAll("set")));
  ASSIGN_OR_RETURN(const experiments::CheckpointContents contents,
                   experiments::ReadCheckpointMetadata(flags.Get("checkpoint")));
  ASSIGN_OR_RETURN(
      const auto model,
      experiments::BuildModel(config, static_cast<int64_t>(contents.source_vocabulary.size()),
                              static_cast<int64_t>(contents.target_vocabulary.size())));
  RETURN_IF_ERROR(experiments::LoadCheckpoint(flags.Get("checkpoint"), *model, nullptr).status());
  ASSIGN_OR_RETURN(const SafetensorsContents batch, ReadSafetensors(flags.Get("batch")));
  ASSIGN_OR_RETURN(const Tensor src, BatchTensor(batch, "src", flags.Get("batch")));
  ASSIGN_OR_RETURN(const Tensor tgt_in, BatchTensor(batch, "tgt_in", flags.Get("batch")));
  ASSIGN_OR_RETURN(const Tensor tgt_out, BatchTensor(batch, "tgt_out", flags.Get("batch")));
  if (tgt_in.shape() != tgt_out.shape() || src.size(0) != tgt_in.size(0)) {
    return absl::InvalidArgumentError(absl::StrCat("batch shapes do not agree: src ",
                                                   src.Describe(), ", tgt_in ", tgt_in.Describe(),
                                                   ", tgt_out ", tgt_out.Describe()));
  }
  const auto check_ids = [](const Tensor& ids, int64_t vocab, const char* name) -> absl::Status {
    for (int32_t id : ids.ToInts()) {
      if (id < 0 || id >= vocab) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, " holds id ", id, " outside the vocabulary [0, ", vocab, ")"));
      }
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(check_ids(src, static_cast<int64_t>(contents.source_vocabulary.size()), "src"));
  RETURN_IF_ERROR(
      check_ids(tgt_in, static_cast<int64_t>(contents.target_vocabulary.size()), "tgt_in"));
  RETURN_IF_ERROR(
      check_ids(tgt_out, static_cast<int64_t>(contents.target_vocabulary.size()), "tgt_out"));

  model->Eval();  // dropout off
  const Tensor logits = model->Forward(src, tgt_in);
  const Tensor loss = CrossEntropy(Reshape(logits, {-1, logits.size(-1)}), Reshape(tgt_out, {-1}),
                                   static_cast<float>(config.train().label_smoothing),
                                   model->special_tokens().pad_id);
  loss.backward();
  NamedTensors out = {{"logits", logits}, {"loss", loss}};
  for (const auto& [name, parameter] : model->NamedParameters()) {
    out.emplace_back("grad." + name, parameter.grad().defined() ? parameter.grad()
                                                                : Tensor::Zeros(parameter.shape()));
  }
  RETURN_IF_ERROR(WriteSafetensors(flags.Get("out"), out, {{"loss", absl::StrCat(loss.item())}}));
  std::printf("loss %.6f; wrote logits, loss and %zu gradients to %s\n", loss.item(),
              out.size() - 2, flags.Get("out").c_str());
  return absl::OkStatus();
}

const std::string kUsage = absl::StrCat(
    "usage: attnlab dump --config=C --checkpoint=P --batch=B --out=O\n\n"
    "Runs one forward and backward pass (dropout off) of C's model with P's weights on the\n"
    "batch B and writes `logits` [B, T, V], `loss` [] (label-smoothed cross-entropy as in\n"
    "training, padding ignored) and `grad.<parameter name>` for every parameter to O.\n\nflags:\n",
    FlagsHelp(DumpFlags()));

ATTNLAB_COMMAND(dump, "dump", "forward+backward on a batch: logits, loss, gradients",
                kUsage.c_str(), RunDump);

}  // namespace
}  // namespace attnlab::cli
