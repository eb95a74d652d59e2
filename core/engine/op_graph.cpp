#include "engine/op_graph.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

#include "base/error.h"

namespace qs {

using nlohmann::json;

const char* opKindName(OpKind k) {
    switch (k) {
        case OpKind::Input: return "Input";
        case OpKind::Dense: return "Dense";
        case OpKind::Conv2D: return "Conv2D";
        case OpKind::Depthwise: return "DepthwiseConv2D";
        case OpKind::ChannelAffine: return "ChannelAffine";
        case OpKind::MaxPool: return "MaxPool";
        case OpKind::AvgPool: return "AvgPool";
        case OpKind::GlobalAvgPool: return "GlobalAvgPool";
        case OpKind::GlobalMaxPool: return "GlobalMaxPool";
        case OpKind::Flatten: return "Flatten";
        case OpKind::Reshape: return "Reshape";
        case OpKind::Pad: return "Pad";
        case OpKind::Add: return "Add";
        case OpKind::Multiply: return "Multiply";
        case OpKind::Maximum: return "Maximum";
        case OpKind::Minimum: return "Minimum";
        case OpKind::Concat: return "Concat";
        case OpKind::Elementwise: return "Elementwise";
        case OpKind::Softmax: return "Softmax";
    }
    return "?";
}

namespace {

const std::set<std::string>& identityLayers() {
    static const std::set<std::string> s = {"Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout",
                                            "AlphaDropout", "ActivityRegularization"};
    return s;
}

class Lowering {
public:
    Lowering(const Model& m, bool fold) : m_(m), fold_(fold) {}

    OpGraph run(const Shape& fallback_input) {
        if (!m_.has_architecture) throw Error(m_.source_path, "", "no architecture: give --arch FILE to run a weights-only file");
        if (m_.layers.empty()) throw Error(m_.source_path, "", "the model has no layers");
        g_.source = m_.source_path;
        for (const Layer& l : m_.layers)
            if (str(l.config, "data_format", "") == "channels_first") g_.chw_input = true;
        inputShape(fallback_input);
        for (const Layer& l : m_.layers) lowerLayer(l);
        const std::string out = m_.outputs.empty() ? m_.layers.back().name : m_.outputs.front().layer;
        g_.output = at(out, m_.layers.back());
        return std::move(g_);
    }

private:
    const Model& m_;
    bool fold_;
    OpGraph g_;
    std::map<std::string, int> op_of_;  // Keras layer name -> op computing its output
    bool saw_input_ = false;

    [[noreturn]] void fail(const Layer& l, const std::string& msg) const { throw Error(m_.source_path, "layer " + l.name, msg); }

    int at(const std::string& layer, const Layer& user) const {
        auto it = op_of_.find(layer);
        if (it == op_of_.end()) fail(user, "takes its input from '" + layer + "', which is not computed before it");
        return it->second;
    }

    void inputShape(const Shape& fallback) {
        const Layer& first = m_.layers.front();
        if (!first.output_shape && first.kind == "InputLayer") fail(first, "input shape unknown");
        json bis = first.kind == "InputLayer" ? json(*first.output_shape) : first.config.value("batch_input_shape", json());
        if ((!bis.is_array() || bis.size() < 2) && !fallback.empty()) {
            bis = json::array({nullptr});
            Shape f = fallback;  // (H, W, C); a channels_first model takes (C, H, W)
            if (g_.chw_input && f.size() == 3) f = {f[2], f[0], f[1]};
            for (int64_t d : f) bis.push_back(d);
        }
        if (!bis.is_array() || bis.size() < 2) fail(first, "the model's input shape is unknown");
        for (size_t i = 1; i < bis.size(); ++i) {
            if (!bis[i].is_number_integer() || bis[i].get<int64_t>() <= 0) fail(first, "the input shape has a free dimension");
            g_.input_shape.push_back(bis[i].get<int64_t>());
        }
        Op in;
        in.kind = OpKind::Input;
        in.name = in.layer = first.kind == "InputLayer" ? first.name : "input";
        in.chw_logical = g_.chw_input;
        g_.ops.push_back(std::move(in));
    }

    int push(Op op) {
        g_.ops.push_back(std::move(op));
        return static_cast<int>(g_.ops.size()) - 1;
    }

    // How many layers (and model outputs) read a layer's output, looking through the identity
    // layers (Dropout ...): folding and fusing need a sole reader.
    int layerConsumers(const std::string& name, int depth = 0) const {
        if (depth > 10000) return 2;  // a cycle would have failed earlier; never fold then
        int n = 0;
        for (const Layer& l : m_.layers)
            for (const InboundRef& r : l.inbound)
                if (r.layer == name) n += identityLayers().count(l.kind) ? layerConsumers(l.name, depth + 1) : 1;
        for (const InboundRef& r : m_.outputs) n += r.layer == name;
        return n;
    }

    bool foldable(int producer, const Layer& producer_layer) const {
        const Op& p = g_.ops[static_cast<size_t>(producer)];
        return (p.kind == OpKind::Dense || p.kind == OpKind::Conv2D || p.kind == OpKind::Depthwise) &&
               std::isinf(p.clamp_lo) && std::isinf(p.clamp_hi) && layerConsumers(producer_layer.name) == 1;
    }

    const Layer* layerOfOp(int op) const {
        const std::string& n = g_.ops[static_cast<size_t>(op)].layer;
        for (const Layer& l : m_.layers)
            if (l.name == n) return &l;
        return nullptr;
    }

    // relu / relu6 as a clamp on the weighted op or Add before, when nothing else reads it
    // (TFLite's fused activation).
    bool fuseClamp(int producer, float lo, float hi) {
        Op& p = g_.ops[static_cast<size_t>(producer)];
        const Layer* pl = layerOfOp(producer);
        if (!(p.hasWeights() || p.kind == OpKind::Add) || !std::isinf(p.clamp_lo) || !std::isinf(p.clamp_hi) || !pl ||
            layerConsumers(pl->name) != 1)
            return false;
        p.clamp_lo = lo, p.clamp_hi = hi;
        return true;
    }

    // A weighted op's own activation: a clamp for relu/relu6/linear, else an op of its own.
    void activationAfter(const Layer& l, int op) {
        const std::string fn = str(l.config, "activation", "linear");
        Op& o = g_.ops[static_cast<size_t>(op)];
        if (fn == "linear") return;
        if (fn == "relu") return void(o.clamp_lo = 0);
        if (fn == "relu6") return void((o.clamp_lo = 0, o.clamp_hi = 6));
        Op a;
        a.name = l.name + "/activation";
        a.layer = l.name;
        a.inputs = {op};
        a.chw_logical = o.chw_logical;
        if (fn == "softmax") {
            a.kind = OpKind::Softmax;
        } else {
            a.kind = OpKind::Elementwise;
            a.activation = fn;
            a.fn = scalar(fn, l);
        }
        op_of_[l.name] = push(std::move(a));
    }

    ScalarFn scalar(const std::string& fn, const Layer& l) const {
        try {
            return activationFunction(fn, !m_.keras_version.empty() && m_.keras_version[0] == '3');
        } catch (const std::invalid_argument& e) {
            fail(l, e.what());
        }
    }

    static std::vector<float> biasOf(const Layer& l, size_t index, int64_t channels) {
        if (l.weights.size() > index) return l.weights[index].data;
        return std::vector<float>(static_cast<size_t>(channels), 0.0f);
    }

    void lowerLayer(const Layer& l) {
        const std::string& k = l.kind;
        const json& c = l.config;
        std::vector<int> ins;
        for (const InboundRef& r : l.inbound) ins.push_back(at(r.layer, l));
        const bool add_lambda = k == "TFOpLambda" && str(c, "function", "") == "__operators__.add";
        if (k == "InputLayer") {
            if (saw_input_ || &l != &m_.layers.front()) fail(l, "models with more than one input are not supported");
            saw_input_ = true;
            op_of_[l.name] = 0;
            return;
        }
        if (ins.empty()) {
            if (&l != &m_.layers.front()) fail(l, "has no inbound layer");
            ins = {0};  // Sequential without an InputLayer: the first layer reads the input
        }
        const Op& x = g_.ops[static_cast<size_t>(ins[0])];
        if (identityLayers().count(k)) {
            op_of_[l.name] = ins[0];
            return;
        }
        Op o;
        o.name = o.layer = l.name;
        o.inputs = ins;
        o.config = c;
        o.chw_logical = x.chw_logical;
        auto weight = [&](size_t i) -> const Tensor& {
            if (l.weights.size() <= i) fail(l, "is missing its weights");
            return l.weights[i];
        };
        if (k == "Dense") {
            o.kind = OpKind::Dense;
            o.kernel = weight(0);
            o.bias = biasOf(l, 1, o.kernel.shape.back());
            o.chw_logical = false;
            op_of_[l.name] = push(std::move(o));
            activationAfter(l, op_of_[l.name]);
        } else if (k == "Conv2D" || k == "DepthwiseConv2D" || k == "SeparableConv2D") {
            o.kind = k == "Conv2D" ? OpKind::Conv2D : OpKind::Depthwise;
            o.kernel = weight(0);
            o.chw_logical = str(c, "data_format", "") == "channels_first" || (x.chw_logical && !c.contains("data_format"));
            if (k == "SeparableConv2D") {
                o.bias.assign(static_cast<size_t>(o.outChannels()), 0.0f);
                const bool chw = o.chw_logical;
                const int dw = push(std::move(o));
                Op p;
                p.kind = OpKind::Dense;  // the 1x1 pointwise kernel (1, 1, k, u) is a Dense on the channels
                p.name = l.name + "/pointwise";
                p.layer = l.name;
                p.inputs = {dw};
                p.kernel = weight(1);
                p.kernel.shape = {p.kernel.shape[2], p.kernel.shape[3]};
                p.bias = biasOf(l, 2, p.kernel.shape.back());
                p.chw_logical = chw;
                op_of_[l.name] = push(std::move(p));
            } else {
                o.bias = biasOf(l, 1, o.outChannels());
                op_of_[l.name] = push(std::move(o));
            }
            activationAfter(l, op_of_[l.name]);
        } else if (k == "BatchNormalization") {
            const Layer* pl = layerOfOp(ins[0]);
            const int64_t channels = l.weights.empty() ? 0 : l.weights.back().size();
            ChannelAffine a = batchNormAffine(l.weights, c, channels);
            if (fold_ && pl && foldable(ins[0], *pl)) {
                Op& p = g_.ops[static_cast<size_t>(ins[0])];
                const int64_t oc = p.outChannels(), rows = p.kernel.size() / oc;
                if (oc == channels) {
                    for (int64_t r = 0; r < rows; ++r)
                        for (int64_t ch = 0; ch < oc; ++ch) {
                            float& w = p.kernel.data[static_cast<size_t>(r * oc + ch)];
                            w = static_cast<float>(w * a.mul[static_cast<size_t>(ch)]);
                        }
                    for (int64_t ch = 0; ch < oc; ++ch) {
                        float& b = p.bias[static_cast<size_t>(ch)];
                        b = static_cast<float>(b * a.mul[static_cast<size_t>(ch)] + a.add[static_cast<size_t>(ch)]);
                    }
                    g_.notes.push_back(l.name + " folded into " + p.name);
                    op_of_[l.name] = ins[0];
                    return;
                }
            }
            o.kind = OpKind::ChannelAffine;
            o.affine = std::move(a);
            op_of_[l.name] = push(std::move(o));
        } else if (k == "Activation" || k == "ReLU" || k == "LeakyReLU" || k == "ELU" || k == "Softmax") {
            const std::string fn = k == "Activation" ? str(c, "activation", "linear") : k;
            if (fn == "linear") {
                op_of_[l.name] = ins[0];
                return;
            }
            if (k == "Softmax" || fn == "softmax") {
                o.kind = OpKind::Softmax;
                op_of_[l.name] = push(std::move(o));
                return;
            }
            o.kind = OpKind::Elementwise;
            o.activation = fn;
            if (k == "ReLU" || k == "LeakyReLU") {
                const float slope = k == "LeakyReLU" ? static_cast<float>(c.value("alpha", c.value("negative_slope", 0.3)))
                                                     : static_cast<float>(c.value("negative_slope", 0.0));
                const json mv = c.value("max_value", json());
                const float maxv = mv.is_number() ? mv.get<float>() : INFINITY;
                const float thr = static_cast<float>(c.value("threshold", 0.0));
                if (slope == 0 && thr == 0 && (std::isinf(maxv) || maxv == 6.0f) && fuseClamp(ins[0], 0, maxv)) {
                    op_of_[l.name] = ins[0];
                    return;
                }
                o.activation = k == "ReLU" ? "relu_layer" : "leaky_relu";
                o.fn = [=](float v) { return v >= maxv ? maxv : (v >= thr ? v : slope * (v - thr)); };
            } else if (k == "ELU") {
                const float alpha = static_cast<float>(c.value("alpha", 1.0));
                o.fn = [alpha](float v) { return v > 0 ? v : alpha * std::expm1(v); };
            } else {
                if ((fn == "relu" && fuseClamp(ins[0], 0, INFINITY)) || (fn == "relu6" && fuseClamp(ins[0], 0, 6))) {
                    op_of_[l.name] = ins[0];
                    return;
                }
                o.fn = scalar(fn, l);
            }
            op_of_[l.name] = push(std::move(o));
        } else if (k == "Rescaling") {
            const float s = static_cast<float>(c.value("scale", 1.0)), off = static_cast<float>(c.value("offset", 0.0));
            o.kind = OpKind::Elementwise;
            o.activation = "rescaling";
            o.fn = [s, off](float v) { return v * s + off; };
            op_of_[l.name] = push(std::move(o));
        } else if (k == "MaxPooling2D" || k == "AveragePooling2D") {
            o.kind = k == "MaxPooling2D" ? OpKind::MaxPool : OpKind::AvgPool;
            o.chw_logical = str(c, "data_format", "") == "channels_first" || (x.chw_logical && !c.contains("data_format"));
            op_of_[l.name] = push(std::move(o));
        } else if (k == "GlobalAveragePooling2D" || k == "GlobalMaxPooling2D") {
            o.kind = k == "GlobalMaxPooling2D" ? OpKind::GlobalMaxPool : OpKind::GlobalAvgPool;
            o.chw_logical = false;
            op_of_[l.name] = push(std::move(o));
        } else if (k == "Flatten") {
            o.kind = OpKind::Flatten;
            // A channels_first model flattens its NCHW tensor in (C, H, W) order unless Flatten
            // itself says data_format='channels_first' (then Keras permutes to channels_last).
            o.chw_flatten = x.chw_logical && str(c, "data_format", "") != "channels_first";
            o.chw_logical = false;
            op_of_[l.name] = push(std::move(o));
        } else if (k == "Reshape") {
            if (x.chw_logical) fail(l, "Reshape in a channels_first model is not supported");
            if (!l.output_shape) fail(l, "output shape unknown");
            o.kind = OpKind::Reshape;
            o.reshape = Shape(l.output_shape->begin() + 1, l.output_shape->end());
            op_of_[l.name] = push(std::move(o));
        } else if (k == "ZeroPadding2D") {
            if (!l.output_shape) fail(l, "output shape unknown");
            o.kind = OpKind::Pad;
            o.reshape = {(*l.output_shape)[1], (*l.output_shape)[2]};
            op_of_[l.name] = push(std::move(o));
        } else if (k == "Add" || add_lambda || k == "Subtract" || k == "Average") {
            o.kind = OpKind::Add;
            const float n = static_cast<float>(ins.size());
            for (size_t j = 0; j < ins.size(); ++j)
                o.coeffs.push_back(k == "Average" ? 1.0f / n : (k == "Subtract" && j == 1 ? -1.0f : 1.0f));
            op_of_[l.name] = push(std::move(o));
        } else if (k == "Multiply" || k == "Maximum" || k == "Minimum") {
            o.kind = k == "Multiply" ? OpKind::Multiply : k == "Maximum" ? OpKind::Maximum : OpKind::Minimum;
            op_of_[l.name] = push(std::move(o));
        } else if (k == "Concatenate") {
            const int64_t axis = c.value("axis", -1);
            if (axis != -1 && !(axis >= 1 && layerRankIs(l, axis)))
                fail(l, "Concatenate on an axis other than the channels is not supported");
            o.kind = OpKind::Concat;
            op_of_[l.name] = push(std::move(o));
        } else {
            fail(l, "unsupported layer " + l.class_name.value_or(k) + " (the model opens for analysis; the engine cannot run it)");
        }
    }

    // Concatenate's axis is the channel axis when it is the last of the output shape.
    static bool layerRankIs(const Layer& l, int64_t axis) {
        return l.output_shape && static_cast<int64_t>(l.output_shape->size()) == axis + 1;
    }
};

}  // namespace

OpGraph lowerModel(const Model& model, const Shape& fallback_input, bool fold_batch_norm) {
    return Lowering(model, fold_batch_norm).run(fallback_input);
}

Act graphInput(const OpGraph& g, const RowMatrix& input) {
    Act in;
    in.x = input;
    in.shape = g.input_shape;
    if (g.chw_input && in.shape.size() == 3) {  // (C, H, W) -> NHWC inside
        const int64_t C = in.shape[0], H = in.shape[1], W = in.shape[2];
        RowMatrix t(input.rows(), input.cols());
        for (Eigen::Index n = 0; n < input.rows(); ++n)
            for (int64_t c = 0; c < C; ++c)
                for (int64_t p = 0; p < H * W; ++p) t(n, p * C + c) = input(n, c * H * W + p);
        in.x = std::move(t);
        in.shape = {H, W, C};
    }
    in.chw_logical = g.chw_input;
    return in;
}

namespace {
// A Conv2D or DepthwiseConv2D op with `post` applied to its sums.
Act runConv(const Op& op, const Act& x, const ConvPost& post) {
    Tensor b;
    b.data = op.bias;
    b.shape = {static_cast<int64_t>(op.bias.size())};
    return op.kind == OpKind::Conv2D ? conv2d(x, op.kernel, &b, op.config, post) : depthwise(x, op.kernel, &b, op.config, post);
}
}  // namespace

Act runFloatOp(const Op& op, const std::vector<const Act*>& in, Act* spare) {
    const Act& x = *in.front();
    // The first input as the start of the output: moved when spare (x is then empty).
    auto take = [&]() -> Act { return spare ? std::move(*spare) : x; };
    Act y;
    switch (op.kind) {
        case OpKind::Input: y = take(); break;
        case OpKind::Dense: {
            Tensor b;
            b.data = op.bias;
            b.shape = {static_cast<int64_t>(op.bias.size())};
            y = dense(x, op.kernel, &b);
            break;
        }
        case OpKind::Conv2D:
        case OpKind::Depthwise:
            y = runConv(op, x, ConvPost{nullptr, op.clamp_lo, op.clamp_hi});  // its clamp fused
            y.chw_logical = op.chw_logical;
            return y;
        case OpKind::ChannelAffine:  // in place, its fused clamp in the same pass
            y = take();
            channelAffineInPlace(y, op.affine, op.clamp_lo, op.clamp_hi);
            y.chw_logical = op.chw_logical;
            return y;
        case OpKind::MaxPool: y = pool2d(x, op.config, true); break;
        case OpKind::AvgPool: y = pool2d(x, op.config, false); break;
        case OpKind::GlobalAvgPool: y = globalPool(x, false); break;
        case OpKind::GlobalMaxPool: y = globalPool(x, true); break;
        case OpKind::Flatten:
            if (spare && !(op.chw_flatten && x.shape.size() == 3)) {  // same values, new shape
                const Shape flat = {prod(x.shape)};
                y = take();
                y.shape = flat;
            } else {
                y = flatten(x, op.chw_flatten);
            }
            break;
        case OpKind::Reshape:
            y.x = spare ? std::move(spare->x) : x.x;
            y.shape = op.reshape;
            break;
        case OpKind::Pad: y = zeroPad2d(x, op.config, op.reshape[0], op.reshape[1]); break;
        case OpKind::Add:
        case OpKind::Multiply:
        case OpKind::Maximum:
        case OpKind::Minimum:
            y = take();
            if (op.kind == OpKind::Add && op.coeffs[0] != 1.0f) y.x *= op.coeffs[0];
            for (size_t j = 1; j < in.size(); ++j) {
                const RowMatrix& o = in[j]->x;
                if (o.cols() != y.x.cols()) throw Error("", "layer " + op.layer, "inputs of different sizes");
                if (op.kind == OpKind::Add) y.x += op.coeffs[j] * o;
                else if (op.kind == OpKind::Multiply) y.x.array() *= o.array();
                else if (op.kind == OpKind::Maximum) y.x = y.x.cwiseMax(o);
                else y.x = y.x.cwiseMin(o);
            }
            break;
        case OpKind::Concat: y = concatChannels(in); break;
        case OpKind::Elementwise:
            y = take();
            if (op.activation == "relu") y.x = y.x.cwiseMax(0.0f);
            else y.x = y.x.unaryExpr(op.fn);
            break;
        case OpKind::Softmax:
            y = take();
            softmaxLastAxis(y);
            break;
    }
    if (op.clamp_lo > -INFINITY || op.clamp_hi < INFINITY) y.x = y.x.cwiseMax(op.clamp_lo).cwiseMin(op.clamp_hi);
    y.chw_logical = op.chw_logical;
    return y;
}

namespace {
// Whether op i is a Conv2D or DepthwiseConv2D whose only reader is op i + 1, a ChannelAffine
// (batch norm, its ReLU fused): the convolution then applies the affine and clamp to its sums,
// and the affine op passes its input on. Only when intermediate values are not kept (the conv's own
// output is then never seen).
bool affineFollows(const OpGraph& g, size_t i) {
    const Op& op = g.ops[i];
    if ((op.kind != OpKind::Conv2D && op.kind != OpKind::Depthwise) || i + 1 >= g.ops.size() || static_cast<int>(i) == g.output) return false;
    if (op.clamp_lo > -INFINITY || op.clamp_hi < INFINITY) return false;
    const Op& next = g.ops[i + 1];
    if (next.kind != OpKind::ChannelAffine || next.inputs != std::vector<int>{static_cast<int>(i)}) return false;
    for (size_t k = i + 2; k < g.ops.size(); ++k)
        if (std::count(g.ops[k].inputs.begin(), g.ops[k].inputs.end(), static_cast<int>(i)) > 0) return false;
    return true;
}
}  // namespace

std::vector<Act> runFloatGraph(const OpGraph& g, const RowMatrix& input, bool keep_all) {
    std::vector<bool> fused(g.ops.size(), false);  // fused[i]: op i's work was done by op i - 1
    return walkGraph<Act>(g, graphInput(g, input), keep_all,
                          [&](size_t i, const Op& op, const std::vector<const Act*>& ins, const std::vector<Act*>& spare) {
                              if (fused[i]) {
                                  Act y = std::move(*spare.front());  // its only reader: always spare
                                  y.chw_logical = op.chw_logical;
                                  return y;
                              }
                              if (!keep_all && affineFollows(g, i)) {
                                  const Op& next = g.ops[i + 1];
                                  fused[i + 1] = true;
                                  return runConv(op, *ins.front(), ConvPost{&next.affine, next.clamp_lo, next.clamp_hi});
                              }
                              return runFloatOp(op, ins, spare.front());
                          });
}

}  // namespace qs
