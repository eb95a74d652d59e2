#include "engine/float_ops.h"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <tuple>

#include "base/error.h"
#include "engine/depthwise_taps.h"
#include "engine/kernels/float_conv.h"
#include "engine/kernels/float_gemm.h"

namespace qs {

using nlohmann::json;

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

ScalarFn activationFunction(const std::string& fn, bool keras3) {
    if (fn.empty() || fn == "linear") return {};
    if (fn == "relu") return [](float v) { return v > 0 ? v : 0.0f; };
    if (fn == "relu6") return [](float v) { return std::clamp(v, 0.0f, 6.0f); };
    if (fn == "sigmoid") return [](float v) { return 1.0f / (1.0f + std::exp(-v)); };
    if (fn == "tanh") return [](float v) { return std::tanh(v); };
    if (fn == "elu") return [](float v) { return v > 0 ? v : std::expm1(v); };
    if (fn == "selu") return [](float v) { return 1.0507009873554805f * (v > 0 ? v : 1.6732632423543772f * std::expm1(v)); };
    if (fn == "swish" || fn == "silu") return [](float v) { return v / (1.0f + std::exp(-v)); };
    if (fn == "gelu") return [](float v) { return 0.5f * v * (1.0f + std::erf(v / std::sqrt(2.0f))); };
    if (fn == "softplus") return [](float v) { return std::log1p(std::exp(-std::fabs(v))) + std::max(v, 0.0f); };
    if (fn == "softsign") return [](float v) { return v / (1.0f + std::fabs(v)); };
    if (fn == "exponential") return [](float v) { return std::exp(v); };
    if (fn == "hard_sigmoid") {
        // Keras 2: clip(0.2 x + 0.5, 0, 1); Keras 3: relu6(x + 3) / 6.
        if (keras3) return [](float v) { return std::clamp(v + 3.0f, 0.0f, 6.0f) / 6.0f; };
        return [](float v) { return std::clamp(0.2f * v + 0.5f, 0.0f, 1.0f); };
    }
    throw std::invalid_argument("unsupported activation '" + fn + "'");
}

void applyActivation(Act& a, const std::string& fn, const Model& m, const std::string& layer) {
    if (fn == "softmax") return softmaxLastAxis(a);
    ScalarFn f;
    try {
        f = activationFunction(fn, !m.keras_version.empty() && m.keras_version[0] == '3');
    } catch (const std::invalid_argument& e) {
        throw Error(m.source_path, "layer " + layer, e.what());
    }
    if (f) a.x = a.x.unaryExpr(f);
}

// x (rows x cols, row-major) += bias on every row; a plain loop -O3 vectorises.
static void addBias(float* x, int64_t rows, int64_t cols, const float* bias) {
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < cols; ++j) x[r * cols + j] += bias[j];
}


// Sizes, strides, dilation and padding of a 2-D convolution over an (H, W, C) input.
ConvGeometry convGeometry(const Shape& in, const Shape& kernel, const json& c) {
    ConvGeometry g;
    g.H = in[0], g.W = in[1], g.C = in[2];
    g.KH = kernel[0], g.KW = kernel[1];
    std::tie(g.sh, g.sw) = pair2(c, "strides", 1);
    std::tie(g.dh, g.dw) = pair2(c, "dilation_rate", 1);
    const bool same = str(c, "padding", "valid") == "same";
    g.pt = padBefore(g.H, g.KH, g.sh, g.dh, same, &g.OH);
    g.pl = padBefore(g.W, g.KW, g.sw, g.dw, same, &g.OW);
    return g;
}

std::pair<int64_t, int64_t> paddedExtent(const ConvGeometry& g) {
    return {std::max(g.pt + g.H, (g.OH - 1) * g.sh + (g.KH - 1) * g.dh + 1), std::max(g.pl + g.W, (g.OW - 1) * g.sw + (g.KW - 1) * g.dw + 1)};
}

// The padded input a direct convolution reads: every patch lies inside it, so the kernel never
// tests a border. Nothing is copied when the convolution has no padding.
namespace {
struct PaddedInput {
    std::vector<float> buf;
    int64_t Hp, Wp;
};

PaddedInput paddingFor(const ConvGeometry& g) {
    PaddedInput p;
    std::tie(p.Hp, p.Wp) = paddedExtent(g);
    if (g.pt > 0 || g.pl > 0 || p.Hp > g.H || p.Wp > g.W) p.buf.assign(static_cast<size_t>(p.Hp * p.Wp * g.C), 0.0f);
    return p;
}

// A convolution's output stage per channel as out = acc * mul + add, clamped: the bias folded
// into add and, with an affine, (acc + bias) * m + a = acc * m + (bias * m + a). `padded` >= OC
// entries (the kernel reads whole panels; the rest mul 1, add 0).
struct PostConstants {
    std::vector<float> mul, add;
};

PostConstants postConstants(const float* bias, int64_t OC, int64_t padded, const ConvPost& post) {
    PostConstants p{std::vector<float>(static_cast<size_t>(padded), 1.0f), std::vector<float>(static_cast<size_t>(padded), 0.0f)};
    for (size_t o = 0; o < static_cast<size_t>(OC); ++o) {
        const double b = bias ? bias[o] : 0.0;
        if (!post.affine) {
            p.add[o] = static_cast<float>(b);
            continue;
        }
        p.mul[o] = static_cast<float>(post.affine->mul[o]);
        p.add[o] = static_cast<float>(b * post.affine->mul[o] + post.affine->add[o]);
    }
    return p;
}

// What a direct-convolution job reads besides its input: the weights in place, the last partial
// panel packed, and the output stage's constants.
struct DirectWeights {
    std::vector<float> tail;
    PostConstants post;
};

void directWeights(kernels::Isa isa, const float* w, int64_t K, int64_t OC, const float* bias, const ConvPost& post, DirectWeights& d,
                   kernels::FloatConvJob& job) {
    const int64_t nr = kernels::floatConvPanel(isa, OC);
    if (OC % nr != 0) {
        d.tail.resize(static_cast<size_t>(K * nr));
        kernels::floatConvPackTail(w, K, OC, nr, d.tail.data());
    }
    d.post = postConstants(bias, OC, (OC + nr - 1) / nr * nr, post);
    job.w = w;
    job.w_stride = OC;
    job.tail = d.tail.empty() ? nullptr : d.tail.data();
    job.OC = OC;
    job.mul = d.post.mul.data();
    job.add = d.post.add.data();
    job.lo = post.lo, job.hi = post.hi;
}

const float* padded(PaddedInput& p, const ConvGeometry& g, const float* src) {
    if (p.buf.empty()) return src;
    padInto(src, g, p.Wp, 0.0f, p.buf.data());
    return p.buf.data();
}
}  // namespace

// A direct convolution (kernels/float_conv.h): the weights and each sample's patches read in
// place (the input from its padded copy), the bias and `post` (a following batch norm's
// affine and the clamp of a fused ReLU) applied in registers before the output is stored.
Act conv2d(const Act& in, const Tensor& kernel, const Tensor* bias, const json& c, const ConvPost& post) {
    const ConvGeometry g = convGeometry(in.shape, kernel.shape, c);
    const int64_t OC = kernel.shape[3], K = g.KH * g.KW * g.C, n = in.x.rows();
    Act out;
    out.shape = {g.OH, g.OW, OC};
    out.x.resize(n, g.OH * g.OW * OC);
    if (n == 0 || out.x.cols() == 0) return out;

    const kernels::Isa isa = kernels::activeIsa();
    kernels::FloatConvJob job{};
    DirectWeights constants;
    directWeights(isa, kernel.data.data(), K, OC, bias ? bias->data.data() : nullptr, post, constants, job);
    PaddedInput pad = paddingFor(g);
    // Runs of the patch: one per kernel row when its columns are adjacent (no horizontal
    // dilation), else one per kernel cell; offsets from the patch's top-left value.
    std::vector<int64_t> runs;
    const bool merge = g.dw == 1;
    for (int64_t ky = 0; ky < g.KH; ++ky)
        for (int64_t kx = 0; kx < (merge ? 1 : g.KW); ++kx) runs.push_back((ky * g.dh * pad.Wp + kx * g.dw) * g.C);

    job.row_step = g.sh * pad.Wp * g.C;
    job.pixel_step = g.sw * g.C;
    job.OH = g.OH, job.OW = g.OW;
    job.run_off = runs.data();
    job.runs = static_cast<int64_t>(runs.size());
    job.run_len = merge ? g.KW * g.C : g.C;
    for (int64_t s = 0; s < n; ++s) {
        job.in = padded(pad, g, in.x.row(s).data());
        job.out = out.x.row(s).data();
        kernels::floatConv(isa, job);
    }
    return out;
}

// Dense on the last axis with a (k, u) row-major kernel; also SeparableConv2D's pointwise
// (1, 1, k, u) kernel, which is the same matrix. Few rows (the float engine's chunks of a CNN
// are a few samples) go to the direct kernel as a 1 x 1 convolution over the rows, which reads
// the weights in place: Eigen's GEMM repacks the whole kernel on every call, which cost
// fmnist_cnn's 3136 x 128 Dense more than its products (22% of the float time, perf). Many rows
// go to Eigen, whose blocking over k keeps its operands in cache.
Act dense(const Act& in, const Tensor& kernel, const Tensor* bias) {
    constexpr int64_t kDirectRows = 64;
    const int64_t u = kernel.shape.back(), k = kernel.size() / u;
    const int64_t outer = prod(in.shape) / k, rows = in.x.rows() * outer;
    Act out;
    out.x.resize(in.x.rows(), outer * u);
    out.shape = in.shape;
    out.shape.back() = u;
    if (rows == 0 || u == 0) return out;
    if (rows > kDirectRows || k == 0) {
        kernels::floatGemm(in.x.data(), rows, k, kernel.data.data(), u, out.x.data());
        if (bias) addBias(out.x.data(), rows, u, bias->data.data());
        return out;
    }
    const kernels::Isa isa = kernels::activeIsa();
    kernels::FloatConvJob job{};
    DirectWeights constants;
    directWeights(isa, kernel.data.data(), k, u, bias ? bias->data.data() : nullptr, ConvPost{}, constants, job);
    const int64_t whole = 0;
    job.in = in.x.data();
    job.row_step = 0, job.pixel_step = k;
    job.OH = 1, job.OW = rows;
    job.run_off = &whole, job.runs = 1, job.run_len = k;
    job.out = out.x.data();
    kernels::floatConv(isa, job);
    return out;
}

// Depth multiplier 1 (the usual): each output row's tap sums (depthwise_taps.h), then the output
// stage over the row; other multipliers per pixel and tap in plain loops. Patches read from the
// padded input.
Act depthwise(const Act& in, const Tensor& kernel, const Tensor* bias, const json& c, const ConvPost& post) {
    const ConvGeometry g = convGeometry(in.shape, kernel.shape, c);
    const int64_t M = kernel.shape[3], CM = g.C * M;
    Act out;
    out.shape = {g.OH, g.OW, CM};
    out.x.resize(in.x.rows(), g.OH * g.OW * CM);
    const PostConstants k = postConstants(bias ? bias->data.data() : nullptr, CM, CM, post);
    PaddedInput pad = paddingFor(g);
    const TapRow taps = tapRow(g, pad.Wp);
    const float* w = kernel.data.data();  // (kh, kw, c, m)
    for (Eigen::Index n = 0; n < in.x.rows(); ++n) {
        const float* src = padded(pad, g, in.x.row(n).data());
        for (int64_t oy = 0; oy < g.OH; ++oy) {
            const float* row = src + oy * g.sh * pad.Wp * g.C;
            float* o = out.x.row(n).data() + oy * g.OW * CM;  // the row's sums, then its outputs
            if (M == 1) {
                depthwiseTapSums(row, taps, w, o);
            } else {
                std::fill(o, o + g.OW * CM, 0.0f);
                for (int64_t ox = 0; ox < g.OW; ++ox)
                    for (int64_t ky = 0; ky < g.KH; ++ky)
                        for (int64_t kx = 0; kx < g.KW; ++kx) {
                            const float* xin = row + ky * taps.dy + ox * taps.sx + kx * taps.dx;
                            const float* kk = w + (ky * g.KW + kx) * CM;
                            for (int64_t ci = 0; ci < g.C; ++ci)
                                for (int64_t m = 0; m < M; ++m) o[ox * CM + ci * M + m] += xin[ci] * kk[ci * M + m];
                        }
            }
            for (int64_t ox = 0; ox < g.OW; ++ox)
                for (int64_t ch = 0; ch < CM; ++ch) {
                    float& v = o[ox * CM + ch];
                    v = std::min(std::max(v * k.mul[static_cast<size_t>(ch)] + k.add[static_cast<size_t>(ch)], post.lo), post.hi);
                }
        }
    }
    return out;
}

PoolGeometry poolGeometry(const Shape& in, const json& c) {
    PoolGeometry g;
    g.H = in[0], g.W = in[1], g.C = in[2];
    std::tie(g.ph, g.pw) = pair2(c, "pool_size", 2);
    std::tie(g.sh, g.sw) = pair2(c, "strides", g.ph);
    if (!c.contains("strides") || c["strides"].is_null()) g.sh = g.ph, g.sw = g.pw;
    const bool same = str(c, "padding", "valid") == "same";
    g.pt = padBefore(g.H, g.ph, g.sh, 1, same, &g.OH);
    g.pl = padBefore(g.W, g.pw, g.sw, 1, same, &g.OW);
    return g;
}

Act pool2d(const Act& in, const json& c, bool is_max) {
    const auto [H, W, C, ph, pw, sh, sw, OH, OW, pt, pl] = poolGeometry(in.shape, c);
    Act out;
    out.shape = {OH, OW, C};
    out.chw_logical = in.chw_logical;
    out.x.resize(in.x.rows(), OH * OW * C);
    for (Eigen::Index n = 0; n < in.x.rows(); ++n) {
        const float* src = in.x.row(n).data();
        float* dst = out.x.row(n).data();
        for (int64_t oy = 0; oy < OH; ++oy)
            for (int64_t ox = 0; ox < OW; ++ox) {
                // All channels of a cell at once (NHWC keeps them consecutive), in plain loops
                // -O3 vectorises (Eigen's maps of 32 channels cost more than the arithmetic).
                float* acc = dst + (oy * OW + ox) * C;
                int cnt = 0;  // Keras averages over the window's valid cells only
                for (int64_t ky = 0; ky < ph; ++ky) {
                    const int64_t iy = oy * sh - pt + ky;
                    if (iy < 0 || iy >= H) continue;
                    for (int64_t kx = 0; kx < pw; ++kx) {
                        const int64_t ix = ox * sw - pl + kx;
                        if (ix < 0 || ix >= W) continue;
                        const float* v = src + (iy * W + ix) * C;
                        if (cnt == 0) std::copy(v, v + C, acc);
                        else if (is_max)
                            for (int64_t ch = 0; ch < C; ++ch) acc[ch] = std::max(acc[ch], v[ch]);
                        else
                            for (int64_t ch = 0; ch < C; ++ch) acc[ch] += v[ch];
                        ++cnt;
                    }
                }
                if (cnt == 0) std::fill(acc, acc + C, is_max ? -INFINITY : 0.0f);
                else if (!is_max)
                    for (int64_t ch = 0; ch < C; ++ch) acc[ch] /= static_cast<float>(cnt);
            }
    }
    return out;
}


Act globalPool(const Act& in, bool is_max) {
    const int64_t ch = in.shape[2], hw = in.shape[0] * in.shape[1];
    Act y;
    y.shape = {ch};
    y.x.resize(in.x.rows(), ch);
    for (Eigen::Index n = 0; n < in.x.rows(); ++n) {
        Eigen::Map<const RowMatrix> v(in.x.row(n).data(), hw, ch);
        if (is_max) y.x.row(n) = v.colwise().maxCoeff();
        else y.x.row(n) = v.colwise().mean();
    }
    return y;
}

ChannelAffine batchNormAffine(const std::vector<Tensor>& w, const json& c, int64_t channels) {
    const bool scale = c.value("scale", true), center = c.value("center", true);
    size_t wi = 0;
    const Tensor* gamma = scale ? &w.at(wi++) : nullptr;
    const Tensor* beta = center ? &w.at(wi++) : nullptr;
    const Tensor& mean = w.at(wi++);
    const Tensor& var = w.at(wi++);
    const double eps = c.value("epsilon", 1e-3);
    ChannelAffine a;
    a.mul.resize(static_cast<size_t>(channels));
    a.add.resize(static_cast<size_t>(channels));
    for (size_t j = 0; j < static_cast<size_t>(channels); ++j) {
        const double g = gamma ? gamma->data[j] : 1.0;
        const double inv = g / std::sqrt(static_cast<double>(var.data[j]) + eps);
        a.mul[j] = inv;
        a.add[j] = (beta ? beta->data[j] : 0.0) - mean.data[j] * inv;
    }
    return a;
}

void channelAffineInPlace(Act& y, const ChannelAffine& a, float lo, float hi) {
    const int64_t ch = static_cast<int64_t>(a.mul.size());
    Eigen::ArrayXf mul(ch), add(ch);
    for (int64_t j = 0; j < ch; ++j) mul[j] = static_cast<float>(a.mul[static_cast<size_t>(j)]), add[j] = static_cast<float>(a.add[static_cast<size_t>(j)]);
    // Multiply, add and clamp in one pass over the data; plain loops that -O3 vectorises
    // across a cell's channels (Eigen's per-row maps cost more than the arithmetic at 32 wide).
    const bool clamp = lo > -INFINITY || hi < INFINITY;  // without one a NaN stays NaN
    const float* m = mul.data();
    const float* b = add.data();
    for (int64_t r = 0; r < y.x.size() / ch; ++r) {
        float* v = y.x.data() + r * ch;
        if (clamp)
            for (int64_t j = 0; j < ch; ++j) v[j] = std::min(std::max(v[j] * m[j] + b[j], lo), hi);
        else
            for (int64_t j = 0; j < ch; ++j) v[j] = v[j] * m[j] + b[j];
    }
}

Act flatten(const Act& x, bool chw_order) {
    Act y;
    y.shape = {prod(x.shape)};
    if (chw_order && x.shape.size() == 3) {
        const int64_t H = x.shape[0], W = x.shape[1], C = x.shape[2];
        y.x.resize(x.x.rows(), H * W * C);
        for (Eigen::Index n = 0; n < x.x.rows(); ++n)
            for (int64_t p = 0; p < H * W; ++p)
                for (int64_t ch = 0; ch < C; ++ch) y.x(n, ch * H * W + p) = x.x(n, p * C + ch);
    } else {
        y.x = x.x;
    }
    return y;
}

std::pair<int64_t, int64_t> zeroPadding(const json& c) {
    int64_t top = 1, left = 1;
    const json& p = c.value("padding", json(1));
    if (p.is_number_integer()) top = left = p.get<int64_t>();
    else if (p.is_array() && p[0].is_number_integer()) top = p[0].get<int64_t>(), left = p[1].get<int64_t>();
    else if (p.is_array()) top = p[0][0].get<int64_t>(), left = p[1][0].get<int64_t>();
    return {top, left};
}

Act zeroPad2d(const Act& x, const json& c, int64_t OH, int64_t OW) {
    const int64_t H = x.shape[0], W = x.shape[1], C = x.shape[2];
    const auto [top, left] = zeroPadding(c);
    Act y;
    y.shape = {OH, OW, C};
    y.chw_logical = x.chw_logical;
    y.x.setZero(x.x.rows(), OH * OW * C);
    for (Eigen::Index n = 0; n < x.x.rows(); ++n)
        for (int64_t r = 0; r < H; ++r)
            for (int64_t q = 0; q < W; ++q)
                for (int64_t ch = 0; ch < C; ++ch) y.x(n, ((r + top) * OW + q + left) * C + ch) = x.x(n, (r * W + q) * C + ch);
    return y;
}

Act concatChannels(const std::vector<const Act*>& parts) {
    const Act& x = *parts.front();
    const int64_t outer = prod(x.shape) / x.shape.back();
    int64_t total = 0;
    for (const Act* a : parts) total += a->shape.back();
    Act y;
    y.shape = x.shape;
    y.shape.back() = total;
    y.chw_logical = x.chw_logical;
    y.x.resize(x.x.rows(), outer * total);
    for (Eigen::Index n = 0; n < x.x.rows(); ++n)
        for (int64_t p = 0; p < outer; ++p) {
            int64_t off = 0;
            for (const Act* a : parts) {
                const int64_t cj = a->shape.back();
                std::copy(a->x.row(n).data() + p * cj, a->x.row(n).data() + (p + 1) * cj, y.x.row(n).data() + p * total + off);
                off += cj;
            }
        }
    return y;
}

}  // namespace qs
