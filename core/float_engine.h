#pragma once
// Float reference engine: runs a loaded Keras model (Sequential or Functional, channels_last
// or channels_first) in float32 with Eigen. It is the yardstick every quantized result is
// compared with. Activations are kept NHWC inside; a channels_first model's input is given in
// its own (C, H, W) order and its Flatten follows Keras' (C, H, W) order.
// The engine keeps a reference to the Model: the Model must outlive it.
#include <Eigen/Core>

#include <string>
#include <vector>

#include "idx_dataset.h"
#include "model.h"
#include "progress.h"

namespace qs {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

class FloatEngine {
public:
    // Throws qs::Error naming the first layer it cannot run ("unsupported layer LSTM ...").
    // `fallback_input` (without batch, e.g. the dataset's (28, 28, 1)) is used when the model
    // does not state its input shape, as Keras builds such a model on its first call.
    explicit FloatEngine(const Model& model, const Shape& fallback_input = {});

    // One row per sample, columns in the model's input order; returns the output layer's rows.
    RowMatrix forward(const RowMatrix& input) const;

    const Shape& inputShape() const { return input_shape_; }  // without batch
    int64_t inputSize() const;

private:
    const Model& model_;
    Shape input_shape_;
    bool channels_first_ = false;
    std::vector<std::vector<size_t>> inputs_;  // per layer: indices of its inbound layers
    size_t output_ = 0;
};

// x = ((pixel / scale) - mean) / std, as the corpus manifest and `eval` state it.
struct Preprocessing {
    double scale = 255.0, mean = 0.0, std = 1.0;
};

struct EvalResult {
    int64_t n = 0, top1_correct = 0, top5_correct = 0;
    double top1 = 0, top5 = 0;
    std::vector<int32_t> predictions;
};

// Top-1/top-5 over the dataset, in batches, on both cores.
EvalResult evaluateFloat(const FloatEngine& engine, const ImageDataset& data, const Preprocessing& pre,
                         const Progress& progress = Progress::none(), int threads = 0, int batch = 256);

}  // namespace qs
