#include "formats/qat_layers.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <regex>
#include <vector>

namespace qs {

using nlohmann::json;

void separateIntegerTensors(Model& model) {
    for (Layer& l : model.layers) {
        auto integer = [](const Tensor& t) { return !isFloat(t.stored_dtype) && t.stored_dtype != DType::Other; };
        for (Tensor& t : l.weights)
            if (integer(t)) l.other_tensors.push_back(std::move(t));
        l.weights.erase(std::remove_if(l.weights.begin(), l.weights.end(), integer), l.weights.end());
    }
}

namespace {

// The arguments of "name(a, b, c)" in order; keyword arguments ("bits=4") by name.
struct CallText {
    std::string name;
    std::vector<std::string> positional;
    std::map<std::string, std::string> keyword;
};

std::optional<CallText> parseCall(const std::string& text) {
    static const std::regex call(R"(^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*$)");
    std::smatch m;
    if (!std::regex_match(text, m, call)) {
        if (std::regex_match(text, std::regex(R"(^\s*[A-Za-z_][A-Za-z0-9_]*\s*$)"))) return CallText{text, {}, {}};
        return std::nullopt;
    }
    CallText c{m[1], {}, {}};
    std::string args = m[2];
    size_t start = 0;
    for (size_t i = 0; i <= args.size(); ++i) {
        if (i < args.size() && args[i] != ',') continue;
        std::string a = args.substr(start, i - start);
        a.erase(0, a.find_first_not_of(" \t"));
        a.erase(a.find_last_not_of(" \t") + 1);
        if (!a.empty()) {
            const size_t eq = a.find('=');
            if (eq == std::string::npos) c.positional.push_back(a);
            else c.keyword[a.substr(0, eq)] = a.substr(eq + 1);
        }
        start = i + 1;
    }
    return c;
}

std::optional<int> toInt(const std::string& s) {
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (end == s.c_str() || *end != '\0' || v < 0 || v > 64) return std::nullopt;
    return static_cast<int>(v);
}

std::optional<bool> toBool(const std::string& s) {
    if (s == "True" || s == "true" || s == "1") return true;
    if (s == "False" || s == "false" || s == "0") return false;
    return std::nullopt;
}

// QKeras' quantizer signatures: quantized_bits(bits=8, integer=0, symmetric=0, keep_negative=True,
// ...), quantized_relu(bits=8, integer=0, ...), quantized_tanh / quantized_sigmoid(bits=8, ...).
std::optional<TrainedQuantization> fromCall(const CallText& c, const std::string& where) {
    if (c.name.rfind("quantized_", 0) != 0) return std::nullopt;
    auto arg = [&](size_t pos, const char* key) -> std::optional<std::string> {
        if (auto it = c.keyword.find(key); it != c.keyword.end()) return it->second;
        if (pos < c.positional.size()) return c.positional[pos];
        return std::nullopt;
    };
    TrainedQuantization t;
    t.bits = 8;  // QKeras' default width
    if (auto b = arg(0, "bits")) {
        if (auto v = toInt(*b)) t.bits = *v;
        else return std::nullopt;
    }
    if (c.name == "quantized_bits" || c.name == "quantized_relu") {
        if (auto i = arg(1, "integer")) t.integer_bits = toInt(*i);
    }
    if (c.name == "quantized_bits") {
        t.keep_negative = true;
        if (auto k = arg(3, "keep_negative")) t.keep_negative = toBool(*k).value_or(true);
    } else if (c.name == "quantized_relu") {
        t.keep_negative = false;
    }
    t.source = where + " " + c.name;
    return t;
}

}  // namespace

std::optional<TrainedQuantization> parseQKerasQuantizer(const json& q, const std::string& where) {
    if (q.is_string()) {
        const auto c = parseCall(q.get<std::string>());
        return c ? fromCall(*c, where) : std::nullopt;
    }
    if (q.is_object() && q.contains("class_name") && q["class_name"].is_string()) {
        CallText c{q["class_name"].get<std::string>(), {}, {}};
        if (q.contains("config") && q["config"].is_object())
            for (const auto& [k, v] : q["config"].items()) {
                if (v.is_number()) c.keyword[k] = std::to_string(v.get<double>());
                else if (v.is_boolean()) c.keyword[k] = v.get<bool>() ? "True" : "False";
            }
        // std::to_string(double) gives "4.000000": toInt reads it.
        return fromCall(c, where);
    }
    return std::nullopt;
}

namespace {

const Tensor* stateTensor(const Layer& l, const std::string& key) {
    for (const Tensor& t : l.other_tensors) {
        std::string base = t.name.substr(t.name.rfind('/') == std::string::npos ? 0 : t.name.rfind('/') + 1);
        base = base.substr(0, base.find(':'));
        if (base == key && !t.int_values.empty()) return &t;
    }
    return nullptr;
}

std::optional<TrainedQuantization> fromStateTensors(const Layer& l) {
    const Tensor* bits = stateTensor(l, "bits");
    if (!bits) return std::nullopt;
    TrainedQuantization t;
    t.bits = static_cast<int>(*std::max_element(bits->int_values.begin(), bits->int_values.end()));
    if (const Tensor* ints = stateTensor(l, "integers"))
        t.integer_bits = static_cast<int>(*std::max_element(ints->int_values.begin(), ints->int_values.end()));
    if (const Tensor* kn = stateTensor(l, "keep_negative"))
        t.keep_negative = std::any_of(kn->int_values.begin(), kn->int_values.end(), [](int64_t v) { return v != 0; });
    t.source = bits->name + " tensor";
    return t;
}

}  // namespace

void readTrainedQuantization(Model& model) {
    for (Layer& l : model.layers) {
        for (const char* key : {"kernel_quantizer", "depthwise_quantizer", "quantizer", "activation"}) {
            if (!l.config.contains(key)) continue;
            // A plain Keras activation ("relu") is no quantizer; QActivation's are quantized_*.
            if (auto t = parseQKerasQuantizer(l.config[key], key)) {
                l.trained = t;
                break;
            }
        }
        if (!l.trained) l.trained = fromStateTensors(l);
    }
}

}  // namespace qs
