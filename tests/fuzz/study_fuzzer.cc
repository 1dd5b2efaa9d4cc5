// The study parser (experiments/ablation/study.h) and the expansion of a parsed study
// into its cells. The base config a study names is not read: planning a study (which
// loads it and looks at run directories) is not fuzzed.
#include <string>

#include "experiments/ablation/cells.h"
#include "experiments/ablation/study.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(attnlab::fuzz::AsText(data, size));
  const absl::StatusOr<attnlab::experiments::Study> study =
      attnlab::experiments::ParseStudy(text, "experiments/ablations/fuzz.toml");
  if (!study.ok()) return 0;
  (void)attnlab::experiments::ExpandCells(*study);
  return 0;
}
