#pragma once
// Accuracy of any engine over an image dataset: top-1, top-5, predictions and the confusion
// matrix, in batches on all cores; agreement between two runs; per-op output SQNR of a
// quantized run against the float graph.
#include <functional>
#include <string>
#include <vector>

#include "base/progress.h"
#include "data/idx_dataset.h"
#include "data/preprocessing.h"
#include "engine/float_engine.h"
#include "engine/float_ops.h"

namespace qs {

struct EvalResult {
    int64_t n = 0, top1_correct = 0, top5_correct = 0;
    double top1 = 0, top5 = 0;
    std::vector<int32_t> predictions;
    int classes = 0;
    std::vector<int64_t> confusion;  // classes x classes, row = true label, column = prediction
};

using ForwardFn = std::function<RowMatrix(const RowMatrix&)>;

// `forward` must be callable from several threads at once. Throws qs::Error when the images
// do not fit the model's input, Cancelled when progress says so.
EvalResult evaluate(const ForwardFn& forward, int64_t input_size, const ImageDataset& data, const Preprocessing& pre,
                    const Progress& progress = Progress::none(), int threads = 0, int batch = 256);

// Fraction of samples on which both runs predict the same class.
double agreement(const EvalResult& a, const EvalResult& b);

// 10 log10(sum ref^2 / sum (ref - x)^2); +inf when identical.
double sqnrDb(const RowMatrix& reference, const RowMatrix& x);

// The float engine's top-1/top-5 over the dataset, in batches, on both cores.
EvalResult evaluateFloat(const FloatEngine& engine, const ImageDataset& data, const Preprocessing& pre,
                         const Progress& progress = Progress::none(), int threads = 0, int batch = 256);

}  // namespace qs
