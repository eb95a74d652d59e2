#pragma once
// What to quantize and how: per Keras layer a precision (float32, float16, int16, int8, int4,
// int2), a weight granularity and the calibration methods for weights and activations, plus
// the mode (../shared/seeds/002, TFLite post-training quantization: full integer, hybrid = int8 weights with float activations, or
// float16). Layers the config does not name take `defaults`.
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "model/model.h"
#include "quant/quant_analysis.h"

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
    // Output activations of an integer layer: 8 or 16 bits (int16 with 8-bit or narrower weights
    // is TFLite's 16x8 mode); 0 = implied by the precision (16 for int16, else 8).
    int activation_bits = 0;
    // Bias correction: the expected output shift the weight rounding causes, measured from the
    // calibration inputs' channel means, is taken off the bias (helps at 4 and 2 bits).
    bool bias_correction = false;
    // GPTQ rounding (quant/gptq.h) instead of rounding to nearest: Dense and Conv2D layers whose
    // GEMM depth is at most 1024; others round to nearest.
    bool gptq = false;
    bool operator==(const LayerQuant&) const = default;
};

// The activation width an integer layer runs at (8 or 16).
int activationBits(const LayerQuant& q);

// Weight methods the integer engine takes (symmetric: zero point 0) and activation methods.
const std::vector<std::string>& weightMethods();
const std::vector<std::string>& activationMethods();

// `q` with the analysis candidate `method` as its weights: a symmetric method becomes the
// weight method, "float16" the precision; nullopt for a candidate the integer engine cannot
// take (asymmetric min_max: shown for comparison only).
std::optional<LayerQuant> withCandidate(LayerQuant q, const std::string& method);

// The weight scales a layer's settings gave when the config was saved (per output channel,
// or one), of the Keras kernel as stored (before BatchNormalization folding). A record for
// readers of the file (and for exports); on load against a model they are checked, so a
// config saved for a different or retrained model is noticed.
struct LayerScales {
    std::vector<double> scales;
    std::vector<int32_t> zero_points;
    bool operator==(const LayerScales&) const = default;
};

struct QuantConfig {
    QuantMode mode = QuantMode::Integer;
    LayerQuant defaults;
    std::map<std::string, LayerQuant> layers;  // by Keras layer name
    std::map<std::string, LayerScales> scales; // by Keras layer name (optional record)
    int calibration_samples = 500;
    std::string calibration_dataset;          // the test set / folder calibrated on, as given

    const LayerQuant& forLayer(const std::string& layer) const {
        auto it = layers.find(layer);
        return it == layers.end() ? defaults : it->second;
    }
};

// The JSON form (schema "quantscope-config", version 1, documented in the README). Throws
// qs::Error naming `source` and the offending field.
QuantConfig quantConfigFromJson(const nlohmann::json& j, const std::string& source);
nlohmann::json quantConfigToJson(const QuantConfig& c);

// One layer's settings as the config stores them ("precision", "granularity", ...), read over
// `base` (fields it leaves out); `allow_scales` skips the "scales"/"zero_points" record.
LayerQuant layerQuantFromJson(const nlohmann::json& j, const LayerQuant& base, const std::string& source, const std::string& where,
                              bool allow_scales = false);
nlohmann::json layerQuantToJson(const LayerQuant& l);

// Files: parse errors and bad fields name the file and the field; a save is atomic
// (atomic_file.h) and ends with a newline, so save -> load -> save gives identical bytes.
QuantConfig loadQuantConfig(const std::string& path);
void saveQuantConfig(const std::string& path, const QuantConfig& c);

// The weight tensor a layer quantizes: its first tensor of rank >= 2 (Dense/Conv kernel, the
// depthwise kernel of SeparableConv2D), or null.
const Tensor* layerKernel(const Layer& layer);

// Checks a config against the model it is applied to: every named layer exists and has a
// kernel, recorded scales have one entry per output channel (or one, per-tensor), are finite
// and positive. Throws qs::Error naming `source` and the field.
void checkConfigAgainstModel(const QuantConfig& c, const Model& model, const std::string& source);

// The candidate a layer's settings (bits, granularity, weight method) pick for a kernel with
// `channels` output channels (analysis core, no error histograms; threads 0: all cores).
Candidate weightCandidate(const Tensor& kernel, int64_t channels, const LayerQuant& q, int threads = 0);

// Fills c.scales for every layer with a kernel and an integer precision, from the analysis
// core with each layer's bits, granularity and weight method.
void recordScales(QuantConfig& c, const Model& model);

// One --layer SPEC of the CLI: "8", "4", "16", "2", "float16", "float32", optionally followed
// by ":per-tensor" / ":per-channel", ":METHOD", ":a16" / ":a8" (activation width), ":bc"
// (bias correction) and ":gptq" (GPTQ rounding), e.g. "8:per-tensor:pow2" or "4:gptq:bc", applied over
// `base`. Throws qs::Error (file "--layer") naming the bad part.
LayerQuant parseLayerSpec(const std::string& spec, const LayerQuant& base);

}  // namespace qs
