#pragma once
// Whole-model analysis (every quantizable weight tensor) and its JSON / CSV / text forms, as
// `quantscope-cli analyze` prints them (schema in README.md).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/progress.h"
#include "model/model.h"
#include "quant/quant_analysis.h"

namespace qs {

struct LayerAnalysis {
    std::string layer;
    std::vector<TensorAnalysis> tensors;
};

// Kernels and embeddings (rank >= 2) of every layer; with `all_tensors` also 1-D tensors
// (biases, BatchNormalization vectors), which deployment keeps in int32 or folds away.
std::vector<LayerAnalysis> analyzeModel(const Model& model, const AnalysisOptions& options, bool all_tensors,
                                        const Progress& progress = Progress::none());
// The same at several bit widths (one list per entry of `widths`, in order); each tensor's
// statistics and histograms are computed once for all its widths (prepareAnalysis).
std::vector<std::vector<LayerAnalysis>> analyzeModelWidths(const Model& model, const AnalysisOptions& options,
                                                           const std::vector<int>& widths, bool all_tensors,
                                                           const Progress& progress = Progress::none());

nlohmann::json analysisJson(const std::vector<LayerAnalysis>& layers, const AnalysisOptions& options);
std::string analysisCsv(const std::vector<LayerAnalysis>& layers);
// Text table; `only_chosen` prints just the picked candidate per tensor.
std::string analysisText(const std::vector<LayerAnalysis>& layers, bool only_chosen);

}  // namespace qs
