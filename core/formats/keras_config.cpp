#include "formats/keras_config.h"

#include <cctype>
#include <map>
#include <set>

#include "base/error.h"

namespace qs {

using nlohmann::json;

namespace {

// Real model configs run to a few MB at most; nlohmann's DOM takes ~0.2 s per MB of dense
// JSON here, so 32 MiB bounds a hostile config to seconds while leaving 10x headroom.
constexpr size_t kMaxJsonBytes = size_t(32) << 20;
constexpr int kMaxJsonDepth = 512;

const std::map<std::string, std::string>& kindAliases() {
    static const std::map<std::string, std::string> m = {
        {"Convolution2D", "Conv2D"},           {"Convolution1D", "Conv1D"},
        {"Conv2DTranspose", "Conv2DTranspose"}, {"Deconvolution2D", "Conv2DTranspose"},
        {"SeparableConvolution2D", "SeparableConv2D"}, {"DepthwiseConvolution2D", "DepthwiseConv2D"},
        {"MaxPool2D", "MaxPooling2D"},         {"AvgPool2D", "AveragePooling2D"},
        {"MaxPool1D", "MaxPooling1D"},         {"AvgPool1D", "AveragePooling1D"},
        {"GlobalAvgPool2D", "GlobalAveragePooling2D"}, {"GlobalMaxPool2D", "GlobalMaxPooling2D"},
        {"Functional", "Model"},
    };
    return m;
}

// Keras 0/1 argument names -> Keras 2 (keras/legacy/interfaces.py in Keras 2.0 did the same).
void normaliseLegacyConfig(const std::string& kind, json& c) {
    auto rename = [&](const char* from, const char* to) {
        if (c.contains(from) && !c.contains(to)) c[to] = c[from];
    };
    rename("output_dim", "units");
    rename("nb_filter", "filters");
    rename("border_mode", "padding");
    rename("subsample", "strides");
    rename("p", "rate");
    rename("filter_length", "kernel_size");
    rename("subsample_length", "strides");
    rename("pool_length", "pool_size");
    rename("batch_shape", "batch_input_shape");  // Keras 3 InputLayer
    if (c.contains("bias") && c["bias"].is_boolean() && !c.contains("use_bias")) c["use_bias"] = c["bias"];
    if (c.contains("nb_row") && c.contains("nb_col") && !c.contains("kernel_size"))
        c["kernel_size"] = json::array({c["nb_row"], c["nb_col"]});
    if (c.contains("dim_ordering") && !c.contains("data_format")) {
        const json& d = c["dim_ordering"];
        if (d.is_string()) c["data_format"] = d.get<std::string>() == "th" ? "channels_first" : "channels_last";
    }
    if (c.contains("kernel_size") && c["kernel_size"].is_number_integer() &&
        (kind == "Conv2D" || kind == "DepthwiseConv2D" || kind == "SeparableConv2D"))
        c["kernel_size"] = json::array({c["kernel_size"], c["kernel_size"]});
    if (c.contains("input_shape") && !c.contains("batch_input_shape") && c["input_shape"].is_array()) {
        json b = json::array({nullptr});
        for (const json& d : c["input_shape"]) b.push_back(d);
        c["batch_input_shape"] = b;
    }
    if (kind == "Dense" && c.contains("input_dim") && c["input_dim"].is_number_integer() &&
        !c.contains("batch_input_shape"))
        c["batch_input_shape"] = json::array({nullptr, c["input_dim"]});
}

std::string strOr(const json& j, const char* key, const std::string& fallback) {
    if (j.is_object() && j.contains(key) && j[key].is_string()) return j[key].get<std::string>();
    return fallback;
}

struct Parser {
    const std::string& file;
    const std::string& where;
    std::vector<std::string> warnings;
    int depth = 0;

    [[noreturn]] void fail(const std::string& at, const std::string& msg) const {
        throw Error(file, where + (at.empty() ? "" : " " + at), msg);
    }

    InboundRef refFromList(const json& spec, const std::string& at) const {
        if (!spec.is_array() || spec.size() < 1 || !spec[0].is_string()) fail(at, "inbound node is not [layer, node, tensor]");
        InboundRef r;
        r.layer = spec[0].get<std::string>();
        if (spec.size() > 1 && spec[1].is_number_integer()) r.node_index = spec[1].get<int>();
        if (spec.size() > 2 && spec[2].is_number_integer()) r.tensor_index = spec[2].get<int>();
        return r;
    }

    // Keras 3: any __keras_tensor__ found anywhere in args/kwargs, in order.
    void collectKerasTensors(const json& j, std::vector<InboundRef>& out, int d = 0) const {
        if (d > 64) return;
        if (j.is_object()) {
            if (strOr(j, "class_name", "") == "__keras_tensor__" && j.contains("config") &&
                j["config"].contains("keras_history")) {
                out.push_back(refFromList(j["config"]["keras_history"], "keras_history"));
                return;
            }
            for (const auto& [k, v] : j.items()) collectKerasTensors(v, out, d + 1);
        } else if (j.is_array()) {
            for (const json& v : j) collectKerasTensors(v, out, d + 1);
        }
    }

    // Looks like [str, int, int, ...]: one tensor spec as Keras 1/2 writes it.
    static bool isTensorSpec(const json& j) {
        return j.is_array() && j.size() >= 3 && j[0].is_string() && j[1].is_number_integer() && j[2].is_number_integer();
    }

    std::vector<InboundRef> parseInbound(const json& nodes, const std::string& layer_name) {
        std::vector<InboundRef> refs;
        if (!nodes.is_array() || nodes.empty()) return refs;
        if (nodes.size() > 1) warnings.push_back("layer " + layer_name + " is called " + std::to_string(nodes.size()) +
                                                 " times (shared layer); only its first call is used");
        const json& node = nodes[0];
        const std::string at = "layer " + layer_name + " inbound_nodes";
        if (node.is_object()) {  // Keras 3
            collectKerasTensors(node, refs);
        } else if (isTensorSpec(node)) {  // TFOpLambda: one flat spec, more operands in kwargs
            refs.push_back(refFromList(node, at));
            if (node.size() > 3 && node[3].is_object())
                for (const auto& [k, v] : node[3].items())
                    if (isTensorSpec(v)) refs.push_back(refFromList(v, at));
        } else if (node.is_array()) {  // Keras 1/2: a list of specs
            for (const json& spec : node) {
                if (!isTensorSpec(spec)) fail(at, "inbound tensor is not [layer, node, tensor, ...]");
                refs.push_back(refFromList(spec, at));
            }
        } else {
            fail(at, "unrecognised inbound node");
        }
        return refs;
    }

    std::vector<InboundRef> parseIoList(const json& j, const std::string& at) const {
        std::vector<InboundRef> refs;
        if (j.is_null()) return refs;
        if (isTensorSpec(j)) return {refFromList(j, at)};  // Keras 3 flat form for one tensor
        if (!j.is_array()) fail(at, "must be a list of [layer, node, tensor]");
        for (const json& spec : j) refs.push_back(refFromList(spec, at));
        return refs;
    }

    ArchNode parseLayer(const json& lj, size_t index, bool keras0) {
        if (!lj.is_object()) fail("layers[" + std::to_string(index) + "]", "layer is not a JSON object");
        ArchNode node;
        Layer& l = node.layer;
        std::string cls;
        json cfg;
        if (keras0) {  // Keras 0.3: the class is in "name", the config is the object itself
            cls = strOr(lj, "name", "");
            cfg = lj;
        } else {
            cls = strOr(lj, "class_name", "");
            cfg = lj.contains("config") ? lj["config"] : json::object();
        }
        if (cls.empty()) fail("layers[" + std::to_string(index) + "]", "layer has no class_name");
        l.class_name = cls;
        l.kind = canonicalKind(cls);
        l.name = strOr(lj, "name", "");
        if (keras0 || l.name.empty()) l.name = strOr(cfg.is_object() ? cfg : json::object(), "name", "");
        if (keras0) l.name.clear();  // Keras 0.3 has no layer names; the loader names them
        if (isModelClass(cls) && cfg.is_object() && cfg.contains("layers")) {
            node.is_model = true;
            if (++depth > 32) fail("layer " + l.name, "models nested too deep");
            Architecture inner = parseModel(lj, cls);
            --depth;
            node.children = std::move(inner.tree);
            l.config = json::object({{"input_layers", json::array()}, {"output_layers", json::array()}});
            for (const InboundRef& r : inner.inputs) l.config["input_layers"].push_back(json::array({r.layer, r.node_index, r.tensor_index}));
            for (const InboundRef& r : inner.outputs) l.config["output_layers"].push_back(json::array({r.layer, r.node_index, r.tensor_index}));
        } else if (cfg.is_object()) {
            l.config = cfg;
            normaliseLegacyConfig(l.kind, l.config);
        } else {
            fail("layer " + l.name, "layer config is not a JSON object");
        }
        if (lj.contains("inbound_nodes")) l.inbound = parseInbound(lj["inbound_nodes"], l.name);
        return node;
    }

    Architecture parseModel(const json& root, const std::string& cls_hint) {
        Architecture a;
        const bool keras0 = root.is_object() && !root.contains("class_name") && root.contains("layers") &&
                            strOr(root, "name", "") == "Sequential";
        json layers;
        json cfg = json::object();
        if (root.is_array()) {  // a bare list of layers
            a.model_class = "Sequential";
            layers = root;
        } else if (keras0) {
            a.model_class = "Sequential";
            layers = root["layers"];
        } else if (root.is_object()) {
            a.model_class = strOr(root, "class_name", cls_hint);
            if (!root.contains("config")) fail("", "architecture has no 'config'");
            const json& c = root["config"];
            if (c.is_array()) layers = c;  // Keras 1 / 2.0 / 2.1 Sequential
            else if (c.is_object() && c.contains("layers")) {
                layers = c["layers"];
                cfg = c;
            } else fail("config", "has no 'layers'");
        } else {
            fail("", "architecture is not a JSON object or list");
        }
        if (!layers.is_array()) fail("layers", "is not a list");
        for (size_t i = 0; i < layers.size(); ++i) a.tree.push_back(parseLayer(layers[i], i, keras0));
        const bool sequential = canonicalKind(a.model_class) == "Sequential";
        if (sequential) {
            // Sequential configs carry no inbound nodes: each layer takes the previous one.
            for (size_t i = 1; i < a.tree.size(); ++i)
                if (a.tree[i].layer.inbound.empty() && !a.tree[i - 1].layer.name.empty())
                    a.tree[i].layer.inbound = {InboundRef{a.tree[i - 1].layer.name, 0, 0}};
            if (!a.tree.empty()) {
                a.inputs = {InboundRef{a.tree.front().layer.name, 0, 0}};
                a.outputs = {InboundRef{a.tree.back().layer.name, 0, 0}};
            }
        } else {
            if (cfg.contains("input_layers")) a.inputs = parseIoList(cfg["input_layers"], "input_layers");
            if (cfg.contains("output_layers")) a.outputs = parseIoList(cfg["output_layers"], "output_layers");
        }
        return a;
    }
};

// Flattens nested models: their inner layers join the outer list; references to a nested model
// are redirected to its output layer, and its input layers to the outer model's inbound tensors.
void flatten(const std::vector<ArchNode>& nodes, std::vector<Layer>& out,
             std::map<std::string, InboundRef>& alias, std::vector<std::string>& warnings, bool sequential_parent) {
    std::string prev;
    for (const ArchNode& n : nodes) {
        if (!n.is_model) {
            out.push_back(n.layer);
            prev = n.layer.name;
            continue;
        }
        const json& ins = n.layer.config["input_layers"];
        const json& outs = n.layer.config["output_layers"];
        std::vector<InboundRef> outer_in = n.layer.inbound;
        if (outer_in.empty() && sequential_parent && !prev.empty()) outer_in = {InboundRef{prev, 0, 0}};
        const size_t first = out.size();
        flatten(n.children, out, alias, warnings, n.layer.kind == "Sequential");
        // The nested model's first layer(s) take the outer inbound tensors.
        if (!outer_in.empty() && first < out.size()) {
            for (size_t i = 0; i < ins.size() && i < outer_in.size(); ++i) alias[ins[i][0].get<std::string>()] = outer_in[i];
            if (out[first].kind != "InputLayer" && out[first].inbound.empty()) out[first].inbound = {outer_in[0]};
        }
        if (outs.size() != 1) warnings.push_back("nested model " + n.layer.name + " has " + std::to_string(outs.size()) +
                                                 " outputs; only the first is connected");
        if (!outs.empty()) {
            alias[n.layer.name] = InboundRef{outs[0][0].get<std::string>(), outs[0][1].get<int>(), outs[0][2].get<int>()};
            prev = outs[0][0].get<std::string>();
        }
    }
}

InboundRef resolveAlias(InboundRef r, const std::map<std::string, InboundRef>& alias) {
    for (int guard = 0; guard < 64; ++guard) {
        auto it = alias.find(r.layer);
        if (it == alias.end()) break;
        r = it->second;
    }
    return r;
}

}  // namespace

bool isModelClass(const std::string& c) {
    return c == "Sequential" || c == "Model" || c == "Functional";
}

std::string canonicalKind(const std::string& class_name) {
    auto it = kindAliases().find(class_name);
    return it == kindAliases().end() ? class_name : it->second;
}

std::string kerasSnakeCase(const std::string& name) {
    // keras/src/utils/naming.py: drop non-word chars; "(.)([A-Z][a-z]+)" -> "\1_\2";
    // "([a-z])([A-Z])" -> "\1_\2"; lower.
    std::string s;
    for (char c : name)
        if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') s += c;
    std::string a;
    for (size_t i = 0; i < s.size(); ++i) {
        if (i > 0 && std::isupper(static_cast<unsigned char>(s[i])) && i + 1 < s.size() &&
            std::islower(static_cast<unsigned char>(s[i + 1])))
            a += '_';
        a += s[i];
    }
    std::string b;
    for (size_t i = 0; i < a.size(); ++i) {
        if (i > 0 && std::isupper(static_cast<unsigned char>(a[i])) && std::islower(static_cast<unsigned char>(a[i - 1])))
            b += '_';
        b += static_cast<char>(std::tolower(static_cast<unsigned char>(a[i])));
    }
    // The first rule can leave "__" where the name already had "_" before a capital.
    return b;
}

json parseJsonText(const std::string& text, const std::string& file, const std::string& where) {
    if (text.size() > kMaxJsonBytes)
        throw Error(file, where, "JSON is " + std::to_string(text.size() >> 20) + " MiB, over the " + std::to_string(kMaxJsonBytes >> 20) +
                                     " MiB limit");
    // Depth guard: count brackets outside strings before handing the text to the parser.
    int depth = 0, max_depth = 0;
    bool in_str = false, esc = false;
    for (char c : text) {
        if (in_str) {
            if (esc) esc = false;
            else if (c == '\\') esc = true;
            else if (c == '"') in_str = false;
            continue;
        }
        if (c == '"') in_str = true;
        else if (c == '[' || c == '{') max_depth = std::max(max_depth, ++depth);
        else if (c == ']' || c == '}') --depth;
    }
    if (max_depth > kMaxJsonDepth)
        throw Error(file, where, "JSON is nested " + std::to_string(max_depth) + " deep, over the limit of " +
                                     std::to_string(kMaxJsonDepth));
    try {
        return json::parse(text);
    } catch (const json::parse_error& e) {
        throw Error(file, where, std::string("malformed JSON: ") + e.what());
    }
}

namespace {

// Keras graphs are DAGs: a layer that (through others) feeds itself would send every graph
// walk round forever. Kahn's algorithm: layers whose inputs are all placed get placed; what
// is left when nothing more can be placed lies on (or behind) a cycle.
void checkAcyclic(const std::vector<Layer>& layers, const std::string& file, const std::string& where) {
    std::map<std::string, int> missing;  // inputs not yet placed, per layer
    std::map<std::string, std::vector<std::string>> readers;
    for (const Layer& l : layers) {
        std::set<std::string> inputs;
        for (const InboundRef& r : l.inbound) inputs.insert(r.layer);
        missing[l.name] = static_cast<int>(inputs.size());
        for (const std::string& in : inputs) readers[in].push_back(l.name);
    }
    std::vector<std::string> ready;
    for (const auto& [name, n] : missing)
        if (n == 0) ready.push_back(name);
    size_t placed = 0;
    while (!ready.empty()) {
        const std::string name = ready.back();
        ready.pop_back();
        ++placed;
        for (const std::string& r : readers[name])
            if (--missing[r] == 0) ready.push_back(r);
    }
    if (placed == missing.size()) return;
    std::string stuck;
    for (const Layer& l : layers)
        if (missing[l.name] > 0) stuck += (stuck.empty() ? "" : ", ") + l.name;
    throw Error(file, where, "the layer graph has a cycle (layers " + stuck + " feed each other)");
}

}  // namespace

Architecture parseKerasArchitecture(const json& root, const std::string& file, const std::string& where) {
    Parser p{file, where, {}, 0};
    Architecture a;
    try {
        a = p.parseModel(root, "Sequential");
    } catch (const json::exception& e) {
        throw Error(file, where, std::string("unexpected architecture JSON: ") + e.what());
    }
    a.warnings.insert(a.warnings.end(), p.warnings.begin(), p.warnings.end());
    std::map<std::string, InboundRef> alias;
    flatten(a.tree, a.layers, alias, a.warnings, canonicalKind(a.model_class) == "Sequential");
    for (Layer& l : a.layers)
        for (InboundRef& r : l.inbound) r = resolveAlias(r, alias);
    for (InboundRef& r : a.inputs) r = resolveAlias(r, alias);
    for (InboundRef& r : a.outputs) r = resolveAlias(r, alias);
    // Names must be unique (weights are matched by name), and every inbound layer must exist.
    std::set<std::string> names;
    for (const Layer& l : a.layers)
        if (!l.name.empty() && !names.insert(l.name).second)
            throw Error(file, where, "two layers are named '" + l.name + "'");
    for (const Layer& l : a.layers)
        for (const InboundRef& r : l.inbound)
            if (!names.count(r.layer))
                throw Error(file, where, "layer " + l.name + " takes its input from unknown layer '" + r.layer + "'");
    checkAcyclic(a.layers, file, where);
    return a;
}

}  // namespace qs
