// The schema of experiment configs: every key, its type, default, allowed range or
// choices, and what it means. It is assembled from the typed tables
// (experiment_config.h, layers/model_options.h) and from the options each registered
// attention variant declares ([attention.<variant>] tables), so a new variant's
// hyper-parameter becomes a config key without an edit here. Configs are checked
// against it strictly, and the config reference (experiments/CONFIG.md, `attnlab keys`)
// is generated from it, so the two cannot drift.
#pragma once

#include <string>
#include <vector>

#include "experiments/config/experiment_config.h"
#include "framework/core/option_fields.h"

namespace attnlab::experiments {

// One key: a field of ExperimentConfig under its dotted name ("model.d_model",
// "attention.local.window").
using ConfigKey = OptionField<ExperimentConfig>;

const std::vector<ConfigKey>& ConfigSchema();
const ConfigKey* FindConfigKey(const std::string& name);
// The schema key closest to `name` (edit distance), for "did you mean" messages.
std::string NearestConfigKey(const std::string& name);
// The key's value in a default config.
OptionValue DefaultValue(const ConfigKey& key);
// The reference page: every key grouped by table, with type, default and meaning.
std::string ConfigReferenceMarkdown();

}  // namespace attnlab::experiments
