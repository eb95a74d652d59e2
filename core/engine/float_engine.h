#pragma once
// Float reference engine: runs a loaded Keras model (Sequential or Functional, channels_last
// or channels_first) in float32 with Eigen. It is the yardstick every quantized result is
// compared with. Activations are kept NHWC inside; a channels_first model's input is given in
// its own (C, H, W) order and its Flatten follows Keras' (C, H, W) order.
// The engine copies what it needs from the Model (see op_graph.h).
#include <string>
#include <vector>

#include "base/progress.h"
#include "engine/float_ops.h"
#include "engine/op_graph.h"
#include "model/model.h"

namespace qs {

class FloatEngine {
public:
    // Throws qs::Error naming the first layer it cannot run ("unsupported layer LSTM ...").
    // `fallback_input` (without batch, e.g. the dataset's (28, 28, 1)) is used when the model
    // does not state its input shape, as Keras builds such a model on its first call.
    explicit FloatEngine(const Model& model, const Shape& fallback_input = {});

    // One row per sample, columns in the model's input order; returns the output layer's rows.
    // Runs the batch in chunks of chunkRows() samples, so that every op's output stays in the
    // cache for the op that reads it (a whole batch of 256 CNN activations is 25 MB).
    RowMatrix forward(const RowMatrix& input) const;
    int64_t chunkRows() const { return chunk_; }

    const Shape& inputShape() const { return graph_.input_shape; }  // without batch
    int64_t inputSize() const;

    const OpGraph& graph() const { return graph_; }

private:
    OpGraph graph_;  // lowered without BatchNormalization folding: the model as Keras runs it
    int64_t chunk_ = 1;
};

}  // namespace qs
