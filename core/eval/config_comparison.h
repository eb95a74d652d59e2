#pragma once
// Several quantization configs of one model, each with its evaluation: the data behind the
// comparison charts (accuracy vs size with the Pareto front, per-layer SQNR and size bars)
// that the GUI's snapshots and `quantscope-cli report` draw, and the report's HTML and JSON.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/quantized_evaluation.h"
#include "quant/quant_config.h"

namespace qs {

// One named config and what it evaluated to (a GUI snapshot, or one --config of a report).
struct ConfigRun {
    std::string name;
    QuantConfig config;
    Comparison result;
};

// Indices of the points on the Pareto front of (smaller size, higher accuracy): no other
// point is at least as small and at least as accurate and better in one of the two. Sorted by
// size, ascending. Ties (equal size and accuracy) all stay on the front.
std::vector<size_t> paretoFront(const std::vector<double>& sizes, const std::vector<double>& accuracies);

// The runs' Pareto front on (quantized size, quantized top-1).
std::vector<size_t> paretoFront(const std::vector<ConfigRun>& runs);

// Per-layer values of every run, for the grouped bars: the ops that hold weights (weight_bits
// > 0; the input op's bytes are only its scale), in graph order of the first run; a run
// without that op gets NaN.
struct LayerSeries {
    std::vector<std::string> layers;
    std::vector<std::vector<double>> sqnr_db;  // [run][layer], integer engine vs float
    std::vector<std::vector<double>> bytes;    // [run][layer], packed weights + scales + bias
    std::vector<std::vector<std::string>> precision;  // [run][layer], "int8", ...
};
LayerSeries layerSeries(const std::vector<ConfigRun>& runs);

// A short description of a run's weight precisions: "int8" when all weighted ops agree,
// else "mixed: 2x int4, 2x int8"; hybrid and float16 modes say so.
std::string precisionSummary(const Comparison& c);

// Where the report came from, for its header.
struct ReportInfo {
    std::string model, data;
    int64_t images = 0;
    std::vector<std::string> chart_files;  // relative to the report, shown in order
};

// The numbers of a report: per run the summary row and per-layer values, plus the float
// baseline and the Pareto front (names). Documented in README.md.
nlohmann::json comparisonReportJson(const std::vector<ConfigRun>& runs, const ReportInfo& info);

// A self-contained report.html: header, the charts, the summary table and the per-layer table.
std::string comparisonReportHtml(const std::vector<ConfigRun>& runs, const ReportInfo& info);

}  // namespace qs
