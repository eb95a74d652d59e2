#pragma once
// Float and quantized side by side on a dataset: what `eval` prints and the GUI's evaluation
// panel shows. Quantizes the model (calibrating on `calibration`), then evaluates the float
// engine, the integer engine and the fake-quant simulation on `test`, and measures per-op
// SQNR of the integer engine against the float graph, sizes and peak activation memory.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/quantized_engine.h"
#include "eval/evaluation.h"
#include "model/model.h"
#include "quant/quant_config.h"

namespace qs {

struct OpReport {
    std::string name, layer, kind, domain, precision;
    int weight_bits = 32;
    double sqnr_db = 0;          // integer engine vs float graph, this op's output
    int64_t weight_bytes = 0;
    float range_lo = 0, range_hi = 0;
    double scale = 0;
    int32_t zero_point = 0;
};

struct Comparison {
    EvalResult float_result, quantized, fake_quant;
    double agreement_float = 0;       // integer engine vs float model, top-1 predictions
    double agreement_fake_quant = 0;  // integer engine vs the simulation
    std::vector<OpReport> ops;
    int64_t float_bytes = 0, quantized_bytes = 0;
    int64_t float_peak_activation_bytes = 0, quantized_peak_activation_bytes = 0;
    int64_t calibration_samples = 0, sqnr_samples = 0;
    double seconds_float = 0, seconds_quantized = 0, seconds_fake_quant = 0, seconds_calibration = 0;
    std::vector<std::string> notes;
};

struct CompareOptions {
    int sqnr_samples = 200;
    bool fake_quant = true;
    int threads = 0;
    // The float model's result on this same test set and preprocessing, when an earlier
    // comparison has it (several configs of one model): reused instead of evaluated again.
    const EvalResult* float_result = nullptr;
    double float_seconds = 0;  // what that evaluation took, reported again
};

Comparison compareQuantized(const Model& model, const QuantConfig& config, const ImageDataset& test,
                            const RowMatrix& calibration, const Preprocessing& pre, const CompareOptions& options = {},
                            const Progress& progress = Progress::none());

// Per-op SQNR (dB) of a quantized run against the folded float graph on `samples`.
std::vector<double> perOpSqnr(const QuantizedModel& qm, QuantizedRun how, const RowMatrix& samples);

nlohmann::json comparisonJson(const Comparison& c);

}  // namespace qs
