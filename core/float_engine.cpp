#include "float_engine.h"

#include <Eigen/Dense>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <set>
#include <thread>
#include <tuple>

#include "error.h"
#include "parallel.h"

namespace qs {

using nlohmann::json;

namespace {

// An activation: rows = samples, each row one sample in NHWC (or flat) order.
struct Act {
    RowMatrix x;
    Shape shape;               // per sample, internal order (H, W, C) for images
    bool chw_logical = false;  // produced by channels_first layers: Keras flattens it as (C, H, W)
};

int64_t prod(const Shape& s) {
    int64_t n = 1;
    for (int64_t d : s) n *= d;
    return n;
}

std::pair<int64_t, int64_t> pair2(const json& c, const char* key, int64_t fallback) {
    if (!c.contains(key) || c[key].is_null()) return {fallback, fallback};
    const json& v = c[key];
    if (v.is_number_integer()) return {v.get<int64_t>(), v.get<int64_t>()};
    return {v[0].get<int64_t>(), v[1].get<int64_t>()};
}

std::string str(const json& c, const char* key, const std::string& fallback) {
    return c.contains(key) && c[key].is_string() ? c[key].get<std::string>() : fallback;
}

// Keras' 'same' padding: total = max((out - 1) * stride + effective_kernel - in, 0), extra at the end.
int64_t padBefore(int64_t in, int64_t k, int64_t s, int64_t d, bool same, int64_t* out) {
    const int64_t ek = (k - 1) * d + 1;
    if (!same) {
        *out = (in - ek) / s + 1;
        return 0;
    }
    *out = (in + s - 1) / s;
    return std::max<int64_t>((*out - 1) * s + ek - in, 0) / 2;
}

// Softmax over the last axis of any shape (rows hold whole samples).
void softmaxLastAxis(Act& a) {
    const int64_t c = a.shape.empty() ? 1 : a.shape.back();
    Eigen::Map<RowMatrix> v(a.x.data(), a.x.size() / c, c);
    for (Eigen::Index r = 0; r < v.rows(); ++r) {
        auto row = v.row(r);
        row = (row.array() - row.maxCoeff()).exp();
        row /= row.sum();
    }
}

void applyActivation(Act& a, const std::string& fn, const Model& m, const std::string& layer) {
    if (fn.empty() || fn == "linear") return;
    if (fn == "softmax") return softmaxLastAxis(a);
    RowMatrix& x = a.x;
    auto each = [&](auto f) { x = x.unaryExpr(f); };
    if (fn == "relu") each([](float v) { return v > 0 ? v : 0.0f; });
    else if (fn == "relu6") each([](float v) { return std::clamp(v, 0.0f, 6.0f); });
    else if (fn == "sigmoid") each([](float v) { return 1.0f / (1.0f + std::exp(-v)); });
    else if (fn == "tanh") each([](float v) { return std::tanh(v); });
    else if (fn == "elu") each([](float v) { return v > 0 ? v : std::expm1(v); });
    else if (fn == "selu") each([](float v) { return 1.0507009873554805f * (v > 0 ? v : 1.6732632423543772f * std::expm1(v)); });
    else if (fn == "swish" || fn == "silu") each([](float v) { return v / (1.0f + std::exp(-v)); });
    else if (fn == "gelu") each([](float v) { return 0.5f * v * (1.0f + std::erf(v / std::sqrt(2.0f))); });
    else if (fn == "softplus") each([](float v) { return std::log1p(std::exp(-std::fabs(v))) + std::max(v, 0.0f); });
    else if (fn == "softsign") each([](float v) { return v / (1.0f + std::fabs(v)); });
    else if (fn == "exponential") each([](float v) { return std::exp(v); });
    else if (fn == "hard_sigmoid") {
        // Keras 2: clip(0.2 x + 0.5, 0, 1); Keras 3: relu6(x + 3) / 6.
        const bool k3 = !m.keras_version.empty() && m.keras_version[0] == '3';
        if (k3) each([](float v) { return std::clamp(v + 3.0f, 0.0f, 6.0f) / 6.0f; });
        else each([](float v) { return std::clamp(0.2f * v + 0.5f, 0.0f, 1.0f); });
    } else {
        throw Error(m.source_path, "layer " + layer, "unsupported activation '" + fn + "'");
    }
}

// Dense on the last axis with a (k, u) row-major kernel; also SeparableConv2D's pointwise
// (1, 1, k, u) kernel, which is the same matrix.
Act dense(const Act& in, const Tensor& kernel, const Tensor* bias) {
    const int64_t u = kernel.shape.back(), k = kernel.size() / u;
    const int64_t outer = prod(in.shape) / k;
    Eigen::Map<const RowMatrix> x(in.x.data(), in.x.rows() * outer, k);
    Eigen::Map<const RowMatrix> w(kernel.data.data(), k, u);
    RowMatrix y = x * w;
    if (bias) y.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(bias->data.data(), u);
    Act out;
    out.x = Eigen::Map<RowMatrix>(y.data(), in.x.rows(), outer * u);
    out.shape = in.shape;
    out.shape.back() = u;
    return out;
}

// Sizes, strides, dilation and padding of a 2-D convolution over an (H, W, C) input.
struct ConvGeometry {
    int64_t H, W, C, KH, KW, sh, sw, dh, dw, OH, OW, pt, pl;
};

ConvGeometry convGeometry(const Act& in, const Tensor& kernel, const json& c) {
    ConvGeometry g;
    g.H = in.shape[0], g.W = in.shape[1], g.C = in.shape[2];
    g.KH = kernel.shape[0], g.KW = kernel.shape[1];
    std::tie(g.sh, g.sw) = pair2(c, "strides", 1);
    std::tie(g.dh, g.dw) = pair2(c, "dilation_rate", 1);
    const bool same = str(c, "padding", "valid") == "same";
    g.pt = padBefore(g.H, g.KH, g.sh, g.dh, same, &g.OH);
    g.pl = padBefore(g.W, g.KW, g.sw, g.dw, same, &g.OW);
    return g;
}

Act conv2d(const Act& in, const Tensor& kernel, const Tensor* bias, const json& c) {
    const auto [H, W, C, KH, KW, sh, sw, dh, dw, OH, OW, pt, pl] = convGeometry(in, kernel, c);
    const int64_t OC = kernel.shape[3];
    Eigen::Map<const RowMatrix> w(kernel.data.data(), KH * KW * C, OC);
    Act out;
    out.shape = {OH, OW, OC};
    out.x.resize(in.x.rows(), OH * OW * OC);
    RowMatrix patches(OH * OW, KH * KW * C);
    for (Eigen::Index n = 0; n < in.x.rows(); ++n) {
        const float* src = in.x.row(n).data();
        for (int64_t oy = 0; oy < OH; ++oy)
            for (int64_t ox = 0; ox < OW; ++ox) {
                float* dst = patches.row(oy * OW + ox).data();
                for (int64_t ky = 0; ky < KH; ++ky) {
                    const int64_t iy = oy * sh - pt + ky * dh;
                    for (int64_t kx = 0; kx < KW; ++kx) {
                        const int64_t ix = ox * sw - pl + kx * dw;
                        float* d = dst + (ky * KW + kx) * C;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) std::fill(d, d + C, 0.0f);
                        else std::copy(src + (iy * W + ix) * C, src + (iy * W + ix + 1) * C, d);
                    }
                }
            }
        Eigen::Map<RowMatrix> y(out.x.row(n).data(), OH * OW, OC);
        y.noalias() = patches * w;
        if (bias) y.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(bias->data.data(), OC);
    }
    return out;
}

Act depthwise(const Act& in, const Tensor& kernel, const Tensor* bias, const json& c) {
    const auto [H, W, C, KH, KW, sh, sw, dh, dw, OH, OW, pt, pl] = convGeometry(in, kernel, c);
    const int64_t M = kernel.shape[3];
    Act out;
    out.shape = {OH, OW, C * M};
    out.x.setZero(in.x.rows(), OH * OW * C * M);
    for (Eigen::Index n = 0; n < in.x.rows(); ++n) {
        const float* src = in.x.row(n).data();
        float* dst = out.x.row(n).data();
        for (int64_t oy = 0; oy < OH; ++oy)
            for (int64_t ox = 0; ox < OW; ++ox) {
                float* o = dst + (oy * OW + ox) * C * M;
                for (int64_t ky = 0; ky < KH; ++ky) {
                    const int64_t iy = oy * sh - pt + ky * dh;
                    if (iy < 0 || iy >= H) continue;
                    for (int64_t kx = 0; kx < KW; ++kx) {
                        const int64_t ix = ox * sw - pl + kx * dw;
                        if (ix < 0 || ix >= W) continue;
                        const float* xin = src + (iy * W + ix) * C;
                        const float* k = kernel.data.data() + (ky * KW + kx) * C * M;  // (kh, kw, c, m)
                        for (int64_t ch = 0; ch < C * M; ++ch) o[ch] += xin[ch / M] * k[ch];
                    }
                }
                if (bias)
                    for (int64_t ch = 0; ch < C * M; ++ch) o[ch] += bias->data[static_cast<size_t>(ch)];
            }
    }
    return out;
}

Act pool2d(const Act& in, const json& c, bool is_max) {
    const int64_t H = in.shape[0], W = in.shape[1], C = in.shape[2];
    const auto [ph, pw] = pair2(c, "pool_size", 2);
    auto [sh, sw] = pair2(c, "strides", ph);
    if (!c.contains("strides") || c["strides"].is_null()) sh = ph, sw = pw;
    const bool same = str(c, "padding", "valid") == "same";
    int64_t OH, OW;
    const int64_t pt = padBefore(H, ph, sh, 1, same, &OH), pl = padBefore(W, pw, sw, 1, same, &OW);
    Act out;
    out.shape = {OH, OW, C};
    out.chw_logical = in.chw_logical;
    out.x.resize(in.x.rows(), OH * OW * C);
    for (Eigen::Index n = 0; n < in.x.rows(); ++n) {
        const float* src = in.x.row(n).data();
        float* dst = out.x.row(n).data();
        for (int64_t oy = 0; oy < OH; ++oy)
            for (int64_t ox = 0; ox < OW; ++ox)
                for (int64_t ch = 0; ch < C; ++ch) {
                    float acc = is_max ? -INFINITY : 0.0f;
                    int cnt = 0;  // Keras averages over the window's valid cells only
                    for (int64_t ky = 0; ky < ph; ++ky) {
                        const int64_t iy = oy * sh - pt + ky;
                        if (iy < 0 || iy >= H) continue;
                        for (int64_t kx = 0; kx < pw; ++kx) {
                            const int64_t ix = ox * sw - pl + kx;
                            if (ix < 0 || ix >= W) continue;
                            const float v = src[(iy * W + ix) * C + ch];
                            acc = is_max ? std::max(acc, v) : acc + v;
                            ++cnt;
                        }
                    }
                    dst[(oy * OW + ox) * C + ch] = is_max ? acc : acc / static_cast<float>(std::max(cnt, 1));
                }
    }
    return out;
}

}  // namespace

FloatEngine::FloatEngine(const Model& m, const Shape& fallback_input) : model_(m) {
    if (!m.has_architecture) throw Error(m.source_path, "", "no architecture: give --arch FILE to run a weights-only file");
    static const std::set<std::string> known = {
        "InputLayer", "Dense", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "BatchNormalization", "Activation", "ReLU",
        "LeakyReLU", "Softmax", "ELU", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
        "Flatten", "Reshape", "Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
        "ActivityRegularization", "ZeroPadding2D", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum",
        "Concatenate", "Rescaling", "TFOpLambda"};
    std::map<std::string, size_t> index;
    for (size_t i = 0; i < m.layers.size(); ++i) {
        const Layer& l = m.layers[i];
        const bool add_lambda = l.kind == "TFOpLambda" && str(l.config, "function", "") == "__operators__.add";
        if (!known.count(l.kind) || (l.kind == "TFOpLambda" && !add_lambda))
            throw Error(m.source_path, "layer " + l.name,
                        "unsupported layer " + l.class_name.value_or(l.kind) + " (the model opens for analysis; the engine cannot run it)");
        if (str(l.config, "data_format", "") == "channels_first") channels_first_ = true;
        std::vector<size_t> ins;
        for (const InboundRef& r : l.inbound) {
            auto it = index.find(r.layer);
            if (it == index.end())
                throw Error(m.source_path, "layer " + l.name, "takes its input from '" + r.layer + "', which is not computed before it");
            ins.push_back(it->second);
        }
        inputs_.push_back(ins);
        index[l.name] = i;
    }
    if (m.layers.empty()) throw Error(m.source_path, "", "the model has no layers");
    output_ = m.outputs.empty() ? m.layers.size() - 1 : index.at(m.outputs.front().layer);
    const Layer& first = m.layers.front();
    if (!first.output_shape && first.kind == "InputLayer") throw Error(m.source_path, "layer " + first.name, "input shape unknown");
    json bis = first.kind == "InputLayer" ? json(*first.output_shape) : first.config.value("batch_input_shape", json());
    if ((!bis.is_array() || bis.size() < 2) && !fallback_input.empty()) {
        bis = json::array({nullptr});
        Shape f = fallback_input;  // (H, W, C); a channels_first model takes (C, H, W)
        if (channels_first_ && f.size() == 3) f = {f[2], f[0], f[1]};
        for (int64_t d : f) bis.push_back(d);
    }
    if (!bis.is_array() || bis.size() < 2) throw Error(m.source_path, "layer " + first.name, "the model's input shape is unknown");
    for (size_t i = 1; i < bis.size(); ++i) {
        if (!bis[i].is_number_integer() || bis[i].get<int64_t>() <= 0)
            throw Error(m.source_path, "layer " + first.name, "the input shape has a free dimension");
        input_shape_.push_back(bis[i].get<int64_t>());
    }
}

int64_t FloatEngine::inputSize() const { return prod(input_shape_); }

RowMatrix FloatEngine::forward(const RowMatrix& input) const {
    const Model& m = model_;
    std::vector<Act> acts(m.layers.size());
    Act in;
    in.x = input;
    in.shape = input_shape_;
    if (channels_first_ && in.shape.size() == 3) {  // (C, H, W) -> NHWC inside
        const int64_t C = in.shape[0], H = in.shape[1], W = in.shape[2];
        RowMatrix t(input.rows(), input.cols());
        for (Eigen::Index n = 0; n < input.rows(); ++n)
            for (int64_t c = 0; c < C; ++c)
                for (int64_t p = 0; p < H * W; ++p) t(n, p * C + c) = input(n, c * H * W + p);
        in.x = std::move(t);
        in.shape = {H, W, C};
        in.chw_logical = true;
    }
    for (size_t i = 0; i < m.layers.size(); ++i) {
        const Layer& l = m.layers[i];
        const json& c = l.config;
        const std::string& k = l.kind;
        const Act& x = inputs_[i].empty() ? in : acts[inputs_[i][0]];
        const Tensor* w0 = l.weights.size() > 0 ? &l.weights[0] : nullptr;
        const Tensor* w1 = l.weights.size() > 1 ? &l.weights[1] : nullptr;
        Act y;
        if (k == "InputLayer") {
            y = in;
        } else if (k == "Dense") {
            y = dense(x, *w0, w1);
        } else if (k == "Conv2D") {
            y = conv2d(x, *w0, w1, c);
        } else if (k == "DepthwiseConv2D") {
            y = depthwise(x, *w0, w1, c);
        } else if (k == "SeparableConv2D") {
            y = depthwise(x, *w0, nullptr, c);
            y = dense(y, l.weights[1], l.weights.size() > 2 ? &l.weights[2] : nullptr);
        } else if (k == "BatchNormalization") {
            // Keras' weight order: gamma (if scale), beta (if center), moving_mean, moving_variance.
            const bool scale = c.value("scale", true), center = c.value("center", true);
            size_t wi = 0;
            const Tensor* gamma = scale ? &l.weights[wi++] : nullptr;
            const Tensor* beta = center ? &l.weights[wi++] : nullptr;
            const Tensor& mean = l.weights[wi++];
            const Tensor& var = l.weights[wi++];
            const double eps = c.value("epsilon", 1e-3);
            const int64_t ch = x.shape.back();
            Eigen::RowVectorXf mul(ch), add(ch);
            for (int64_t j = 0; j < ch; ++j) {
                const double g = gamma ? gamma->data[static_cast<size_t>(j)] : 1.0;
                const double inv = g / std::sqrt(static_cast<double>(var.data[static_cast<size_t>(j)]) + eps);
                mul[j] = static_cast<float>(inv);
                add[j] = static_cast<float>((beta ? beta->data[static_cast<size_t>(j)] : 0.0) - mean.data[static_cast<size_t>(j)] * inv);
            }
            y = x;
            Eigen::Map<RowMatrix> v(y.x.data(), y.x.size() / ch, ch);
            v.array().rowwise() *= mul.array();
            v.rowwise() += add;
        } else if (k == "Activation") {
            y = x;
            applyActivation(y, str(c, "activation", "linear"), m, l.name);
        } else if (k == "ReLU" || k == "LeakyReLU" || k == "ELU") {
            y = x;
            const float slope = k == "LeakyReLU" ? static_cast<float>(c.value("alpha", c.value("negative_slope", 0.3)))
                                                 : static_cast<float>(c.value("negative_slope", 0.0));
            const json mv = c.value("max_value", json());
            const float maxv = mv.is_number() ? mv.get<float>() : INFINITY;
            const float thr = static_cast<float>(c.value("threshold", 0.0));
            const float alpha = static_cast<float>(c.value("alpha", 1.0));
            if (k == "ELU") y.x = y.x.unaryExpr([alpha](float v) { return v > 0 ? v : alpha * std::expm1(v); });
            else y.x = y.x.unaryExpr([=](float v) { return v >= maxv ? maxv : (v >= thr ? v : slope * (v - thr)); });
        } else if (k == "Softmax") {
            y = x;
            softmaxLastAxis(y);
        } else if (k == "MaxPooling2D" || k == "AveragePooling2D") {
            y = pool2d(x, c, k == "MaxPooling2D");
        } else if (k == "GlobalAveragePooling2D" || k == "GlobalMaxPooling2D") {
            const int64_t ch = x.shape[2], hw = x.shape[0] * x.shape[1];
            y.shape = {ch};
            y.x.resize(x.x.rows(), ch);
            for (Eigen::Index n = 0; n < x.x.rows(); ++n) {
                Eigen::Map<const RowMatrix> v(x.x.row(n).data(), hw, ch);
                if (k == "GlobalAveragePooling2D") y.x.row(n) = v.colwise().mean();
                else y.x.row(n) = v.colwise().maxCoeff();
            }
        } else if (k == "Flatten") {
            y.shape = {prod(x.shape)};
            // A channels_first model flattens its NCHW tensor in (C, H, W) order unless Flatten
            // itself says data_format='channels_first' (then Keras permutes to channels_last).
            if (x.chw_logical && x.shape.size() == 3 && str(c, "data_format", "") != "channels_first") {
                const int64_t H = x.shape[0], W = x.shape[1], C = x.shape[2];
                y.x.resize(x.x.rows(), H * W * C);
                for (Eigen::Index n = 0; n < x.x.rows(); ++n)
                    for (int64_t p = 0; p < H * W; ++p)
                        for (int64_t ch = 0; ch < C; ++ch) y.x(n, ch * H * W + p) = x.x(n, p * C + ch);
            } else {
                y.x = x.x;
            }
        } else if (k == "Reshape") {
            if (x.chw_logical) throw Error(m.source_path, "layer " + l.name, "Reshape in a channels_first model is not supported");
            y.x = x.x;
            y.shape = Shape(l.output_shape->begin() + 1, l.output_shape->end());
        } else if (k == "ZeroPadding2D") {
            const int64_t H = x.shape[0], W = x.shape[1], C = x.shape[2];
            const int64_t OH = (*l.output_shape)[1], OW = (*l.output_shape)[2];
            int64_t top = 1, left = 1;
            const json& p = c.value("padding", json(1));
            if (p.is_number_integer()) top = left = p.get<int64_t>();
            else if (p.is_array() && p[0].is_number_integer()) top = p[0].get<int64_t>(), left = p[1].get<int64_t>();
            else if (p.is_array()) top = p[0][0].get<int64_t>(), left = p[1][0].get<int64_t>();
            y.shape = {OH, OW, C};
            y.x.setZero(x.x.rows(), OH * OW * C);
            for (Eigen::Index n = 0; n < x.x.rows(); ++n)
                for (int64_t r = 0; r < H; ++r)
                    for (int64_t q = 0; q < W; ++q)
                        for (int64_t ch = 0; ch < C; ++ch) y.x(n, ((r + top) * OW + q + left) * C + ch) = x.x(n, (r * W + q) * C + ch);
        } else if (k == "Add" || k == "TFOpLambda" || k == "Subtract" || k == "Multiply" || k == "Average" || k == "Maximum" ||
                   k == "Minimum") {
            y = x;
            for (size_t j = 1; j < inputs_[i].size(); ++j) {
                const RowMatrix& o = acts[inputs_[i][j]].x;
                if (o.cols() != y.x.cols()) throw Error(m.source_path, "layer " + l.name, "inputs of different sizes");
                if (k == "Add" || k == "TFOpLambda" || k == "Average") y.x += o;
                else if (k == "Subtract") y.x -= o;
                else if (k == "Multiply") y.x.array() *= o.array();
                else if (k == "Maximum") y.x = y.x.cwiseMax(o);
                else y.x = y.x.cwiseMin(o);
            }
            if (k == "Average") y.x /= static_cast<float>(inputs_[i].size());
        } else if (k == "Concatenate") {
            int64_t axis = c.value("axis", -1);
            if (axis != -1 && axis != static_cast<int64_t>(x.shape.size()))
                throw Error(m.source_path, "layer " + l.name, "Concatenate on an axis other than the channels is not supported");
            const int64_t outer = prod(x.shape) / x.shape.back();
            int64_t total = 0;
            for (size_t j : inputs_[i]) total += acts[j].shape.back();
            y.shape = x.shape;
            y.shape.back() = total;
            y.x.resize(x.x.rows(), outer * total);
            for (Eigen::Index n = 0; n < x.x.rows(); ++n)
                for (int64_t p = 0; p < outer; ++p) {
                    int64_t off = 0;
                    for (size_t j : inputs_[i]) {
                        const Act& a = acts[j];
                        const int64_t cj = a.shape.back();
                        std::copy(a.x.row(n).data() + p * cj, a.x.row(n).data() + (p + 1) * cj, y.x.row(n).data() + p * total + off);
                        off += cj;
                    }
                }
        } else if (k == "Rescaling") {
            y = x;
            y.x = (y.x.array() * static_cast<float>(c.value("scale", 1.0)) + static_cast<float>(c.value("offset", 0.0))).matrix();
        } else {  // Dropout and the other identities at inference
            y = x;
        }
        if (k == "Conv2D" || k == "DepthwiseConv2D" || k == "SeparableConv2D" || k == "MaxPooling2D" || k == "AveragePooling2D")
            y.chw_logical = str(c, "data_format", "") == "channels_first" || (x.chw_logical && !c.contains("data_format"));
        else if (k != "Flatten" && k != "Dense" && k != "GlobalAveragePooling2D" && k != "GlobalMaxPooling2D")
            y.chw_logical = y.chw_logical || x.chw_logical;
        if (k == "Dense" || k == "Conv2D" || k == "DepthwiseConv2D" || k == "SeparableConv2D") {
            applyActivation(y, str(c, "activation", "linear"), m, l.name);
        }
        acts[i] = std::move(y);
    }
    return acts[output_].x;
}

EvalResult evaluateFloat(const FloatEngine& engine, const ImageDataset& data, const Preprocessing& pre, const Progress& progress,
                         int threads, int batch) {
    const int64_t per = data.rows * data.cols * data.channels;
    if (per != engine.inputSize())
        throw Error(data.source, "", "images have " + std::to_string(per) + " values but the model's input takes " +
                                         std::to_string(engine.inputSize()));
    if (threads <= 0) threads = defaultThreadCount();
    EvalResult r;
    r.n = data.n;
    r.predictions.assign(static_cast<size_t>(data.n), -1);
    std::vector<int64_t> correct1(static_cast<size_t>(threads), 0), correct5(static_cast<size_t>(threads), 0);
    std::atomic<int64_t> next{0}, done{0};
    std::atomic<bool> stop{false};
    const float scale = static_cast<float>(1.0 / pre.scale), mean = static_cast<float>(pre.mean), inv_std = static_cast<float>(1.0 / pre.std);
    auto work = [&](int t) {
        RowMatrix x;
        for (;;) {
            const int64_t b0 = next.fetch_add(batch);
            if (b0 >= data.n || stop) return;
            const int64_t bn = std::min<int64_t>(batch, data.n - b0);
            x.resize(bn, per);
            for (int64_t i = 0; i < bn * per; ++i)
                x.data()[i] = (static_cast<float>(data.pixels[static_cast<size_t>(b0 * per + i)]) * scale - mean) * inv_std;
            const RowMatrix y = engine.forward(x);
            for (int64_t i = 0; i < bn; ++i) {
                Eigen::Index arg;
                y.row(i).maxCoeff(&arg);
                const int32_t label = data.labels[static_cast<size_t>(b0 + i)];
                r.predictions[static_cast<size_t>(b0 + i)] = static_cast<int32_t>(arg);
                correct1[static_cast<size_t>(t)] += arg == label;
                int64_t higher = 0;  // top-5: fewer than five classes score above the label
                for (Eigen::Index j = 0; j < y.cols(); ++j) higher += y(i, j) > y(i, label);
                correct5[static_cast<size_t>(t)] += higher < 5;
            }
            const int64_t d = done.fetch_add(bn) + bn;
            if (t == 0) {
                progress.report(d, data.n);
                if (progress.cancelled()) stop = true;
            }
        }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work, t);
    work(0);
    for (std::thread& th : pool) th.join();
    if (stop) throw Cancelled();
    for (int t = 0; t < threads; ++t) r.top1_correct += correct1[static_cast<size_t>(t)], r.top5_correct += correct5[static_cast<size_t>(t)];
    r.top1 = r.n ? static_cast<double>(r.top1_correct) / static_cast<double>(r.n) : 0;
    r.top5 = r.n ? static_cast<double>(r.top5_correct) / static_cast<double>(r.n) : 0;
    return r;
}

}  // namespace qs
