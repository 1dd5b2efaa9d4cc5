// The CMU Pronouncing Dictionary reader (the npm package's ES module), with and without
// stress digits.
#include <string>

#include "experiments/tasks/cmudict_parser.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(attnlab::fuzz::AsText(data, size));
  for (const bool keep_stress : {false, true}) {
    (void)attnlab::experiments::ParseCmudict(text, "cmudict/index.js", keep_stress);
  }
  return 0;
}
