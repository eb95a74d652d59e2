#include "quant_config.h"

#include <algorithm>

#include "error.h"

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

const std::vector<std::string>& weightMethods() {
    static const std::vector<std::string> m = {"max_abs", "pow2", "pow2_m1", "pow2_p1", "pow2_m2", "pow2_p2",
                                               "percentile_99.9", "percentile_99.99", "mse", "kl"};
    return m;
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

LayerQuant layerFromJson(const json& j, const LayerQuant& base, const std::string& source, const std::string& where) {
    if (!j.is_object()) throw Error(source, where, "must be an object");
    LayerQuant l = base;
    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string& key = it.key();
        const std::string field = where + "." + key;
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
        } else {
            throw Error(source, field, "unknown field");
        }
    }
    return l;
}

json layerToJson(const LayerQuant& l) {
    return {{"precision", precisionName(l.precision)},
            {"granularity", l.granularity == Granularity::PerChannel ? "per_channel" : "per_tensor"},
            {"weight_method", l.weight_method},
            {"activation_method", l.activation_method}};
}

}  // namespace

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
    if (j.contains("defaults")) c.defaults = layerFromJson(j["defaults"], c.defaults, source, "defaults");
    if (j.contains("layers")) {
        if (!j["layers"].is_object()) throw Error(source, "layers", "must be an object keyed by layer name");
        for (auto it = j["layers"].begin(); it != j["layers"].end(); ++it)
            c.layers[it.key()] = layerFromJson(*it, c.defaults, source, "layers." + it.key());
    }
    for (auto it = j.begin(); it != j.end(); ++it)
        if (!contains<std::string>({"format", "version", "mode", "calibration_samples", "defaults", "layers", "model", "results"}, it.key()))
            throw Error(source, it.key(), "unknown field");
    return c;
}

json quantConfigToJson(const QuantConfig& c) {
    json j = {{"format", "quantscope-config"},
              {"version", 1},
              {"mode", quantModeName(c.mode)},
              {"calibration_samples", c.calibration_samples},
              {"defaults", layerToJson(c.defaults)},
              {"layers", json::object()}};
    for (const auto& [name, l] : c.layers) j["layers"][name] = layerToJson(l);
    return j;
}

}  // namespace qs
