#pragma once
// A model quantized by a QuantConfig, ready for the integer engine and the fake-quant
// simulation (both in quantized_engine.h).
//
// Built in three steps (TFLite's post-training integer quantization):
//  1. lower the Keras model with BatchNormalization folded into the layer before it;
//  2. calibrate: run the folded float graph on N sample inputs and record every op's output
//     range (min/max, or clipped by the activation method from the |x| histogram);
//  3. quantize: weights symmetric per channel (or per tensor) with the weight method's scale;
//     int8 activations asymmetric with a zero point; int16 activations symmetric (zero point
//     0, as TFLite's 16x8 mode); biases as int32 (int64 for 16-bit layers) at
//     input_scale x weight_scale; one fixed-point multiplier per output channel,
//     input_scale x weight_scale / output_scale; lookup tables for element-wise activations.
// Pooling, Flatten, Reshape and ZeroPadding2D keep their input's quantization. Softmax and
// layers configured float32/float16 run in float, with quantize/dequantize at their edges.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/progress.h"
#include "engine/int8_gemm.h"
#include "engine/op_graph.h"
#include "quant/histogram.h"
#include "quant/quant_config.h"
#include "quant/quant_params.h"

namespace qs {

enum class Domain { Float, Int8, Int16 };
const char* domainName(Domain d);

struct QuantizedOp {
    Domain domain = Domain::Float;
    Precision precision = Precision::Float32;
    bool hybrid = false;          // hybrid mode: int weights, float activations quantized per sample
    bool passthrough = false;     // output quantization = the input's (pooling, Flatten, ...)
    float range_lo = 0, range_hi = 0;  // calibrated real range of the output (after clipping)
    float seen_lo = 0, seen_hi = 0;    // the full range seen in calibration
    QuantParams out;              // int domains
    std::vector<QuantParams> in;  // per input, in this op's domain

    // Weighted ops (int domains and hybrid).
    int weight_bits = 32;
    Granularity granularity = Granularity::PerChannel;
    std::vector<QuantParams> w_params;  // one per output channel, or one
    std::vector<int16_t> wq;            // quantized weights, kernel layout (int8 values for <= 8 bits)
    std::vector<int64_t> bias_q;        // at in.scale * w_scale[c]
    std::vector<FixedMultiplier> mult;  // per output channel
    int32_t qlo = 0, qhi = 0;           // output clamp (activation range, fused ReLU/ReLU6)
    int64_t weight_bytes = 0;           // packed weights + scales + biases, as stored

    // Prepared for the integer engine.
    PackedWeights gemm;                 // Dense/Conv2D, int8 domain and hybrid
    PackedWeights gemm_patches;         // Conv2D for implicit im2col when its kernel rows are not whole quads (int8_gemm.h)
    std::vector<int32_t> bias32;
    std::vector<double> w_wide;         // Dense/Conv2D with int16 activations not on the byte split (16-bit weights): wq as doubles
    std::vector<int32_t> mult_m, mult_rshift;  // the multipliers as arrays (int8_gemm.h: Requant)
    std::vector<int32_t> mult_lshift;          // their left shifts; empty when none shifts left
    std::vector<FixedMultiplier> in_mult;  // Add / Concat / Maximum / Minimum: per input
    std::vector<int8_t> in_negate;      // Add: input enters with a minus sign (Subtract)
    FixedMultiplier out_mult;           // Add / Multiply
    int left_shift = 0;                 // Add
    std::vector<int32_t> lut;           // Elementwise: q_in - qmin -> q_out

    // The op with dequantized weights and biases (fake-quant and float layers run this).
    Op sim;
};

struct QuantizedModel {
    OpGraph graph;                      // BatchNormalization folded
    QuantConfig config;
    std::vector<QuantizedOp> ops;       // parallel to graph.ops
    std::vector<Shape> shapes;          // per op output shape (per sample), from calibration
    int64_t calibration_samples = 0;
    int64_t float_weight_bytes = 0;     // every weight of the Keras model as float32
    int64_t quantized_weight_bytes = 0; // what the quantized model stores
    int64_t float_peak_activation_bytes = 0;      // batch 1, largest live set
    int64_t quantized_peak_activation_bytes = 0;
    std::vector<std::string> notes;
};

// `calibration` holds one preprocessed sample per row (the model's input order). Throws
// qs::Error (unsupported layer, asymmetric weight method, ...) or Cancelled.
QuantizedModel quantizeModel(const Model& model, const QuantConfig& config, const RowMatrix& calibration,
                             const Shape& fallback_input = {}, const Progress& progress = Progress::none(), int threads = 0);

// The calibration pass on its own: the folded graph run in float on the calibration rows, every
// op's output range and |x| histogram (for the clipping activation methods). Several configs of
// one model then quantize without running the float graph again (sensitivity, the search);
// quantizeCalibrated(m, calibrateModel(m, rows), c) equals quantizeModel(m, c, rows).
struct ClipCache;
struct GraphCalibration {
    OpGraph graph;                   // BatchNormalization folded
    std::vector<float> lo, hi;       // per op, finite values seen
    std::vector<Histogram> abs_hist; // per op (empty where no integer op could use one)
    std::vector<Shape> shapes;       // per op output shape (per sample)
    std::vector<std::vector<double>> channel_mean;  // per op, mean of each channel (last dimension)
    // Per Dense/Conv2D op: sum of x x^T of its GEMM inputs (GPTQ); per DepthwiseConv2D op one
    // taps x taps sum per input channel, side by side (taps x taps * C); else empty.
    std::vector<Eigen::MatrixXd> hessian;
    int64_t samples = 0;
    // The clipping methods' clips (kl and mse take milliseconds an op), kept per op, method and
    // width as configs ask for them: sensitivity quantizes dozens of configs from one
    // calibration. Filled by calibrateModel (shared by copies: abs_hist never changes after it).
    std::shared_ptr<ClipCache> clips;
};
// Deepest GEMM whose int16-activation products run on the int8 GEMM split into bytes (its int32
// partial sums cannot overflow below it; quantized_engine.cpp matmulWideSplit); deeper ones keep
// the double weights (QuantizedOp::w_wide).
constexpr int64_t kMaxSplitDepth = int64_t(1) << 16;

// Whether GPTQ rounding applies to `op` (its Hessian is computed): Dense and Conv2D up to a GEMM
// depth of 1024, every DepthwiseConv2D. Other ops round to nearest whatever the config asks.
bool gptqApplies(const Op& op);
// `hessians`: also each Dense/Conv2D op's GPTQ Hessian (GEMM depth up to 1024, over the first
// 128 calibration samples), so configs with `gptq` layers quantize from it.
GraphCalibration calibrateModel(const Model& model, const RowMatrix& calibration, const Shape& fallback_input = {},
                                const Progress& progress = Progress::none(), int threads = 0, bool hessians = true);
// `like`: a model quantized from the same calibration with another config; ops whose layer
// setting, domain and input parameters are the same in both are copied from it instead of
// quantized again (sensitivity's cells differ from the baseline in one layer). Same result.
QuantizedModel quantizeCalibrated(const Model& model, const GraphCalibration& calibration, const QuantConfig& config,
                                  const QuantizedModel* like = nullptr);

// Quantize / dequantize helpers with TFLite's rounding (quant_params.h), on whole arrays.
void quantizeArray(const float* x, int64_t n, const QuantParams& p, int16_t* q);

}  // namespace qs
