#include "quant/quant_config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "base/atomic_file.h"
#include "base/error.h"
#include "formats/keras_config.h"
#include "quant/tensor_stats.h"

namespace qs {

using nlohmann::json;

const char* precisionName(Precision p) {
    switch (p) {
        case Precision::Float32: return "float32";
        case Precision::Float16: return "float16";
        case Precision::Int16: return "int16";
        case Precision::Int8: return "int8";
        case Precision::Int4: return "int4";
        case Precision::Int2: return "int2";
    }
    return "?";
}

std::optional<Precision> parsePrecision(const std::string& s) {
    for (Precision p : {Precision::Float32, Precision::Float16, Precision::Int16, Precision::Int8, Precision::Int4, Precision::Int2})
        if (s == precisionName(p)) return p;
    if (s == "16") return Precision::Int16;
    if (s == "8") return Precision::Int8;
    if (s == "4") return Precision::Int4;
    if (s == "2") return Precision::Int2;
    if (s == "32" || s == "float") return Precision::Float32;
    return std::nullopt;
}

int weightBits(Precision p) {
    switch (p) {
        case Precision::Float32: return 32;
        case Precision::Float16:
        case Precision::Int16: return 16;
        case Precision::Int8: return 8;
        case Precision::Int4: return 4;
        case Precision::Int2: return 2;
    }
    return 32;
}

bool isInteger(Precision p) { return p != Precision::Float32 && p != Precision::Float16; }

const char* quantModeName(QuantMode m) {
    switch (m) {
        case QuantMode::Integer: return "integer";
        case QuantMode::Hybrid: return "hybrid";
        case QuantMode::Float16: return "float16";
    }
    return "?";
}

std::optional<QuantMode> parseQuantMode(const std::string& s) {
    for (QuantMode m : {QuantMode::Integer, QuantMode::Hybrid, QuantMode::Float16})
        if (s == quantModeName(m)) return m;
    return std::nullopt;
}

int activationBits(const LayerQuant& q) {
    if (q.precision == Precision::Int16) return 16;  // the engine runs 16-bit weights with int16 activations only
    if (q.activation_bits == 8 || q.activation_bits == 16) return q.activation_bits;
    return q.precision == Precision::Int16 ? 16 : 8;
}

const std::vector<std::string>& weightMethods() {
    static const std::vector<std::string> m = {"max_abs", "pow2", "pow2_m1", "pow2_p1", "pow2_m2", "pow2_p2",
                                               "percentile_99.9", "percentile_99.99", "mse", "kl"};
    return m;
}

std::optional<LayerQuant> withCandidate(LayerQuant q, const std::string& method) {
    if (method == "float16") {
        q.precision = Precision::Float16;
    } else if (std::find(weightMethods().begin(), weightMethods().end(), method) != weightMethods().end()) {
        q.weight_method = method;
    } else {
        return std::nullopt;
    }
    return q;
}

const std::vector<std::string>& activationMethods() {
    static const std::vector<std::string> m = {"min_max", "percentile_99.9", "percentile_99.99", "mse", "kl"};
    return m;
}

namespace {

template <class T>
bool contains(const std::vector<T>& v, const T& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
}

std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const std::string& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
}

LayerScales scalesFromJson(const json& j, const std::string& source, const std::string& where) {
    LayerScales r;
    if (j.contains("scales")) {
        const json& a = j["scales"];
        if (!a.is_array() || a.empty()) throw Error(source, where + ".scales", "must be a non-empty array of numbers");
        for (size_t i = 0; i < a.size(); ++i) {
            const std::string f = where + ".scales[" + std::to_string(i) + "]";
            if (!a[i].is_number()) throw Error(source, f, "must be a number");
            const double v = a[i].get<double>();
            if (!(v > 0) || !std::isfinite(v)) throw Error(source, f, "must be a finite positive scale, not " + a[i].dump());
            r.scales.push_back(v);
        }
    }
    if (j.contains("zero_points")) {
        const json& a = j["zero_points"];
        if (!a.is_array()) throw Error(source, where + ".zero_points", "must be an array of integers");
        for (size_t i = 0; i < a.size(); ++i) {
            if (!a[i].is_number_integer()) throw Error(source, where + ".zero_points[" + std::to_string(i) + "]", "must be an integer");
            r.zero_points.push_back(a[i].get<int32_t>());
        }
        if (r.zero_points.size() != r.scales.size())
            throw Error(source, where + ".zero_points", "has " + std::to_string(r.zero_points.size()) + " entries for " +
                                                           std::to_string(r.scales.size()) + " scales");
    }
    return r;
}

}  // namespace

LayerQuant layerQuantFromJson(const json& j, const LayerQuant& base, const std::string& source, const std::string& where,
                              bool allow_scales) {
    if (!j.is_object()) throw Error(source, where, "must be an object");
    LayerQuant l = base;
    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string& key = it.key();
        const std::string field = where + "." + key;
        if (allow_scales && (key == "scales" || key == "zero_points")) continue;  // scalesFromJson
        if (key == "bias_correction") {
            if (!it->is_boolean()) throw Error(source, field, "must be true or false");
            l.bias_correction = it->get<bool>();
            continue;
        }
        if (!it->is_string()) throw Error(source, field, "must be a string");
        const std::string v = it->get<std::string>();
        if (key == "precision") {
            const auto p = parsePrecision(v);
            if (!p) throw Error(source, field, "'" + v + "' is not one of float32, float16, int16, int8, int4, int2");
            l.precision = *p;
        } else if (key == "granularity") {
            if (v == "per_channel") l.granularity = Granularity::PerChannel;
            else if (v == "per_tensor") l.granularity = Granularity::PerTensor;
            else throw Error(source, field, "'" + v + "' is not per_channel or per_tensor");
        } else if (key == "weight_method") {
            if (!contains(weightMethods(), v)) throw Error(source, field, "'" + v + "' is not one of " + joined(weightMethods()));
            l.weight_method = v;
        } else if (key == "activation_method") {
            if (!contains(activationMethods(), v))
                throw Error(source, field, "'" + v + "' is not one of " + joined(activationMethods()));
            l.activation_method = v;
        } else if (key == "rounding") {
            if (v != "nearest" && v != "gptq") throw Error(source, field, "'" + v + "' is not nearest or gptq");
            l.gptq = v == "gptq";
        } else if (key == "activations") {
            if (v == "int8") l.activation_bits = 8;
            else if (v == "int16") l.activation_bits = 16;
            else throw Error(source, field, "'" + v + "' is not int8 or int16");
        } else {
            throw Error(source, field, "unknown field");
        }
    }
    if (l.precision == Precision::Int16 && l.activation_bits == 8) {
        if (j.contains("activations")) throw Error(source, where + ".activations", "int16 weights run with int16 activations only");
        l.activation_bits = 0;  // inherited from the defaults
    }
    return l;
}

json layerQuantToJson(const LayerQuant& l) {
    json j = {{"precision", precisionName(l.precision)},
              {"granularity", l.granularity == Granularity::PerChannel ? "per_channel" : "per_tensor"},
              {"weight_method", l.weight_method},
              {"activation_method", l.activation_method}};
    if (l.activation_bits != 0) j["activations"] = l.activation_bits == 16 ? "int16" : "int8";  // only when stated
    if (l.bias_correction) j["bias_correction"] = true;
    if (l.gptq) j["rounding"] = "gptq";
    return j;
}

QuantConfig quantConfigFromJson(const json& j, const std::string& source) {
    if (!j.is_object()) throw Error(source, "", "a quantization config must be a JSON object");
    if (j.value("format", "") != "quantscope-config") throw Error(source, "format", "must be \"quantscope-config\"");
    if (!j.contains("version") || !j["version"].is_number_integer() || j["version"].get<int>() != 1)
        throw Error(source, "version", "this Quantscope reads version 1");
    QuantConfig c;
    if (j.contains("mode")) {
        const auto m = j["mode"].is_string() ? parseQuantMode(j["mode"].get<std::string>()) : std::nullopt;
        if (!m) throw Error(source, "mode", "must be \"integer\", \"hybrid\" or \"float16\"");
        c.mode = *m;
    }
    if (j.contains("calibration_samples")) {
        const json& n = j["calibration_samples"];
        if (!n.is_number_integer() || n.get<int64_t>() < 1 || n.get<int64_t>() > 1000000)
            throw Error(source, "calibration_samples", "must be an integer from 1 to 1000000");
        c.calibration_samples = n.get<int>();
    }
    if (j.contains("calibration_dataset")) {
        if (!j["calibration_dataset"].is_string()) throw Error(source, "calibration_dataset", "must be a string (a path)");
        c.calibration_dataset = j["calibration_dataset"].get<std::string>();
    }
    if (j.contains("defaults")) c.defaults = layerQuantFromJson(j["defaults"], c.defaults, source, "defaults", false);
    if (j.contains("layers")) {
        if (!j["layers"].is_object()) throw Error(source, "layers", "must be an object keyed by layer name");
        for (auto it = j["layers"].begin(); it != j["layers"].end(); ++it) {
            const std::string where = "layers." + it.key();
            const LayerQuant l = layerQuantFromJson(*it, c.defaults, source, where, true);
            c.layers[it.key()] = l;
            LayerScales s = scalesFromJson(*it, source, where);
            if (!s.scales.empty()) c.scales[it.key()] = std::move(s);
        }
    }
    for (auto it = j.begin(); it != j.end(); ++it)
        if (!contains<std::string>({"format", "version", "mode", "calibration_samples", "calibration_dataset", "defaults", "layers",
                                    "model", "results"},
                                   it.key()))
            throw Error(source, it.key(), "unknown field");
    return c;
}

json quantConfigToJson(const QuantConfig& c) {
    json j = {{"format", "quantscope-config"},
              {"version", 1},
              {"mode", quantModeName(c.mode)},
              {"calibration_samples", c.calibration_samples},
              {"defaults", layerQuantToJson(c.defaults)},
              {"layers", json::object()}};
    if (!c.calibration_dataset.empty()) j["calibration_dataset"] = c.calibration_dataset;
    for (const auto& [name, l] : c.layers) j["layers"][name] = layerQuantToJson(l);
    for (const auto& [name, s] : c.scales) {
        json& entry = j["layers"][name];
        if (entry.is_null()) entry = layerQuantToJson(c.forLayer(name));
        entry["scales"] = s.scales;
        if (!s.zero_points.empty()) entry["zero_points"] = s.zero_points;
    }
    return j;
}

QuantConfig loadQuantConfig(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path, "", "cannot open the config file");
    std::stringstream ss;
    ss << in.rdbuf();
    return quantConfigFromJson(parseJsonText(ss.str(), path, ""), path);
}

void saveQuantConfig(const std::string& path, const QuantConfig& c) { writeFileAtomically(path, quantConfigToJson(c).dump(2) + "\n"); }

const Tensor* layerKernel(const Layer& layer) {
    for (const Tensor& t : layer.weights)
        if (t.shape.size() >= 2) return &t;
    return nullptr;
}

void checkConfigAgainstModel(const QuantConfig& c, const Model& model, const std::string& source) {
    auto kernelFor = [&](const std::string& name, const std::string& field) {
        const Layer* l = model.findLayer(name);
        if (!l) throw Error(source, field, "no layer named '" + name + "' in " + model.source_path);
        const Tensor* k = layerKernel(*l);
        if (!k) throw Error(source, field, "layer '" + name + "' has no weights to quantize");
        return std::make_pair(l, k);
    };
    for (const auto& [name, l] : c.layers) kernelFor(name, "layers." + name);
    for (const auto& [name, s] : c.scales) {
        const auto [layer, kernel] = kernelFor(name, "layers." + name + ".scales");
        const LayerQuant& q = c.forLayer(name);
        const int64_t want = q.granularity == Granularity::PerChannel ? channelCount(*layer, *kernel) : 1;
        if (static_cast<int64_t>(s.scales.size()) != want)
            throw Error(source, "layers." + name + ".scales",
                        std::to_string(s.scales.size()) + " scales for " + std::to_string(want) +
                            (want == 1 ? " (per-tensor)" : " output channels"));
    }
}

Candidate weightCandidate(const Tensor& kernel, int64_t channels, const LayerQuant& q, int threads) {
    AnalysisOptions o;
    o.bits = weightBits(q.precision);
    o.granularity = q.granularity;
    o.method = q.weight_method;
    o.error_histograms = false;
    o.only_chosen = true;
    o.threads = threads;
    TensorAnalysis a = analyzeTensor(kernel, channels, o);
    return std::move(a.candidates.at(static_cast<size_t>(a.chosen)));
}

void recordScales(QuantConfig& c, const Model& model) {
    c.scales.clear();
    for (const Layer& layer : model.layers) {
        const Tensor* k = layerKernel(layer);
        const LayerQuant& q = c.forLayer(layer.name);
        if (!k || !isInteger(q.precision)) continue;
        LayerScales s;
        for (const QuantParams& p : weightCandidate(*k, channelCount(layer, *k), q).params) s.scales.push_back(p.scale);
        c.scales[layer.name] = std::move(s);
    }
}

LayerQuant parseLayerSpec(const std::string& spec, const LayerQuant& base) {
    LayerQuant l = base;
    std::vector<std::string> parts;
    std::stringstream ss(spec);
    for (std::string part; std::getline(ss, part, ':');) parts.push_back(part);
    if (parts.empty() || parts.size() > 6)
        throw Error("--layer", spec, "expected BITS[:GRANULARITY][:METHOD][:a16|:a8][:bc][:gptq], e.g. 8:per-tensor:pow2");
    const auto p = parsePrecision(parts[0]);
    if (!p) throw Error("--layer", spec, "'" + parts[0] + "' is not 16, 8, 4, 2, float16 or float32");
    l.precision = *p;
    for (size_t i = 1; i < parts.size(); ++i) {
        const std::string& v = parts[i];
        if (v == "per-tensor" || v == "per_tensor") l.granularity = Granularity::PerTensor;
        else if (v == "per-channel" || v == "per_channel") l.granularity = Granularity::PerChannel;
        else if (contains(weightMethods(), v)) l.weight_method = v;
        else if (v == "a16" || v == "a8") l.activation_bits = v == "a16" ? 16 : 8;
        else if (v == "bc") l.bias_correction = true;
        else if (v == "gptq") l.gptq = true;
        else throw Error("--layer", spec, "'" + v + "' is neither per-tensor/per-channel, a16/a8, bc, gptq nor one of " + joined(weightMethods()));
    }
    if (l.precision == Precision::Int16 && l.activation_bits == 8) {
        if (std::find(parts.begin(), parts.end(), "a8") != parts.end())
            throw Error("--layer", spec, "int16 weights run with int16 activations only");
        l.activation_bits = 0;  // inherited from the defaults
    }
    return l;
}

}  // namespace qs
