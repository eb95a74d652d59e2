#pragma once
// The float32 operations the engines are built from (Eigen, one batch at a time). The float
// reference engine runs a Keras model layer by layer with them; the quantized model uses
// them to calibrate, to simulate quantization ("fake quant") and for layers kept in float.
// Activations are NHWC inside: rows = samples, each row one sample.
#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "model/model.h"
#include "model/row_matrix.h"

namespace qs {

using ScalarFn = std::function<float(float)>;

struct Act {
    RowMatrix x;
    Shape shape;               // per sample, internal order (H, W, C) for images
    bool chw_logical = false;  // produced by channels_first layers: Keras flattens it as (C, H, W)
};

int64_t prod(const Shape& s);
std::pair<int64_t, int64_t> pair2(const nlohmann::json& c, const char* key, int64_t fallback);
std::string str(const nlohmann::json& c, const char* key, const std::string& fallback);

// Keras' 'same' padding: returns the padding before; *out gets the output size.
int64_t padBefore(int64_t in, int64_t k, int64_t s, int64_t d, bool same, int64_t* out);

// An element-wise Keras activation by name; empty for "linear". Throws std::invalid_argument
// for an unknown name. Softmax is not element-wise: see softmaxLastAxis.
ScalarFn activationFunction(const std::string& fn, bool keras3);
void softmaxLastAxis(Act& a);
// Any activation by name, softmax included; errors name the model file and layer.
void applyActivation(Act& a, const std::string& fn, const Model& m, const std::string& layer);

Act dense(const Act& in, const Tensor& kernel, const Tensor* bias);

struct ConvGeometry {
    int64_t H, W, C, KH, KW, sh, sw, dh, dw, OH, OW, pt, pl;
};
ConvGeometry convGeometry(const Shape& in_hwc, const Shape& kernel, const nlohmann::json& c);

struct ChannelAffine;
// What a convolution applies to its sums before storing them: a following batch norm's
// per-channel affine (null: none) and a fused ReLU's clamp.
struct ConvPost {
    const ChannelAffine* affine = nullptr;
    float lo = -INFINITY, hi = INFINITY;
};
Act conv2d(const Act& in, const Tensor& kernel, const Tensor* bias, const nlohmann::json& c, const ConvPost& post = {});
Act depthwise(const Act& in, const Tensor& kernel, const Tensor* bias, const nlohmann::json& c, const ConvPost& post = {});
// The extent (Hp, Wp) of the input padded so that every patch of the convolution lies inside
// it: g.pt rows and g.pl columns before, the rest after.
std::pair<int64_t, int64_t> paddedExtent(const ConvGeometry& g);

struct PoolGeometry {
    int64_t H, W, C, ph, pw, sh, sw, OH, OW, pt, pl;
};
PoolGeometry poolGeometry(const Shape& in_hwc, const nlohmann::json& c);
Act pool2d(const Act& in, const nlohmann::json& c, bool is_max);
Act globalPool(const Act& in, bool is_max);

// Keras BatchNormalization at inference as y = x * mul + add per channel (last axis).
// Weight order: gamma (if scale), beta (if center), moving_mean, moving_variance.
struct ChannelAffine {
    std::vector<double> mul, add;
};
ChannelAffine batchNormAffine(const std::vector<Tensor>& weights, const nlohmann::json& c, int64_t channels);
// y = y * mul + add per channel, in place, clamped to [lo, hi] in the same pass (a fused ReLU).
void channelAffineInPlace(Act& y, const ChannelAffine& a, float lo, float hi);

// Flatten; `chw_order` flattens an internal (H, W, C) tensor in Keras' channels_first order.
Act flatten(const Act& in, bool chw_order);
// Keras ZeroPadding2D's `padding` as (top, left); output size from the layer's output shape.
std::pair<int64_t, int64_t> zeroPadding(const nlohmann::json& c);
Act zeroPad2d(const Act& in, const nlohmann::json& c, int64_t out_h, int64_t out_w);
Act concatChannels(const std::vector<const Act*>& parts);

}  // namespace qs
