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
#include <memory>
#include <vector>

#include "engine/quantized_model.h"

namespace qs {

enum class QuantizedRun { Integer, FakeQuant };

// Every op's output (keep_all) or only the model output, at [model.graph.output].
std::vector<RowMatrix> runQuantized(const QuantizedModel& model, QuantizedRun how, const RowMatrix& input, bool keep_all);

// The output op's rows of runQuantized; the integer engine runs the batch in cache-sized chunks.
RowMatrix runQuantizedOutput(const QuantizedModel& model, QuantizedRun how, const RowMatrix& input);

// Every op's output of one integer-engine run, kept so that a model differing from it only from
// some op on can start there (sensitivity analysis: changing one layer leaves the ops before it
// as they were, so they are run once for all the settings tried on that layer).
class QuantizedTrace {
public:
    QuantizedTrace();
    QuantizedTrace(QuantizedTrace&&) noexcept;
    QuantizedTrace& operator=(QuantizedTrace&&) noexcept;
    ~QuantizedTrace();
    struct Values;
    std::unique_ptr<Values> values;
};

QuantizedTrace traceQuantized(const QuantizedModel& model, const RowMatrix& input);

// The model output of `model` on the traced input, running its ops from `first` on. The ops
// before `first` must be quantized exactly as in the traced model (same graph and settings);
// the result then equals runQuantizedOutput(model, Integer, input).
RowMatrix runQuantizedFrom(const QuantizedModel& model, const QuantizedTrace& trace, size_t first);

}  // namespace qs
