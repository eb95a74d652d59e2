#pragma once
// Running a QuantizedModel two ways:
//  - the integer engine: int8 (or int16) tensors between ops; Dense and Conv2D on the integer
//    GEMM (int8_gemm.h), depthwise, pooling, Add, Concatenate, Multiply in integers with
//    TFLite's fixed-point rescaling, element-wise activations as lookup tables; no float inside
//    a quantized op. Float ops (Softmax, float32/float16 layers) dequantize their input and
//    quantize their output: the edges.
//  - the fake-quant simulation: the same ops in float32 with dequantized weights, each output
//    rounded to its quantization grid (quantize then dequantize), as TensorFlow's
//    FakeQuant ops and AIMET's QuantSim do. It predicts what the integer engine computes.
// Both return float outputs (dequantized), one row per sample.
#include <vector>

#include "engine/quantized_model.h"

namespace qs {

enum class QuantizedRun { Integer, FakeQuant };

// Every op's output (keep_all) or only the model output, at [model.graph.output].
std::vector<RowMatrix> runQuantized(const QuantizedModel& model, QuantizedRun how, const RowMatrix& input, bool keep_all);

inline RowMatrix runQuantizedOutput(const QuantizedModel& model, QuantizedRun how, const RowMatrix& input) {
    std::vector<RowMatrix> all = runQuantized(model, how, input, false);
    return std::move(all[static_cast<size_t>(model.graph.output)]);
}

}  // namespace qs
