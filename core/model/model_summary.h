#pragma once
// What `quantscope-cli inspect` reports, as JSON (schema in README.md) and as a text table.
#include <string>

#include <nlohmann/json.hpp>

#include "model/model.h"

namespace qs {

nlohmann::json modelSummaryJson(const Model& model);
std::string modelSummaryText(const Model& model);

}  // namespace qs
