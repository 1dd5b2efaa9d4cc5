// Hyper-parameters of the attention variants scaled down to the layer tests' tiny
// sequences (3 to 12 positions): at their defaults (local's window 16, relative's clip at
// 16, t5_bias's 32 buckets up to distance 128) no test sequence would reach a window's
// edge, a clipped distance or a shared log-spaced bucket, and the generic variant tests
// would not exercise what makes these variants different.
#pragma once

#include <cstdint>
#include <string>

#include "framework/core/error.h"
#include "layers/attention/attention.h"

namespace attnlab::nn::testing {

inline AttentionVariantOptions TinyAttentionVariantOptions() {
  struct Setting {
    const char* variant;
    const char* field;
    int64_t value;
  };
  // t5_bias, 8 buckets up to distance 6 (t5_bias.h): the encoder's distances 0 and 1 get
  // a bucket each per direction, {2, 3} and {4, 5, ...} share one; the decoder's 0-3 get
  // one each, then 4, 5 and {6, 7, ...} buckets 4, 6 and 7.
  static constexpr Setting kSettings[] = {{"local", "window", 1},
                                          {"relative", "max_relative_position", 2},
                                          {"t5_bias", "num_buckets", 8},
                                          {"t5_bias", "max_distance", 6}};
  AttentionVariantOptions options;
  for (const Setting& setting : kSettings) {
    const AttentionVariantEntry* entry = FindAttentionVariant(setting.variant);
    ATTNLAB_CHECK(entry != nullptr, "no attention variant '", setting.variant, "'");
    auto [it, inserted] = options.try_emplace(setting.variant, entry->default_options());
    bool found = false;
    for (const auto& field : entry->option_fields) {
      if (field.name != setting.field) continue;
      field.set(it->second, OptionValue(setting.value));
      found = true;
    }
    ATTNLAB_CHECK(found, "attention variant '", setting.variant, "' has no option '", setting.field,
                  "'");
  }
  return options;
}

}  // namespace attnlab::nn::testing
