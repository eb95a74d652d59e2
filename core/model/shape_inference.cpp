#include "model/shape_inference.h"

#include <map>
#include <optional>

#include "base/error.h"

namespace qs {

using nlohmann::json;

namespace {

std::optional<Shape> shapeFromJson(const json& j) {
    if (!j.is_array()) return std::nullopt;
    Shape s;
    for (const json& d : j) {
        if (d.is_null()) s.push_back(-1);
        else if (d.is_number_integer()) s.push_back(d.get<int64_t>());
        else return std::nullopt;
    }
    return s;
}

std::vector<int64_t> intPair(const json& c, const char* key, int64_t fallback) {
    if (!c.contains(key) || c[key].is_null()) return {fallback, fallback};
    const json& v = c[key];
    if (v.is_number_integer()) return {v.get<int64_t>(), v.get<int64_t>()};
    if (v.is_array() && v.size() == 2 && v[0].is_number_integer() && v[1].is_number_integer())
        return {v[0].get<int64_t>(), v[1].get<int64_t>()};
    return {fallback, fallback};
}

int64_t intOr(const json& c, const char* key, int64_t fallback) {
    return c.contains(key) && c[key].is_number_integer() ? c[key].get<int64_t>() : fallback;
}

bool channelsFirst(const json& c) {
    return c.contains("data_format") && c["data_format"].is_string() && c["data_format"] == "channels_first";
}

// Keras conv_utils.conv_output_length.
int64_t convOut(int64_t in, int64_t k, int64_t stride, int64_t dilation, const std::string& pad) {
    if (in < 0) return -1;
    const int64_t dk = (k - 1) * dilation + 1;
    int64_t out = pad == "same" ? in : in - dk + 1;
    if (out < 0) out = 0;
    return (out + stride - 1) / stride;
}

std::string padding(const json& c) {
    return c.contains("padding") && c["padding"].is_string() ? c["padding"].get<std::string>() : "valid";
}

struct Checker {
    const Model& model;
    const Layer& layer;
    [[noreturn]] void fail(const std::string& msg) const {
        throw Error(model.source_path, "layer " + layer.name, msg);
    }
    const Tensor* weight(size_t i) const { return i < layer.weights.size() ? &layer.weights[i] : nullptr; }
    void expectShape(size_t i, const Shape& want, const char* what) const {
        const Tensor* t = weight(i);
        if (!t) return;
        bool ok = t->shape.size() == want.size();
        for (size_t d = 0; ok && d < want.size(); ++d) ok = want[d] < 0 || t->shape[d] == want[d];
        if (!ok)
            fail(std::string(what) + " '" + t->name + "' has shape " + shapeToString(t->shape) + " but the config needs " +
                 shapeToString(want));
    }
};

int64_t product(const Shape& s, size_t from) {
    int64_t n = 1;
    for (size_t i = from; i < s.size(); ++i) {
        if (s[i] < 0) return -1;
        n *= s[i];
    }
    return n;
}

// Output shape of one layer given its input shapes; nullopt when the kind is not known.
std::optional<Shape> infer(const Model& m, const Layer& l, const std::vector<Shape>& in) {
    const json& c = l.config;
    const std::string& k = l.kind;
    Checker chk{m, l};
    const bool has_bias = !c.contains("use_bias") || !c["use_bias"].is_boolean() || c["use_bias"].get<bool>();
    if (k == "InputLayer") return shapeFromJson(c.value("batch_input_shape", json()));
    if (in.empty()) return std::nullopt;
    const Shape& x = in[0];
    if (k == "Dropout" || k == "Activation" || k == "ReLU" || k == "LeakyReLU" || k == "Softmax" || k == "ELU" ||
        k == "PReLU" || k == "ActivityRegularization" || k == "GaussianNoise" || k == "GaussianDropout" ||
        k == "SpatialDropout2D" || k == "Rescaling" || k == "Normalization" || k == "ThresholdedReLU" ||
        k == "AlphaDropout" || k == "QActivation" || k == "FixedPointQuantizer" || k == "Lambda" || k == "TFOpLambda")
        return x;
    if (k == "BatchNormalization") {
        const int64_t ch = x.empty() ? -1 : (channelsFirst(c) || intOr(c, "axis", -1) == 1 ? x[1] : x.back());
        for (size_t i = 0; i < l.weights.size(); ++i) chk.expectShape(i, {ch}, "BatchNormalization vector");
        return x;
    }
    if (k == "Dense" || k == "QDense") {
        const int64_t units = intOr(c, "units", -1);
        // Dense applies to the last axis (a rank-3 input keeps its middle axis).
        chk.expectShape(0, {x.empty() ? -1 : x.back(), units}, "kernel");
        if (has_bias) chk.expectShape(1, {units}, "bias");
        Shape y = x;
        if (!y.empty()) y.back() = units >= 0 ? units : (l.weights.empty() ? -1 : l.weights[0].shape.back());
        return y;
    }
    if (k == "Flatten") {
        if (x.empty()) return std::nullopt;
        return Shape{x[0], product(x, 1)};
    }
    if (k == "Reshape") {
        auto target = shapeFromJson(c.value("target_shape", json()));
        if (!target) return std::nullopt;
        Shape y{x.empty() ? -1 : x[0]};
        int64_t known = 1, unknown_at = -1;
        for (size_t i = 0; i < target->size(); ++i) {
            if ((*target)[i] < 0) unknown_at = static_cast<int64_t>(i);
            else known *= (*target)[i];
        }
        if (unknown_at >= 0) {
            const int64_t total = product(x, 1);
            (*target)[static_cast<size_t>(unknown_at)] = total >= 0 && known > 0 ? total / known : -1;
        }
        y.insert(y.end(), target->begin(), target->end());
        return y;
    }
    if (x.size() == 4 && (k == "Conv2D" || k == "QConv2D" || k == "DepthwiseConv2D" || k == "SeparableConv2D" ||
                          k == "MaxPooling2D" || k == "AveragePooling2D" || k == "ZeroPadding2D" ||
                          k == "GlobalAveragePooling2D" || k == "GlobalMaxPooling2D" || k == "UpSampling2D")) {
        const bool cf = channelsFirst(c);
        const int64_t h = cf ? x[2] : x[1], w = cf ? x[3] : x[2], ch = cf ? x[1] : x[3];
        auto make = [&](int64_t oh, int64_t ow, int64_t oc) {
            return cf ? Shape{x[0], oc, oh, ow} : Shape{x[0], oh, ow, oc};
        };
        if (k == "GlobalAveragePooling2D" || k == "GlobalMaxPooling2D") {
            if (c.value("keepdims", false)) return make(1, 1, ch);
            return Shape{x[0], ch};
        }
        if (k == "ZeroPadding2D") {
            int64_t t = 1, b = 1, le = 1, r = 1;
            const json& p = c.value("padding", json(1));
            if (p.is_number_integer()) t = b = le = r = p.get<int64_t>();
            else if (p.is_array() && p.size() == 2 && p[0].is_number_integer()) {
                t = b = p[0].get<int64_t>();
                le = r = p[1].get<int64_t>();
            } else if (p.is_array() && p.size() == 2 && p[0].is_array()) {
                t = p[0][0].get<int64_t>(), b = p[0][1].get<int64_t>();
                le = p[1][0].get<int64_t>(), r = p[1][1].get<int64_t>();
            }
            return make(h < 0 ? -1 : h + t + b, w < 0 ? -1 : w + le + r, ch);
        }
        if (k == "UpSampling2D") {
            auto s = intPair(c, "size", 2);
            return make(h < 0 ? -1 : h * s[0], w < 0 ? -1 : w * s[1], ch);
        }
        if (k == "MaxPooling2D" || k == "AveragePooling2D") {
            auto pool = intPair(c, "pool_size", 2);
            auto strides = intPair(c, "strides", pool[0]);
            if (!c.contains("strides") || c["strides"].is_null()) strides = pool;
            return make(convOut(h, pool[0], strides[0], 1, padding(c)), convOut(w, pool[1], strides[1], 1, padding(c)), ch);
        }
        auto ks = intPair(c, "kernel_size", -1);
        auto st = intPair(c, "strides", 1);
        auto dil = intPair(c, "dilation_rate", 1);
        int64_t oc = -1;
        if (k == "Conv2D" || k == "QConv2D") {
            oc = intOr(c, "filters", -1);
            chk.expectShape(0, {ks[0], ks[1], ch, oc}, "kernel");
            if (has_bias) chk.expectShape(1, {oc}, "bias");
        } else if (k == "DepthwiseConv2D") {
            const int64_t mult = intOr(c, "depth_multiplier", 1);
            oc = ch < 0 ? -1 : ch * mult;
            chk.expectShape(0, {ks[0], ks[1], ch, mult}, "depthwise kernel");
            if (has_bias) chk.expectShape(1, {oc}, "bias");
        } else {  // SeparableConv2D: depthwise (kh, kw, in, mult), pointwise (1, 1, in*mult, filters)
            const int64_t mult = intOr(c, "depth_multiplier", 1);
            oc = intOr(c, "filters", -1);
            chk.expectShape(0, {ks[0], ks[1], ch, mult}, "depthwise kernel");
            chk.expectShape(1, {1, 1, ch < 0 ? -1 : ch * mult, oc}, "pointwise kernel");
            if (has_bias) chk.expectShape(2, {oc}, "bias");
        }
        if (ks[0] < 0 && !l.weights.empty() && l.weights[0].shape.size() == 4) ks = {l.weights[0].shape[0], l.weights[0].shape[1]};
        return make(convOut(h, ks[0], st[0], dil[0], padding(c)), convOut(w, ks[1], st[1], dil[1], padding(c)), oc);
    }
    if (k == "Conv1D" && x.size() == 3) {
        const int64_t oc = intOr(c, "filters", -1);
        int64_t ks = -1;
        if (c.contains("kernel_size")) ks = c["kernel_size"].is_array() ? c["kernel_size"][0].get<int64_t>() : intOr(c, "kernel_size", -1);
        chk.expectShape(0, {ks, x[2], oc}, "kernel");
        if (has_bias) chk.expectShape(1, {oc}, "bias");
        const int64_t st = c.contains("strides") && c["strides"].is_array() ? c["strides"][0].get<int64_t>() : intOr(c, "strides", 1);
        std::string pad = padding(c);
        return Shape{x[0], pad == "causal" ? convOut(x[1], ks, st, 1, "same") : convOut(x[1], ks, st, 1, pad), oc};
    }
    if ((k == "MaxPooling1D" || k == "AveragePooling1D") && x.size() == 3) {
        const int64_t pool = c.contains("pool_size") && c["pool_size"].is_array() ? c["pool_size"][0].get<int64_t>() : intOr(c, "pool_size", 2);
        const int64_t st = c.contains("strides") && c["strides"].is_array() ? c["strides"][0].get<int64_t>() : intOr(c, "strides", pool);
        return Shape{x[0], convOut(x[1], pool, st, 1, padding(c)), x[2]};
    }
    if ((k == "GlobalAveragePooling1D" || k == "GlobalMaxPooling1D") && x.size() == 3) return Shape{x[0], x[2]};
    if (k == "Embedding") {
        const int64_t dim = intOr(c, "output_dim", intOr(c, "units", -1));
        chk.expectShape(0, {intOr(c, "input_dim", -1), dim}, "embeddings");
        Shape y = x;
        y.push_back(dim);
        return y;
    }
    if ((k == "LSTM" || k == "GRU" || k == "SimpleRNN") && x.size() == 3) {
        const int64_t units = intOr(c, "units", -1);
        const int64_t gates = k == "LSTM" ? 4 : k == "GRU" ? 3 : 1;
        chk.expectShape(0, {x[2], units < 0 ? -1 : units * gates}, "kernel");
        chk.expectShape(1, {units, units < 0 ? -1 : units * gates}, "recurrent kernel");
        if (c.value("return_sequences", false)) return Shape{x[0], x[1], units};
        return Shape{x[0], units};
    }
    if (k == "Add" || k == "Multiply" || k == "Subtract" || k == "Average" || k == "Maximum" || k == "Minimum") {
        for (const Shape& s : in)
            if (s.size() != x.size()) chk.fail("inputs of different ranks: " + shapeToString(x) + " and " + shapeToString(s));
        return x;
    }
    if (k == "Concatenate") {
        int64_t axis = intOr(c, "axis", -1);
        if (axis < 0) axis += static_cast<int64_t>(x.size());
        if (axis <= 0 || axis >= static_cast<int64_t>(x.size())) return std::nullopt;
        Shape y = x;
        for (size_t i = 1; i < in.size(); ++i) {
            if (in[i].size() != x.size()) chk.fail("Concatenate inputs of different ranks");
            const int64_t a = y[static_cast<size_t>(axis)], b = in[i][static_cast<size_t>(axis)];
            y[static_cast<size_t>(axis)] = a < 0 || b < 0 ? -1 : a + b;
        }
        return y;
    }
    return std::nullopt;
}

}  // namespace

std::string shapeToString(const Shape& s) {
    std::string r = "(";
    for (size_t i = 0; i < s.size(); ++i) {
        if (i) r += ", ";
        r += s[i] < 0 ? "None" : std::to_string(s[i]);
    }
    if (s.size() == 1) r += ",";
    return r + ")";
}

void inferShapes(Model& model) {
    if (!model.has_architecture) return;
    std::map<std::string, const Layer*> by_name;
    for (const Layer& l : model.layers) by_name[l.name] = &l;
    // A Sequential model without an InputLayer takes its shape from the first layer's config.
    for (size_t i = 0; i < model.layers.size(); ++i) {
        Layer& l = model.layers[i];
        std::vector<Shape> in;
        bool known = true;
        for (const InboundRef& r : l.inbound) {
            auto it = by_name.find(r.layer);
            if (it == by_name.end() || !it->second->output_shape) {
                known = false;
                break;
            }
            in.push_back(*it->second->output_shape);
        }
        if (l.inbound.empty() && l.kind != "InputLayer") {
            auto s = shapeFromJson(l.config.value("batch_input_shape", json()));
            if (!s) {
                known = false;
            } else {
                in.push_back(*s);
            }
        }
        if (!known) continue;
        try {
            l.output_shape = infer(model, l, in);
        } catch (const json::exception& e) {
            throw Error(model.source_path, "layer " + l.name, std::string("unexpected config value: ") + e.what());
        }
    }
}

}  // namespace qs
