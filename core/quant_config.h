#pragma once
// What to quantize and how: per Keras layer a precision (float32, float16, int16, int8, int4,
// int2), a weight granularity and the calibration methods for weights and activations, plus
// the mode (../shared/seeds/002, TFLite post-training quantization: full integer, hybrid = int8 weights with float activations, or
// float16). Layers the config does not name take `defaults`.
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "quant_analysis.h"

namespace qs {

enum class Precision { Float32, Float16, Int16, Int8, Int4, Int2 };
const char* precisionName(Precision p);        // "float32", "int8", ...
std::optional<Precision> parsePrecision(const std::string& s);  // also "16", "8", "4", "2"
int weightBits(Precision p);                   // 32, 16, 16, 8, 4, 2
bool isInteger(Precision p);

enum class QuantMode { Integer, Hybrid, Float16 };
const char* quantModeName(QuantMode m);        // "integer", "hybrid", "float16"
std::optional<QuantMode> parseQuantMode(const std::string& s);

struct LayerQuant {
    Precision precision = Precision::Int8;
    Granularity granularity = Granularity::PerChannel;
    std::string weight_method = "max_abs";     // a symmetric candidate of the analysis core
    std::string activation_method = "min_max"; // min_max, percentile_99.9, percentile_99.99, mse, kl
    bool operator==(const LayerQuant&) const = default;
};

// Weight methods the integer engine takes (symmetric: zero point 0) and activation methods.
const std::vector<std::string>& weightMethods();
const std::vector<std::string>& activationMethods();

struct QuantConfig {
    QuantMode mode = QuantMode::Integer;
    LayerQuant defaults;
    std::map<std::string, LayerQuant> layers;  // by Keras layer name
    int calibration_samples = 500;

    const LayerQuant& forLayer(const std::string& layer) const {
        auto it = layers.find(layer);
        return it == layers.end() ? defaults : it->second;
    }
};

// The JSON form (schema "quantscope-config", version 1, documented in the README). Throws
// qs::Error naming `source` and the offending field.
QuantConfig quantConfigFromJson(const nlohmann::json& j, const std::string& source);
nlohmann::json quantConfigToJson(const QuantConfig& c);

}  // namespace qs
