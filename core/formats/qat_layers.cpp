#include "formats/qat_layers.h"

#include <algorithm>
#include <cstdlib>
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

std::string trim(const std::string& s) {
    const size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// A Python literal as JSON: True/False, a number, else the text.
json literal(const std::string& text) {
    if (text == "True" || text == "False") return text == "True";
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (!text.empty() && *end == '\0') return v;
    return text;
}

// QKeras' positional parameters (qkeras/quantizers.py): quantized_bits(bits=8, integer=0,
// symmetric=0, keep_negative=True, ...), quantized_relu(bits=8, integer=0, ...), the others
// (quantized_tanh, quantized_po2, ...) start with bits.
std::vector<std::string> positionalNames(const std::string& cls) {
    if (cls == "quantized_bits") return {"bits", "integer", "symmetric", "keep_negative"};
    if (cls == "quantized_relu") return {"bits", "integer"};
    return {"bits"};
}

// "quantized_bits(4, 0, keep_negative=False)" -> the dict form QKeras serialises:
// {"class_name": "quantized_bits", "config": {"bits": 4, "integer": 0, "keep_negative": false}}.
std::optional<json> callAsConfig(const std::string& text) {
    const std::string t = trim(text);
    const size_t open = t.find('(');
    if (t.rfind("quantized_", 0) != 0 || (open != std::string::npos && t.back() != ')')) return std::nullopt;
    const std::string cls = trim(t.substr(0, open));
    json config = json::object();
    if (open != std::string::npos) {
        const std::string args = t.substr(open + 1, t.size() - open - 2);
        const std::vector<std::string> names = positionalNames(cls);
        size_t start = 0, position = 0;
        for (size_t i = 0; i <= args.size(); ++i) {
            if (i < args.size() && args[i] != ',') continue;
            const std::string arg = trim(args.substr(start, i - start));
            start = i + 1;
            if (arg.empty()) continue;
            const size_t eq = arg.find('=');
            if (eq != std::string::npos) config[trim(arg.substr(0, eq))] = literal(trim(arg.substr(eq + 1)));
            else if (position < names.size()) config[names[position++]] = literal(arg);
        }
    }
    return json{{"class_name", cls}, {"config", config}};
}

// A whole number of bits in 0..64, as QKeras' configs hold them.
std::optional<int> bitCount(const json& v) {
    if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 64) return std::nullopt;
    return static_cast<int>(v.get<double>());
}

std::optional<TrainedQuantization> fromConfig(const std::string& cls, const json& c, const std::string& where) {
    if (cls.rfind("quantized_", 0) != 0) return std::nullopt;
    TrainedQuantization t;
    t.bits = 8;  // QKeras' default width
    if (c.contains("bits")) {
        const auto b = bitCount(c["bits"]);
        if (!b) return std::nullopt;
        t.bits = *b;
    }
    if ((cls == "quantized_bits" || cls == "quantized_relu") && c.contains("integer")) t.integer_bits = bitCount(c["integer"]);
    if (cls == "quantized_bits") {
        const json k = c.value("keep_negative", json(true));
        t.keep_negative = k.is_boolean() ? k.get<bool>() : k.is_number() ? k.get<double>() != 0 : true;
    } else if (cls == "quantized_relu") {
        t.keep_negative = false;
    }
    t.source = where + " " + cls;
    return t;
}

}  // namespace

std::optional<TrainedQuantization> parseQKerasQuantizer(const json& q, const std::string& where) {
    std::optional<json> dict = q.is_string() ? callAsConfig(q.get<std::string>()) : std::optional<json>(q);
    if (!dict || !dict->is_object() || !dict->contains("class_name") || !(*dict)["class_name"].is_string()) return std::nullopt;
    const json& config = dict->contains("config") && (*dict)["config"].is_object() ? (*dict)["config"] : json::object();
    return fromConfig((*dict)["class_name"].get<std::string>(), config, where);
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
