#include "engine/quantized_model.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>

#include "base/error.h"
#include "base/parallel.h"
#include "engine/im2col.h"
#include "quant/calibration.h"
#include "quant/gptq.h"
#include "quant/quant_analysis.h"

namespace qs {

const char* domainName(Domain d) {
    switch (d) {
        case Domain::Float: return "float";
        case Domain::Int8: return "int8";
        case Domain::Int16: return "int16";
    }
    return "?";
}

void quantizeArray(const float* x, int64_t n, const QuantParams& p, int16_t* q) {
    for (int64_t i = 0; i < n; ++i) q[i] = static_cast<int16_t>(quantize(x[i], p));
}

namespace {

bool isPassthrough(OpKind k) {
    return k == OpKind::MaxPool || k == OpKind::AvgPool || k == OpKind::GlobalAvgPool || k == OpKind::GlobalMaxPool ||
           k == OpKind::Flatten || k == OpKind::Reshape || k == OpKind::Pad;
}

QuantParams activationParams(double lo, double hi, Domain d) {
    if (d == Domain::Int16) return symmetricParams(std::max(std::fabs(lo), std::fabs(hi)), 16);
    return asymmetricParams(lo, hi, quantRange(8, Scheme::Asymmetric));
}

using Calibration = GraphCalibration;  // graph and samples filled by the caller

constexpr int kCalibrationBins = 2048;  // TensorRT's entropy calibration uses 2048 bins

// Runs the folded float graph over the calibration rows on all threads, in batches; `visit`
// gets (thread, first row, op outputs) and must only touch that thread's state.
template <class Visit>
void forEachCalibrationBatch(const OpGraph& g, const RowMatrix& rows, int threads, const Progress& progress, int64_t pass,
                             int64_t passes, Visit visit) {
    const int64_t n = rows.rows();
    parallelBatches(n, 64, threads, progress, pass * n, passes * n,
                    [&](int t, int64_t b0, int64_t bn) { visit(t, b0, runFloatGraph(g, rows.middleRows(b0, bn), true)); });
}

// The rows of a weighted op's GEMM input for a batch: the input itself for Dense (one row per
// sample and leading position), im2col patches for Conv2D.
RowMatrix gemmInputRows(const Op& op, const Act& in) {
    if (op.kind == OpKind::Dense) {
        const int64_t K = op.kernel.shape.at(0);
        return Eigen::Map<const RowMatrix>(in.x.data(), in.x.size() / K, K);
    }
    const ConvGeometry geo = convGeometry(in.shape, op.kernel.shape, op.config);
    const int64_t per = geo.OH * geo.OW, K = geo.KH * geo.KW * geo.C;
    RowMatrix all(in.x.rows() * per, K);
    for (Eigen::Index n = 0; n < in.x.rows(); ++n) im2col(in.x.row(n).data(), geo, 0.0f, all.data() + n * per * K);
    return all;
}

// Ops whose GPTQ Hessian (K x K, K the GEMM depth) is worth computing: Dense and Conv2D up to
// this depth (8 MB per copy at 1024; the O(K^2 N) rounding stays under a second), and every
// DepthwiseConv2D (one T x T Hessian per input channel, T = KH * KW taps).
constexpr int64_t kMaxHessianDepth = 1024;
constexpr int64_t kHessianSamples = 128;  // calibration samples the Hessians are summed over

}  // namespace

bool gptqApplies(const Op& op) {
    if (op.kind == OpKind::Depthwise) return op.kernel.shape.at(0) * op.kernel.shape.at(1) <= kMaxHessianDepth;
    if (op.kind != OpKind::Dense && op.kind != OpKind::Conv2D) return false;
    return op.kernel.size() / op.kernel.shape.back() <= kMaxHessianDepth;
}

namespace {

// A depthwise op's Hessians over a batch: output channel c * M + m sees only input channel c's
// T taps, so its squared output error is w^T H_c w with H_c the T x T sum of that channel's
// patches' outer products. Returned side by side, T x (T * C): block c at columns c * T.
Eigen::MatrixXd depthwiseHessians(const Op& op, const Act& in) {
    const ConvGeometry geo = convGeometry(in.shape, op.kernel.shape, op.config);
    const int64_t T = geo.KH * geo.KW, C = geo.C, per = geo.OH * geo.OW;
    Eigen::MatrixXd h = Eigen::MatrixXd::Zero(T, T * C);
    std::vector<float> patches;
    using Strided = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>>;
    for (Eigen::Index n = 0; n < in.x.rows(); ++n) {
        im2col(in.x.row(n).data(), geo, 0.0f, patches);  // rows: pixels; columns (ky, kx, c)
        for (int64_t c = 0; c < C; ++c) {  // channel c's (pixel, tap) values: every C-th column
            const Eigen::MatrixXd xc = Strided(patches.data() + c, per, T, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(T * C, C)).cast<double>();
            h.middleCols(c * T, T).noalias() += xc.transpose() * xc;
        }
    }
    return h;
}

Calibration calibrate(const OpGraph& g, const RowMatrix& rows, const std::vector<bool>& needs_hist, int threads,
                      const Progress& progress, const std::vector<bool>& needs_hessian = {}) {
    const size_t n_ops = g.ops.size();
    Calibration c;
    const float inf = std::numeric_limits<float>::infinity();
    std::vector<std::vector<float>> lo(static_cast<size_t>(threads), std::vector<float>(n_ops, inf));
    std::vector<std::vector<float>> hi(static_cast<size_t>(threads), std::vector<float>(n_ops, -inf));
    c.shapes.resize(n_ops);
    std::mutex shape_mutex;
    const bool any_hist = std::find(needs_hist.begin(), needs_hist.end(), true) != needs_hist.end();
    const int64_t passes = any_hist ? 2 : 1;
    // Per op, per channel (the last dimension): sums of the finite values and their counts.
    std::vector<std::vector<std::vector<double>>> sums(static_cast<size_t>(threads), std::vector<std::vector<double>>(n_ops));
    std::vector<std::vector<int64_t>> rows_seen(static_cast<size_t>(threads), std::vector<int64_t>(n_ops, 0));
    std::vector<std::vector<Eigen::MatrixXd>> hess(static_cast<size_t>(threads), std::vector<Eigen::MatrixXd>(n_ops));
    forEachCalibrationBatch(g, rows, threads, progress, 0, passes, [&](int t, int64_t b0, const std::vector<Act>& acts) {
        for (size_t i = 0; i < needs_hessian.size() && b0 < kHessianSamples; ++i) {
            if (!needs_hessian[i]) continue;
            const Act& in = acts[static_cast<size_t>(g.ops[i].inputs.at(0))];
            Eigen::MatrixXd& h = hess[static_cast<size_t>(t)][i];
            if (g.ops[i].kind == OpKind::Depthwise) {
                Eigen::MatrixXd d = depthwiseHessians(g.ops[i], in);
                if (h.size() == 0) h = std::move(d);
                else h += d;
                continue;
            }
            const RowMatrix x = gemmInputRows(g.ops[i], in);
            if (h.size() == 0) h = Eigen::MatrixXd::Zero(x.cols(), x.cols());
            h += (x.transpose() * x).cast<double>();
        }
        for (size_t i = 0; i < n_ops; ++i) {
            const RowMatrix& x = acts[i].x;
            const int64_t channels = acts[i].shape.empty() ? 1 : std::max<int64_t>(1, acts[i].shape.back());
            std::vector<double>& sum = sums[static_cast<size_t>(t)][i];
            sum.resize(static_cast<size_t>(channels), 0.0);
            for (Eigen::Index k = 0; k < x.size(); ++k) {
                const float v = x.data()[k];
                if (!std::isfinite(v)) continue;
                lo[static_cast<size_t>(t)][i] = std::min(lo[static_cast<size_t>(t)][i], v);
                hi[static_cast<size_t>(t)][i] = std::max(hi[static_cast<size_t>(t)][i], v);
                sum[static_cast<size_t>(k % channels)] += v;
            }
            rows_seen[static_cast<size_t>(t)][i] += x.size() / channels;
        }
        if (t == 0 && c.shapes[0].empty()) {
            std::lock_guard<std::mutex> lock(shape_mutex);
            for (size_t i = 0; i < n_ops; ++i) c.shapes[i] = acts[i].shape;
        }
    });
    c.lo.assign(n_ops, inf);
    c.hi.assign(n_ops, -inf);
    for (int t = 0; t < threads; ++t)
        for (size_t i = 0; i < n_ops; ++i) {
            c.lo[i] = std::min(c.lo[i], lo[static_cast<size_t>(t)][i]);
            c.hi[i] = std::max(c.hi[i], hi[static_cast<size_t>(t)][i]);
        }
    for (size_t i = 0; i < n_ops; ++i)
        if (c.lo[i] > c.hi[i]) c.lo[i] = c.hi[i] = 0;  // no finite value seen
    c.channel_mean.assign(n_ops, {});
    for (size_t i = 0; i < n_ops; ++i) {
        int64_t count = 0;
        for (int t = 0; t < threads; ++t) {
            const std::vector<double>& sum = sums[static_cast<size_t>(t)][i];
            if (c.channel_mean[i].size() < sum.size()) c.channel_mean[i].resize(sum.size(), 0.0);
            for (size_t ch = 0; ch < sum.size(); ++ch) c.channel_mean[i][ch] += sum[ch];
            count += rows_seen[static_cast<size_t>(t)][i];
        }
        for (double& m : c.channel_mean[i]) m = count > 0 ? m / static_cast<double>(count) : 0.0;
    }
    c.hessian.assign(n_ops, {});
    for (size_t i = 0; i < n_ops; ++i)
        for (int t = 0; t < threads; ++t) {
            Eigen::MatrixXd& h = hess[static_cast<size_t>(t)][i];
            if (h.size() == 0) continue;
            if (c.hessian[i].size() == 0) c.hessian[i] = std::move(h);
            else c.hessian[i] += h;
        }
    if (!any_hist) return c;
    // Second pass: |x| histograms over [0, max |x|] for the clipping methods.
    std::vector<std::vector<Histogram>> hists(static_cast<size_t>(threads), std::vector<Histogram>(n_ops));
    forEachCalibrationBatch(g, rows, threads, progress, 1, 2, [&](int t, int64_t, const std::vector<Act>& acts) {
        for (size_t i = 0; i < n_ops; ++i) {
            if (!needs_hist[i]) continue;
            const double max_abs = std::max(std::fabs(c.lo[i]), std::fabs(c.hi[i]));
            Histogram h = absHistogram(acts[i].x.data(), acts[i].x.size(), max_abs > 0 ? max_abs : 1.0, kCalibrationBins, 1);
            Histogram& acc = hists[static_cast<size_t>(t)][i];
            if (acc.counts.empty()) acc = std::move(h);
            else
                for (size_t b = 0; b < h.counts.size(); ++b) acc.counts[b] += h.counts[b];
        }
    });
    c.abs_hist.resize(n_ops);
    for (size_t i = 0; i < n_ops; ++i) {
        for (int t = 0; t < threads; ++t) {
            Histogram& h = hists[static_cast<size_t>(t)][i];
            if (h.counts.empty()) continue;
            if (c.abs_hist[i].counts.empty()) c.abs_hist[i] = std::move(h);
            else
                for (size_t b = 0; b < h.counts.size(); ++b) c.abs_hist[i].counts[b] += h.counts[b];
        }
    }
    return c;
}

// The activation method's clip of |x| (min_max: none).
double activationClip(const std::string& method, const Histogram& h, int bits) {
    if (method == "percentile_99.9") return percentileClip(h, 99.9);
    if (method == "percentile_99.99") return percentileClip(h, 99.99);
    if (method == "kl") return klClip(h, bits);
    if (method == "mse") return mseClipFinalists(h, bits, 1).at(0);
    return std::numeric_limits<double>::infinity();
}

}  // namespace

struct ClipCache {
    std::mutex mutex;
    std::map<std::tuple<size_t, std::string, int>, double> clips;  // (op, method, bits)
};

namespace {

// activationClip of op i's histogram, computed once per calibration.
double cachedClip(const Calibration& cal, size_t i, const std::string& method, int bits) {
    if (!cal.clips) return activationClip(method, cal.abs_hist[i], bits);
    std::lock_guard<std::mutex> lock(cal.clips->mutex);
    const auto key = std::make_tuple(i, method, bits);
    const auto it = cal.clips->clips.find(key);
    if (it != cal.clips->clips.end()) return it->second;
    return cal.clips->clips[key] = activationClip(method, cal.abs_hist[i], bits);
}

Tensor affineKernel(const Op& op) {
    Tensor t;
    t.name = op.name + "/multiplier";
    for (double m : op.affine.mul) t.data.push_back(static_cast<float>(m));
    t.shape = {static_cast<int64_t>(t.data.size())};
    return t;
}

std::vector<float> affineBias(const Op& op) {
    std::vector<float> b;
    for (double a : op.affine.add) b.push_back(static_cast<float>(a));
    return b;
}

void roundTensorToFloat16(std::vector<float>& v) { roundToFloat16(v.data(), static_cast<int64_t>(v.size())); }

// Bias correction (Nagel et al., "Data-Free Quantization Through Weight Equalization and Bias
// Correction", 2019; AIMET's bias correction): quantizing the weights moves each output
// channel's mean by sum_k (w_q - w)[k] E[x_k]; that expected shift, from the per-channel means of
// the op's input over the calibration samples, is taken off the bias. (Zero padding at the
// borders is not counted: the correction is for the interior, where nearly all outputs are.)
std::vector<float> correctedBias(const Op& op, const Tensor& kernel, const std::vector<float>& deq, std::vector<float> bias,
                                 int64_t channels, const std::vector<double>& mean_in) {
    const int64_t in_channels = kernel.shape.size() >= 2 ? kernel.shape[kernel.shape.size() - 2] : 0;
    if (mean_in.empty() || static_cast<int64_t>(mean_in.size()) != in_channels || channels <= 0) return bias;
    std::vector<double> shift(static_cast<size_t>(channels), 0.0);
    const int64_t multiplier = op.kind == OpKind::Depthwise ? kernel.shape.back() : 1;
    for (int64_t k = 0; k < kernel.size(); ++k) {
        const int64_t out = k % channels;
        // Depthwise (kh, kw, in, multiplier): output channel c * multiplier + m reads input c.
        // Dense (in, out) and Conv2D (kh, kw, in, out): row k / out, input channel fastest.
        const int64_t in = op.kind == OpKind::Depthwise ? out / multiplier : (k / channels) % in_channels;
        shift[static_cast<size_t>(out)] += (static_cast<double>(deq[static_cast<size_t>(k)]) - kernel.data[static_cast<size_t>(k)]) *
                                           mean_in[static_cast<size_t>(in)];
    }
    for (int64_t c = 0; c < channels; ++c) bias[static_cast<size_t>(c)] -= static_cast<float>(shift[static_cast<size_t>(c)]);
    return bias;
}

int64_t floatWeightBytes(const Model& m) {
    int64_t n = 0;
    for (const Layer& l : m.layers)
        for (const Tensor& t : l.weights) n += 4 * t.size();
    return n;
}

class Quantizer {
public:
    Quantizer(const Model& m, const QuantConfig& cfg, int threads) : m_(m), cfg_(cfg), threads_(threads) {}

    QuantizedModel run(const RowMatrix& calib, const Shape& fallback, const Progress& progress) {
        QuantizedModel q;
        q.graph = lowerModel(m_, fallback, /*fold_batch_norm=*/true);
        checkCalibrationRows(q.graph, calib);
        const OpGraph& g = q.graph;
        q.ops.resize(g.ops.size());
        for (size_t i = 0; i < g.ops.size(); ++i) assignDomain(q, i);
        std::vector<bool> needs_hist(g.ops.size(), false);
        for (size_t i = 0; i < g.ops.size(); ++i)
            needs_hist[i] = q.ops[i].domain != Domain::Float && !q.ops[i].passthrough &&
                            cfg_.forLayer(g.ops[i].layer).activation_method != "min_max";
        std::vector<bool> needs_hessian(g.ops.size(), false);
        for (size_t i = 0; i < g.ops.size(); ++i)
            needs_hessian[i] = q.ops[i].domain != Domain::Float && cfg_.forLayer(g.ops[i].layer).gptq && gptqApplies(g.ops[i]);
        Calibration cal = calibrate(g, calib, needs_hist, threads_, progress, needs_hessian);
        cal.samples = calib.rows();
        finish(q, cal, progress);
        return q;
    }

    // Every op's range and histogram (any config may then be quantized from it).
    Calibration calibrateAll(const RowMatrix& calib, const Shape& fallback, const Progress& progress, bool hessians) {
        OpGraph g = lowerModel(m_, fallback, /*fold_batch_norm=*/true);
        checkCalibrationRows(g, calib);
        std::vector<bool> needs_hist(g.ops.size(), false);
        for (size_t i = 0; i < g.ops.size(); ++i)
            needs_hist[i] = !isPassthrough(g.ops[i].kind) && g.ops[i].kind != OpKind::Softmax;
        std::vector<bool> needs_hessian(g.ops.size(), false);
        for (size_t i = 0; i < g.ops.size(); ++i) needs_hessian[i] = hessians && gptqApplies(g.ops[i]);
        Calibration cal = calibrate(g, calib, needs_hist, threads_, progress, needs_hessian);
        cal.graph = std::move(g);
        cal.samples = calib.rows();
        cal.clips = std::make_shared<ClipCache>();
        return cal;
    }

    QuantizedModel fromCalibration(const Calibration& cal, const QuantizedModel* like) {
        like_ = like && like->ops.size() == cal.graph.ops.size() ? like : nullptr;
        QuantizedModel q;
        q.graph = cal.graph;
        q.ops.resize(q.graph.ops.size());
        for (size_t i = 0; i < q.graph.ops.size(); ++i) assignDomain(q, i);
        finish(q, cal, Progress::none());
        return q;
    }

private:
    const Model& m_;
    const QuantConfig& cfg_;
    int threads_;
    const QuantizedModel* like_ = nullptr;  // ops to copy where nothing differs (fromCalibration)

    [[noreturn]] void fail(const Op& op, const std::string& msg) const { throw Error(m_.source_path, "layer " + op.layer, msg); }

    void checkCalibrationRows(const OpGraph& g, const RowMatrix& calib) const {
        if (calib.rows() == 0) throw Error(m_.source_path, "", "calibration needs at least one sample");
        if (calib.cols() != prod(g.input_shape))
            throw Error(m_.source_path, "", "calibration samples have " + std::to_string(calib.cols()) +
                                                " values but the model's input takes " + std::to_string(prod(g.input_shape)));
    }

    // Domains assigned: the weights, multipliers and sizes from the calibration.
    void finish(QuantizedModel& q, const Calibration& cal, const Progress& progress) {
        q.config = cfg_;
        q.notes = q.graph.notes;
        q.calibration_samples = cal.samples;
        q.shapes = cal.shapes;
        for (size_t i = 0; i < q.graph.ops.size(); ++i) {
            progress.checkCancelled();
            prepare(q, i, cal);
        }
        q.float_weight_bytes = floatWeightBytes(m_);
        for (const QuantizedOp& o : q.ops) q.quantized_weight_bytes += o.weight_bytes;
        peakActivations(q);
    }

    void assignDomain(QuantizedModel& q, size_t i) {
        const Op& op = q.graph.ops[i];
        QuantizedOp& o = q.ops[i];
        const LayerQuant& lq = cfg_.forLayer(op.layer);
        o.precision = lq.precision;
        o.granularity = lq.granularity;
        if (isPassthrough(op.kind)) {
            const QuantizedOp& src = q.ops[static_cast<size_t>(op.inputs.at(0))];
            o.passthrough = true;
            o.domain = src.domain;
            o.precision = src.precision;
            return;
        }
        if (cfg_.mode == QuantMode::Float16) {
            o.precision = Precision::Float16;
            o.domain = Domain::Float;
            return;
        }
        if (op.kind == OpKind::Softmax || cfg_.mode == QuantMode::Hybrid || !isInteger(lq.precision) ||
            (op.kind == OpKind::Multiply && op.inputs.size() != 2)) {
            o.domain = Domain::Float;
            o.hybrid = cfg_.mode == QuantMode::Hybrid && op.hasWeights() && isInteger(lq.precision);
            if (op.kind == OpKind::Softmax || (!o.hybrid && isInteger(o.precision))) o.precision = Precision::Float32;
            return;
        }
        o.domain = activationBits(lq) == 16 ? Domain::Int16 : Domain::Int8;
    }

    void prepare(QuantizedModel& q, size_t i, const Calibration& cal) {
        const Op& op = q.graph.ops[i];
        QuantizedOp& o = q.ops[i];
        o.sim = op;
        o.seen_lo = cal.lo[i], o.seen_hi = cal.hi[i];
        o.range_lo = cal.lo[i], o.range_hi = cal.hi[i];
        for (int j : op.inputs) {
            const QuantizedOp& src = q.ops[static_cast<size_t>(j)];
            o.in.push_back(o.domain == Domain::Float ? QuantParams{}
                           : src.domain == o.domain ? src.out
                                                   : activationParams(src.range_lo, src.range_hi, o.domain));
        }
        if (like_ && sameInputs(o, like_->ops[i]) && cfg_.forLayer(op.layer) == like_->config.forLayer(op.layer)) {
            o = like_->ops[i];  // what follows depends on nothing else (the calibration is the same)
            return;
        }
        if (o.domain == Domain::Float) {
            if (o.hybrid) quantizeWeights(op, o, false, inputMean(op, cal), cal.hessian.empty() ? nullptr : &cal.hessian[i]);
            else if (o.precision == Precision::Float16) floatWeights(op, o, 2);
            else floatWeights(op, o, 4);
            return;
        }
        if (o.passthrough) {
            const QuantizedOp& src = q.ops[static_cast<size_t>(op.inputs[0])];
            o.out = src.out;
            o.range_lo = src.range_lo, o.range_hi = src.range_hi;
            o.qlo = o.out.qmin, o.qhi = o.out.qmax;
            o.weight_bytes = 0;
            return;
        }
        const LayerQuant& lq = cfg_.forLayer(op.layer);
        if (lq.activation_method != "min_max" && !cal.abs_hist.empty() && !cal.abs_hist[i].counts.empty()) {
            const double clip = cachedClip(cal, i, lq.activation_method, o.domain == Domain::Int16 ? 16 : 8);
            o.range_lo = static_cast<float>(std::max<double>(o.range_lo, -clip));
            o.range_hi = static_cast<float>(std::min<double>(o.range_hi, clip));
        }
        o.out = activationParams(o.range_lo, o.range_hi, o.domain);
        o.qlo = o.out.qmin, o.qhi = o.out.qmax;
        if (std::isfinite(op.clamp_lo)) o.qlo = std::max(o.qlo, quantize(op.clamp_lo, o.out));
        if (std::isfinite(op.clamp_hi)) o.qhi = std::min(o.qhi, quantize(op.clamp_hi, o.out));
        o.weight_bytes = 8;  // output scale and zero point
        if (op.hasWeights()) quantizeWeights(op, o, true, inputMean(op, cal), cal.hessian.empty() ? nullptr : &cal.hessian[i]);
        switch (op.kind) {
            case OpKind::Add: prepareAdd(op, o); break;
            case OpKind::Multiply:
                o.out_mult = quantizeMultiplier(o.in[0].scale * o.in[1].scale / o.out.scale);
                break;
            case OpKind::Maximum:
            case OpKind::Minimum:
            case OpKind::Concat:
                for (const QuantParams& p : o.in) o.in_mult.push_back(quantizeMultiplier(p.scale / o.out.scale));
                break;
            case OpKind::Elementwise: prepareLut(op, o); break;
            case OpKind::Input: o.in = {o.out}; break;
            default: break;
        }
    }

    // The same domain and input parameters as `other` (assignDomain's results and o.in).
    static bool sameInputs(const QuantizedOp& o, const QuantizedOp& other) {
        return o.domain == other.domain && o.precision == other.precision && o.granularity == other.granularity && o.hybrid == other.hybrid &&
               o.passthrough == other.passthrough && o.in == other.in;
    }

    void floatWeights(const Op& op, QuantizedOp& o, int bytes) {
        int64_t n = 0;
        if (op.kind == OpKind::ChannelAffine) n = 2 * static_cast<int64_t>(op.affine.mul.size());
        else if (op.hasWeights()) n = op.kernel.size() + static_cast<int64_t>(op.bias.size());
        o.weight_bytes = n * bytes;
        if (bytes == 2 && op.hasWeights()) {
            if (op.kind == OpKind::ChannelAffine) {
                for (double& v : o.sim.affine.mul) v = roundToFloat16(static_cast<float>(v));
                for (double& v : o.sim.affine.add) v = roundToFloat16(static_cast<float>(v));
            } else {
                roundTensorToFloat16(o.sim.kernel.data);
                roundTensorToFloat16(o.sim.bias);
            }
        }
    }

    // Weights, biases and per-channel multipliers. `integer`: int8/int16 activations (biases
    // in integers); else hybrid (float activations and biases).
    static const std::vector<double>& inputMean(const Op& op, const Calibration& cal) {
        static const std::vector<double> none;
        if (op.inputs.empty() || cal.channel_mean.empty()) return none;
        return cal.channel_mean[static_cast<size_t>(op.inputs[0])];
    }

    void quantizeWeights(const Op& op, QuantizedOp& o, bool integer, const std::vector<double>& mean_in, const Eigen::MatrixXd* hessian) {
        const LayerQuant& lq = cfg_.forLayer(op.layer);
        if (std::find(weightMethods().begin(), weightMethods().end(), lq.weight_method) == weightMethods().end())
            fail(op, "weight method '" + lq.weight_method + "' is not symmetric; the integer engine needs zero-point-0 weights");
        const bool affine = op.kind == OpKind::ChannelAffine;
        const Tensor kernel = affine ? affineKernel(op) : op.kernel;
        std::vector<float> bias = affine ? affineBias(op) : op.bias;
        const int64_t channels = affine ? static_cast<int64_t>(bias.size()) : op.outChannels();
        o.weight_bits = weightBits(o.precision);
        o.w_params = weightCandidate(kernel, channels, lq, 1).params;
        auto wp = [&](int64_t c) -> const QuantParams& { return o.w_params.size() == 1 ? o.w_params[0] : o.w_params[static_cast<size_t>(c)]; };
        o.wq.resize(static_cast<size_t>(kernel.size()));
        std::vector<float> deq(static_cast<size_t>(kernel.size()));
        std::vector<int32_t> levels;
        if (lq.gptq && !affine && hessian && op.kind == OpKind::Depthwise)
            levels = depthwiseGptqLevels(kernel.data.data(), kernel.shape.at(0) * kernel.shape.at(1), kernel.shape.at(2), kernel.shape.at(3),
                                         o.w_params, *hessian);
        else if (lq.gptq && !affine && hessian && hessian->rows() == kernel.size() / channels)
            levels = gptqLevels(kernel.data.data(), kernel.size() / channels, channels, o.w_params, *hessian);
        for (int64_t k = 0; k < kernel.size(); ++k) {
            const QuantParams& p = wp(k % channels);
            o.wq[static_cast<size_t>(k)] =
                static_cast<int16_t>(levels.empty() ? quantize(kernel.data[static_cast<size_t>(k)], p) : levels[static_cast<size_t>(k)]);
            deq[static_cast<size_t>(k)] = dequantize(o.wq[static_cast<size_t>(k)], p);
        }
        const int64_t n = kernel.size();
        const int64_t scale_bytes = 4 * static_cast<int64_t>(o.w_params.size());
        if (lq.bias_correction && !affine) bias = correctedBias(op, kernel, deq, bias, channels, mean_in);
        std::vector<float> sim_bias = bias;
        if (integer) {
            const double s_in = o.in.at(0).scale;
            const bool wide = o.domain == Domain::Int16;
            o.bias_q.resize(static_cast<size_t>(channels));
            o.mult.resize(static_cast<size_t>(channels));
            for (int64_t c = 0; c < channels; ++c) {
                const double s = s_in * wp(c).scale;
                double b = std::round(static_cast<double>(bias[static_cast<size_t>(c)]) / s);
                const double lim = wide ? 9.0e18 : 2147483647.0;
                b = std::clamp(b, -lim, lim);
                o.bias_q[static_cast<size_t>(c)] = static_cast<int64_t>(b);
                sim_bias[static_cast<size_t>(c)] = static_cast<float>(b * s);
                o.mult[static_cast<size_t>(c)] = quantizeMultiplier(s / o.out.scale);
            }
            o.weight_bytes += (n * o.weight_bits + 7) / 8 + scale_bytes + channels * (wide ? 8 : 4);
            for (int64_t b : o.bias_q) o.bias32.push_back(static_cast<int32_t>(std::clamp<int64_t>(b, INT32_MIN, INT32_MAX)));
            splitMultipliers(o.mult, o.mult_m, o.mult_rshift, o.mult_lshift);
        } else {
            o.weight_bytes = (n * o.weight_bits + 7) / 8 + scale_bytes + channels * 4;
        }
        if (affine) {
            for (int64_t c = 0; c < channels; ++c) {
                o.sim.affine.mul[static_cast<size_t>(c)] = deq[static_cast<size_t>(c)];
                o.sim.affine.add[static_cast<size_t>(c)] = sim_bias[static_cast<size_t>(c)];
            }
        } else {
            o.sim.kernel.data = std::move(deq);
            o.sim.bias = std::move(sim_bias);
        }
        const bool gemm = (op.kind == OpKind::Dense || op.kind == OpKind::Conv2D) && o.weight_bits <= 8;
        // int16 activations: on the int8 GEMM split into bytes where it can (no double copy of the
        // weights, 8 bytes each), else the double GEMM's weights.
        if ((op.kind == OpKind::Dense || op.kind == OpKind::Conv2D) && o.domain == Domain::Int16 && !(gemm && n / channels < kMaxSplitDepth))
            o.w_wide.assign(o.wq.begin(), o.wq.end());
        if (gemm) {  // int16 activations use it too (matmulWide's byte split)
            std::vector<int8_t> w8(o.wq.begin(), o.wq.end());
            o.gemm = packWeights(w8.data(), n / channels, channels);
            const int64_t run = op.kind == OpKind::Conv2D ? op.kernel.shape[1] * op.kernel.shape[2] : 0;
            if (run % 4 && o.domain == Domain::Int8)  // the implicit-patch paths' kernel rows (VNNI and AVX2)
                o.gemm_patches = packPatchWeights(w8.data(), op.kernel.shape[0], run, channels);
            if (op.kind == OpKind::Conv2D && o.domain == Domain::Int8 && kernels::amxSupported())  // AMX reading rows in place
                addAmxConvLayout(o.gemm_patches.K ? o.gemm_patches : o.gemm, op.kernel.shape[0]);
        }
    }

    // TFLite's integer Add: inputs brought to a common scale 2 * max(s_i) with 20 bits of
    // headroom (15 for int16), summed, then scaled to the output (TFLite reference add.h).
    void prepareAdd(const Op& op, QuantizedOp& o) {
        double max_s = 0;
        for (const QuantParams& p : o.in) max_s = std::max(max_s, p.scale);
        const double twice = 2 * max_s;
        o.left_shift = o.domain == Domain::Int16 ? 15 : 20;
        for (size_t j = 0; j < o.in.size(); ++j) {
            o.in_mult.push_back(quantizeMultiplier(std::fabs(op.coeffs[j]) * o.in[j].scale / twice));
            o.in_negate.push_back(op.coeffs[j] < 0);
        }
        o.out_mult = quantizeMultiplier(twice / (std::ldexp(1.0, o.left_shift) * o.out.scale));
    }

    // Every input level mapped through the float function once: the op is a table lookup.
    void prepareLut(const Op& op, QuantizedOp& o) {
        const QuantParams& in = o.in.at(0);
        o.lut.resize(static_cast<size_t>(in.qmax - in.qmin + 1));
        for (int32_t qv = in.qmin; qv <= in.qmax; ++qv) {
            const float y = op.fn(dequantize(qv, in));
            o.lut[static_cast<size_t>(qv - in.qmin)] = std::clamp(quantize(y, o.out), o.qlo, o.qhi);
        }
    }

    // The largest set of activations alive at once for one sample, as a microcontroller
    // arena holds them: an op's inputs and output are alive together, each tensor until its
    // last reader has run. Flatten (channels_last) and Reshape alias their input.
    static void peakActivations(QuantizedModel& q) {
        const OpGraph& g = q.graph;
        const size_t n = g.ops.size();
        std::vector<size_t> root(n), last(n, 0);
        for (size_t i = 0; i < n; ++i) {
            const Op& op = g.ops[i];
            const bool alias = (op.kind == OpKind::Reshape || (op.kind == OpKind::Flatten && !op.chw_flatten)) && !op.inputs.empty();
            root[i] = alias ? root[static_cast<size_t>(op.inputs[0])] : i;
            last[root[i]] = std::max(last[root[i]], i);
            for (int j : op.inputs) last[root[static_cast<size_t>(j)]] = std::max(last[root[static_cast<size_t>(j)]], i);
        }
        last[root[static_cast<size_t>(g.output)]] = n;
        auto bytesPer = [&](size_t i, bool quantized) -> int64_t {
            if (!quantized) return 4;
            const QuantizedOp& o = q.ops[i];
            if (o.domain == Domain::Int8) return 1;
            if (o.domain == Domain::Int16 || o.precision == Precision::Float16) return 2;
            return 4;
        };
        for (bool quantized : {false, true}) {
            int64_t peak = 0;
            for (size_t i = 0; i < n; ++i) {
                int64_t live = 0;
                for (size_t j = 0; j <= i; ++j)
                    if (root[j] == j && last[j] >= i) live += prod(q.shapes[j]) * bytesPer(j, quantized);
                peak = std::max(peak, live);
            }
            (quantized ? q.quantized_peak_activation_bytes : q.float_peak_activation_bytes) = peak;
        }
    }
};

}  // namespace

QuantizedModel quantizeModel(const Model& model, const QuantConfig& config, const RowMatrix& calibration, const Shape& fallback_input,
                             const Progress& progress, int threads) {
    if (threads <= 0) threads = defaultThreadCount();
    return Quantizer(model, config, threads).run(calibration, fallback_input, progress);
}

GraphCalibration calibrateModel(const Model& model, const RowMatrix& calibration, const Shape& fallback_input, const Progress& progress,
                                int threads, bool hessians) {
    if (threads <= 0) threads = defaultThreadCount();
    return Quantizer(model, QuantConfig{}, threads).calibrateAll(calibration, fallback_input, progress, hessians);
}

QuantizedModel quantizeCalibrated(const Model& model, const GraphCalibration& calibration, const QuantConfig& config,
                                  const QuantizedModel* like) {
    return Quantizer(model, config, 1).fromCalibration(calibration, like);
}

}  // namespace qs
