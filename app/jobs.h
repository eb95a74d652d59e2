#pragma once
// QtConcurrent glue: long core operations run off the GUI thread in promise mode, map
// qs::Progress onto the promise's progress and cancellation, and return a value that holds
// either the result or the error text (no exception crosses threads).
#include <QFuture>
#include <QFutureWatcher>
#include <QString>

#include <memory>
#include <optional>

#include "eval/mixed_precision.h"
#include "eval/quantized_evaluation.h"
#include "formats/model_loader.h"
#include "model/model.h"
#include "quant/quant_analysis.h"

// Stops the job `w` watches and waits for it to end: the job a newer one replaces, and in a
// destructor (after w.disconnect), so no job outlives what handles its results.
inline void cancelAndWait(QFutureWatcherBase& w) {
    w.cancel();
    w.waitForFinished();
}

struct LoadResult {
    QString path;
    std::shared_ptr<const qs::Model> model;  // null on failure or cancel
    QString error;                            // one line naming the file and the problem
    bool cancelled = false;
    bool structure_only = false;              // layers and shapes, no values (the first of two results)
};

// Two results: the structure (LoadOptions::values = false), then the whole model; one result
// (the error, or the cancel) when the structure cannot be read.
QFuture<LoadResult> startLoadModel(const QString& path, const qs::LoadOptions& options);

// Analyses of layer kernels at given bit widths and granularities (the slow part of per-layer
// tuning: every candidate's statistics), one result per request, in request order.
struct AnalysisRequest {
    int row = 0;
    int bits = 8;
    qs::Granularity granularity = qs::Granularity::PerChannel;
};
struct AnalysisResult {
    AnalysisRequest request;
    std::shared_ptr<const qs::TensorAnalysis> analysis;  // null when it failed
    QString error;
};
QFuture<AnalysisResult> startAnalyses(std::shared_ptr<const qs::Model> model, std::vector<AnalysisRequest> requests);

// Quantize with `config` and evaluate float, integer and fake-quant on the test set.
// x = (v / scale - mean) / std; no scale: inferred from the data (as the CLI infers it).
struct PreprocessingChoice {
    std::optional<double> scale;
    double mean = 0, std = 1;
};

struct EvaluationResult {
    std::shared_ptr<const qs::Comparison> comparison;  // null on failure or cancel
    qs::QuantConfig config;                             // what was evaluated (for snapshots)
    qs::Preprocessing preprocessing;                    // what was applied, and why
    QString preprocessing_source;
    QString error;
    bool cancelled = false;
};
QFuture<EvaluationResult> startEvaluation(std::shared_ptr<const qs::Model> model, qs::QuantConfig config, QString data_path,
                                          PreprocessingChoice pre = {});

// Sensitivity of every layer over the grid, then the mixed-precision search under `budget`
// (core/eval/mixed_precision.h), on the test set split into search and held-out halves.
struct SuggestResult {
    std::shared_ptr<const qs::SensitivityTable> table;  // null on failure or cancel
    std::shared_ptr<const qs::SearchResult> search;
    QString error;
    bool cancelled = false;
};
QFuture<SuggestResult> startSuggest(std::shared_ptr<const qs::Model> model, QString data_path, PreprocessingChoice pre,
                                    qs::SearchBudget budget);
