#pragma once
// Automatic mixed precision: from a sensitivity table (sensitivity.h), the configs that trade
// accuracy for size best, each evaluated for real with the integer engine.
//
// The search: candidate configs come from (1) a greedy descent that walks each layer down the
// lower convex hull of its (bytes, loss) options, always taking the step that loses the least
// estimated accuracy per byte saved, and (2) an exact knapsack over the measured losses (as
// HAWQ-V3's integer programme) at the budget and at a ladder of 16 sizes. The estimate adds the
// layers' KL divergence increases (estimatedLoss below: smooth where single-layer top-1 drops
// are noise), scaled to points of top-1. Losses do not add up exactly, so every candidate
// (up to max_evaluations, the all-int8 baseline always among them) is quantized and run on the
// search images, the Pareto front is built from those real results and the budget picks from
// it; the pick is then refined by one-layer changes kept only when a real run confirms them.
// The front's points and the pick are scored on the held-out images, which the search never saw.
#include <string>
#include <vector>

#include "data/idx_dataset.h"
#include "data/preprocessing.h"
#include "eval/sensitivity.h"

namespace qs {

// The test set split for a search: images [0, search) for the search, [search, n) held out, so
// the reported accuracy is measured on images the search never saw. `search_images` 0: half.
struct TestSplit {
    int64_t search_begin = 0, search_count = 0, heldout_begin = 0, heldout_count = 0;
};
TestSplit splitForSearch(int64_t n, int64_t search_images = 0);

// What a sensitivity measurement and a search run on: the model calibrated once (on
// `calibration_samples` images of the training split beside `data_path` when there is one, as
// eval does), and the float references of the search and held-out parts of `test`.
struct SearchSetup {
    GraphCalibration calibration;
    ReferenceOutputs search, heldout;
    TestSplit split;
    std::string calibration_source;
};
SearchSetup prepareSearch(const Model& model, const std::string& data_path, const ImageDataset& test, const Preprocessing& pre,
                          int64_t calibration_samples = 500, int64_t search_images = 0, const Progress& progress = Progress::none());

struct SearchBudget {
    enum Kind { MaxDrop, BitsPerWeight, MaxBytes } kind = MaxDrop;
    double value = 1.0;  // points of top-1; bits per weight; bytes
};

struct SearchPoint {
    std::string origin;                   // "int8 baseline", "path 7", ...
    QuantConfig config;
    std::vector<std::string> settings;    // per table layer, its grid label
    int64_t bytes = 0;                    // the quantized model, exact
    double bits_per_weight = 0;           // kernel weights' average width
    double estimated_drop = 0;            // points of top-1 against float, from the table
    OutputScore search, heldout;          // heldout.n == 0 when not scored there
};

struct SearchResult {
    double float_search_top1 = 0, float_heldout_top1 = 0;
    std::vector<SearchPoint> points;      // every config evaluated, in path order
    std::vector<size_t> front;            // Pareto front on the search images, smallest first
    int chosen = -1;                      // index into points; -1 when nothing meets the budget
    std::string note;                     // why the choice (or none) was made
};

struct SearchOptions {
    int max_evaluations = 48;
    int threads = 0;
};

// Bits per weight of a config: the kernel weights of the table's layers, each at its layer's
// width (float32 32, float16 16), averaged.
double bitsPerWeight(const SensitivityTable& table, const QuantConfig& config);

// The search's estimate of a cell's cost: points of top-1 per nat of mean KL, fitted on the
// table's cells that lose between 0 and 20 points (least squares through the origin; 30 when
// none do), times the cell's KL increase over the baseline. See mixed_precision.cpp for why KL
// and not the cell's own top-1 drop.
double pointsPerNat(const SensitivityTable& table);
double estimatedLoss(const SensitivityTable& table, const SensitivityCell& cell, double points_per_nat);

// `search` and `heldout` must be disjoint image sets (the caller splits the test set).
SearchResult searchMixedPrecision(const Model& model, const GraphCalibration& calibration, const SensitivityTable& table,
                                  const ReferenceOutputs& search, const ReferenceOutputs& heldout, const SearchBudget& budget,
                                  const SearchOptions& options = {}, const Progress& progress = Progress::none());

nlohmann::json searchJson(const SearchResult& r, const SensitivityTable& table);

}  // namespace qs
