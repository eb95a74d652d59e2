#pragma once
// A Keras model lowered to primitive operations, the form every engine runs: the float
// reference, calibration, the fake-quant simulation and the integer engine.
//
// Lowering removes the identities at inference (Dropout, noise, regularisers), splits
// SeparableConv2D into its depthwise and pointwise parts, splits a weighted layer's activation
// into its own op unless it is relu/relu6 (kept as a clamp on the layer's output, as TFLite
// fuses them), fuses a following ReLU/ReLU6 layer the same way (also into Add), and with `fold_batch_norm`
// folds BatchNormalization into the Dense/Conv2D/DepthwiseConv2D before it (TFLite's converter
// does this before quantizing: w' = w * gamma / sqrt(var + eps) per output channel,
// b' = (b - mean) * gamma / sqrt(var + eps) + beta).
#include <algorithm>
#include <string>
#include <vector>

#include "engine/float_ops.h"
#include "model/model.h"

namespace qs {

enum class OpKind {
    Input, Dense, Conv2D, Depthwise, ChannelAffine, MaxPool, AvgPool, GlobalAvgPool, GlobalMaxPool,
    Flatten, Reshape, Pad, Add, Multiply, Maximum, Minimum, Concat, Elementwise, Softmax
};
const char* opKindName(OpKind k);

struct Op {
    OpKind kind = OpKind::Input;
    std::string name;    // unique: the Keras layer name, "/activation" or "/pointwise" appended for split parts
    std::string layer;   // the Keras layer it came from (the quantization config is per layer)
    std::vector<int> inputs;
    nlohmann::json config;           // geometry (strides, padding, pool size ...) from the layer

    // Dense: (in, out); Conv2D: (kh, kw, in, out); Depthwise: (kh, kw, in, multiplier).
    // Output channel o of the kernel is column o of its (size / out, out) row-major view.
    Tensor kernel;
    std::vector<float> bias;         // one per output channel (zeros when the layer has none)
    ChannelAffine affine;            // ChannelAffine: y = x * mul + add per channel
    float clamp_lo = -INFINITY, clamp_hi = INFINITY;  // fused relu (0, inf) / relu6 (0, 6)

    std::string activation;          // Elementwise: the Keras name, or "rescaling" / "relu_layer"
    ScalarFn fn;                     // Elementwise
    std::vector<float> coeffs;       // Add: per input +1 (Add), -1 (Subtract's second), 1/n (Average)
    bool chw_flatten = false;        // Flatten in Keras' channels_first order
    Shape reshape;                   // Reshape target (per sample); Pad: (out_h, out_w)
    bool chw_logical = false;        // output comes from channels_first layers

    int64_t outChannels() const { return kernel.shape.empty() ? 0 : kernel.shape.back() * (kind == OpKind::Depthwise ? kernel.shape[2] : 1); }
    bool hasWeights() const { return kind == OpKind::Dense || kind == OpKind::Conv2D || kind == OpKind::Depthwise || kind == OpKind::ChannelAffine; }
};

struct OpGraph {
    std::vector<Op> ops;
    int output = 0;
    Shape input_shape;               // per sample, as the model takes it (channels_first: C, H, W)
    bool chw_input = false;          // input given as (C, H, W); ops see (H, W, C)
    std::vector<std::string> notes;  // "batch_normalization_1 folded into conv2d_1", ...
    std::string source;              // model file, for messages
};

// Throws qs::Error naming the first layer that cannot run. `fallback_input` as in FloatEngine.
OpGraph lowerModel(const Model& model, const Shape& fallback_input, bool fold_batch_norm);

// Runs one op in float32 on its inputs. `spare`: the first input itself when the caller no
// longer needs it (walkGraph's spare), so ops that keep or edit it in place move it.
Act runFloatOp(const Op& op, const std::vector<const Act*>& inputs, Act* spare = nullptr);

// The graph's input as ops see it: rows of samples in the model's order -> internal NHWC.
Act graphInput(const OpGraph& g, const RowMatrix& input);

// Runs every op in order; `keep_all` keeps each op's output (calibration), else only the
// output op's is returned at [g.output] and the others are released when no longer needed.
std::vector<Act> runFloatGraph(const OpGraph& g, const RowMatrix& input, bool keep_all);

// The walk runFloatGraph and the quantized engine share: ops in order, each given the graph
// input (Input ops) or its inputs' values; `run(i, op, inputs, spare)` returns op i's value.
// spare[j] is inputs[j] itself when nothing reads it after this op (not its last reader under
// `keep_all`, not the output, not read twice by this op, not one of several Input ops), so an
// op that keeps or edits its input in place may move it instead of copying it; else null.
// Unless `keep_all`, a value is released after its last reader (the output's is kept).
// With `before`, the walk starts at op `first`: the ops before it are not run and their outputs
// are read from `before` (an earlier keep_all walk over an identical prefix; never moved).
template <class Value, class Run>
std::vector<Value> walkGraph(const OpGraph& g, Value input, bool keep_all, Run run, size_t first = 0,
                             const std::vector<Value>* before = nullptr) {
    const size_t n = g.ops.size();
    std::vector<size_t> last_use(n, 0);
    size_t input_ops = 0;
    for (size_t i = first; i < n; ++i) {
        input_ops += g.ops[i].kind == OpKind::Input;
        for (int j : g.ops[i].inputs) last_use[static_cast<size_t>(j)] = i;
    }
    last_use[static_cast<size_t>(g.output)] = n;
    std::vector<Value> vals(n);
    for (size_t i = first; i < n; ++i) {
        const Op& op = g.ops[i];
        std::vector<const Value*> ins;
        std::vector<Value*> spare;
        if (op.kind == OpKind::Input) {
            ins.push_back(&input);
            spare.push_back(input_ops == 1 && first == 0 && i != static_cast<size_t>(g.output) && !keep_all ? &input : nullptr);
        }
        for (int j : op.inputs) {
            const size_t k = static_cast<size_t>(j);
            if (k < first) {  // from the earlier walk: read only
                ins.push_back(&(*before)[k]);
                spare.push_back(nullptr);
                continue;
            }
            const bool once = std::count(op.inputs.begin(), op.inputs.end(), j) == 1;
            ins.push_back(&vals[k]);
            spare.push_back(!keep_all && once && last_use[k] == i ? &vals[k] : nullptr);
        }
        vals[i] = run(i, op, ins, spare);
        if (!keep_all)
            for (int j : op.inputs)
                if (static_cast<size_t>(j) >= first && last_use[static_cast<size_t>(j)] == i) vals[static_cast<size_t>(j)] = Value();
    }
    return vals;
}

// run(rows) on `chunk` rows of `input` at a time, the results stacked in order: the engines run a
// batch in pieces whose values stay in the cache between one op and the next.
template <class Run>
RowMatrix inChunks(const RowMatrix& input, int64_t chunk, Run run) {
    if (input.rows() <= chunk) return run(input);
    RowMatrix out;
    for (int64_t r0 = 0; r0 < input.rows(); r0 += chunk) {
        const int64_t n = std::min(chunk, input.rows() - r0);
        RowMatrix y = run(input.middleRows(r0, n));
        if (r0 == 0) out.resize(input.rows(), y.cols());
        out.middleRows(r0, n) = y;
    }
    return out;
}

}  // namespace qs
