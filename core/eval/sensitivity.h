#pragma once
// Per-layer sensitivity: which layers can take fewer bits, and what each choice costs.
//
// For every quantizable layer (a Keras layer with a kernel: Dense, Conv2D, DepthwiseConv2D,
// SeparableConv2D) and every setting of a grid — weights 8/4/2 bits per channel and per tensor;
// at 4 and 2 bits also with bias correction, and with GPTQ rounding plus bias correction; 8/4
// bits with int16 activations and 16 bits (per channel); each with the weight method of lowest
// MSE at that width; float16 as the fall-back — that layer alone is
// quantized on top of a baseline (every other layer at the default int8 config, or float32) and
// the integer engine runs the search images. Measured per cell: top-1, agreement with the
// float model's top-1, SQNR of the outputs against float and the KL divergence of the output
// distributions (smooth signals that need far fewer images than top-1), and the model's exact
// size in bytes with that setting (packed weights + scales + biases, as eval counts them).
//
// The float graph is calibrated once for all cells (GraphCalibration), and for each layer the
// baseline's integer activations are computed once per batch and reused: only the ops from the
// changed layer on run again for each setting (QuantizedTrace).
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/progress.h"
#include "engine/quantized_model.h"
#include "model/model.h"
#include "quant/quant_config.h"

namespace qs {

enum class SensitivityBaseline { Int8, Float };
const char* baselineName(SensitivityBaseline b);  // "int8", "float"

// The float model's outputs on the images a measurement runs, with their labels.
struct ReferenceOutputs {
    RowMatrix rows;      // preprocessed images, one per row
    RowMatrix float_out; // the float model's outputs on them
    std::vector<int32_t> labels;
    bool probabilities = false;  // the outputs are distributions (a softmax ends the model): KL takes them as they are
};
// `fallback_input` as in FloatEngine.
ReferenceOutputs referenceOutputs(const Model& model, RowMatrix rows, std::vector<int32_t> labels, const Shape& fallback_input = {},
                                  int threads = 0);

// What one config (or one cell) does on a set of images.
struct OutputScore {
    int64_t n = 0;
    double top1 = 0, agreement = 0;  // fractions
    double sqnr_db = 0;              // outputs against float; +inf when identical
    double kl = 0;                   // mean KL(float || quantized) of the output distributions, nats
};
// Scores quantized outputs against the reference (outputs that are not probabilities are
// turned into them with a softmax for the KL).
OutputScore scoreOutputs(const RowMatrix& out, const ReferenceOutputs& ref);

// The integer engine's score of one config on a set of images (both cores), and the quantized
// model's size in bytes.
OutputScore scoreConfig(const Model& model, const GraphCalibration& calibration, const QuantConfig& config, const ReferenceOutputs& ref,
                        int threads = 0, int64_t* bytes = nullptr, const Progress& progress = Progress::none());

// A layer's settings in the grid, in a fixed order; labels such as "w4/pc/a8", "w4/pt/a8/bc"
// (bias correction), "w16/pt/a16", "float16". The weight method is left as in `base` (see bestWeightMethods).
struct GridSetting {
    std::string label;
    LayerQuant quant;
};
std::vector<GridSetting> sensitivityGrid(const LayerQuant& base);

// The symmetric weight method (quant_config.h weightMethods) with the lowest MSE for `kernel`
// at `bits` and `granularity` (the analysis core's candidates).
std::string bestWeightMethod(const Tensor& kernel, int64_t channels, int bits, Granularity granularity);

struct SensitivityCell {
    std::string layer, setting;  // Keras layer name, grid label
    LayerQuant quant;
    OutputScore score;
    int64_t model_bytes = 0;     // the whole quantized model with this cell's setting
};

struct SensitivityTable {
    std::string model;                  // file name, for merging checks
    SensitivityBaseline baseline = SensitivityBaseline::Int8;
    LayerQuant defaults;                // the baseline's layers (int8) before the grid changes one
    int64_t samples = 0;                // search images measured (the first ones of the search split)
    int64_t calibration_samples = 0;
    double float_top1 = 0;              // on the search images
    OutputScore baseline_score;
    int64_t baseline_bytes = 0, float_bytes = 0;
    std::vector<std::string> layers;    // every quantizable layer, model order
    std::vector<int64_t> layer_weights; // kernel elements per layer (for bits per weight)
    int shard = 0, shards = 1;          // which layers this table measured (layer index % shards)
    std::vector<SensitivityCell> cells; // layer-major, grid order

    const SensitivityCell* find(const std::string& layer, const std::string& setting) const;
};

struct SensitivityOptions {
    SensitivityBaseline baseline = SensitivityBaseline::Int8;
    LayerQuant defaults;  // the int8 defaults (activation method, weight method of the baseline)
    int shard = 0, shards = 1;
    int threads = 0;
    int batch = 128;
    // The first this many search images (0: all). KL and SQNR are smooth: 2,000 images rank the
    // settings as 5,000 do, and the search evaluates its configs on all of them anyway.
    int64_t max_images = 2000;
};

// The first `n` images of a reference set.
ReferenceOutputs firstImages(const ReferenceOutputs& ref, int64_t n);

// Layers that take a per-layer precision: Keras layers with a kernel that the lowered graph
// runs as a weighted op.
std::vector<std::string> quantizableLayers(const Model& model, const OpGraph& graph);

// Measures the grid for the layers of this shard. Throws Cancelled or qs::Error.
SensitivityTable measureSensitivity(const Model& model, const GraphCalibration& calibration, const ReferenceOutputs& search,
                                    const SensitivityOptions& options, const Progress& progress = Progress::none());

// Points of top-1 the layer loses against the baseline at its best setting with `bits`-bit
// weights (NaN when the table has no such cell): the one-number summary the GUI's column shows.
double bestDropAt(const SensitivityTable& t, const std::string& layer, int bits);

// The baseline config of a table (every layer at its defaults, or float32).
QuantConfig baselineConfig(const SensitivityTable& t);

// JSON (schema "quantscope-sensitivity", version 1) and back; tables of several shards of one
// run merge into the whole table (same model, baseline, samples; every layer measured once).
nlohmann::json sensitivityJson(const SensitivityTable& t);
SensitivityTable sensitivityFromJson(const nlohmann::json& j, const std::string& source);
SensitivityTable mergeSensitivity(const std::vector<SensitivityTable>& parts, const std::string& source);
std::string sensitivityCsv(const SensitivityTable& t);
std::string sensitivityText(const SensitivityTable& t);

}  // namespace qs
