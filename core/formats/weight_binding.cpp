#include "formats/weight_binding.h"

#include <map>
#include <set>

#include "base/error.h"

namespace qs {

bool kindHasWeights(const std::string& k) {
    static const std::set<std::string> s = {"Dense", "Conv1D", "Conv2D", "Conv3D", "DepthwiseConv2D", "SeparableConv2D",
                                            "Conv2DTranspose", "BatchNormalization", "Embedding", "LSTM", "GRU",
                                            "SimpleRNN", "PReLU", "QDense", "QConv2D", "LayerNormalization"};
    return s.count(k) > 0;
}

void adoptArchitecture(Model& model, Architecture arch, const std::string& source) {
    model.has_architecture = true;
    model.architecture_source = source;
    model.model_class = arch.model_class;
    model.layers = std::move(arch.layers);
    model.inputs = std::move(arch.inputs);
    model.outputs = std::move(arch.outputs);
    model.warnings.insert(model.warnings.end(), arch.warnings.begin(), arch.warnings.end());
}

void adoptGroupsWithoutArchitecture(Model& model, std::vector<WeightGroup> groups) {
    model.has_architecture = false;
    for (WeightGroup& g : groups) {
        Layer l;
        l.name = g.name;
        l.weights = std::move(g.tensors);
        model.layers.push_back(std::move(l));
    }
}

namespace {

void collectNames(const std::vector<ArchNode>& nodes, std::map<std::string, std::set<std::string>>& nested,
                  std::vector<std::string>& scope) {
    for (const ArchNode& n : nodes) {
        if (n.is_model) {
            scope.push_back(n.layer.name);
            collectNames(n.children, nested, scope);
            scope.pop_back();
        } else {
            for (const std::string& s : scope) nested[s].insert(n.layer.name);
        }
    }
}

std::vector<std::string> splitPath(const std::string& s) {
    std::vector<std::string> parts;
    size_t start = 0;
    for (size_t i = 0; i <= s.size(); ++i)
        if (i == s.size() || s[i] == '/') {
            parts.push_back(s.substr(start, i - start));
            start = i + 1;
        }
    return parts;
}

// The inner layer a nested model's weight belongs to: a component of its path names it
// ("dense_1/kernel:0", "sequential/dense_1/kernel:0"); the last one that matches wins.
std::string nestedOwner(const std::set<std::string>& inner, const std::string& weight_name) {
    const std::vector<std::string> parts = splitPath(weight_name);
    for (size_t i = parts.size(); i-- > 0;)
        if (inner.count(parts[i])) return parts[i];
    return {};
}

// First group (or nested weight) that names no layer; empty when all bind by name.
std::string firstUnmatched(const Model& model, const std::map<std::string, std::set<std::string>>& nested,
                           const std::vector<WeightGroup>& groups) {
    for (const WeightGroup& g : groups) {
        if (g.tensors.empty() || model.findLayer(g.name)) continue;
        auto it = nested.find(g.name);
        if (it == nested.end()) return g.name;
        for (const Tensor& t : g.tensors)
            if (nestedOwner(it->second, t.name).empty()) return g.name + "/" + t.name;
    }
    return {};
}

void bindByName(Model& model, const std::map<std::string, std::set<std::string>>& nested, std::vector<WeightGroup>& groups) {
    for (WeightGroup& g : groups) {
        if (g.tensors.empty()) continue;
        if (Layer* l = model.findLayer(g.name)) {
            l->weights = std::move(g.tensors);
            continue;
        }
        const std::set<std::string>& inner = nested.at(g.name);
        for (Tensor& t : g.tensors) model.findLayer(nestedOwner(inner, t.name))->weights.push_back(std::move(t));
    }
}

}  // namespace

void bindWeights(Model& model, const Architecture& arch, std::vector<WeightGroup> groups, bool allow_order_fallback) {
    std::map<std::string, std::set<std::string>> nested;
    std::vector<std::string> scope;
    collectNames(arch.tree, nested, scope);
    const std::string unmatched = firstUnmatched(model, nested, groups);
    if (unmatched.empty()) {
        bindByName(model, nested, groups);
    } else {
        if (!allow_order_fallback)
            throw Error(model.source_path, unmatched, "the weights name a layer the architecture does not have");
        // Keras' load_weights(by_name=False) pairs the layers that have weights in order.
        std::vector<WeightGroup*> weighted;
        for (WeightGroup& g : groups)
            if (!g.tensors.empty()) weighted.push_back(&g);
        std::vector<Layer*> targets;
        for (Layer& l : model.layers)
            if (kindHasWeights(l.kind)) targets.push_back(&l);
        if (weighted.size() != targets.size())
            throw Error(model.source_path, unmatched,
                        "the weights file has " + std::to_string(weighted.size()) + " layers with weights but the architecture has " +
                            std::to_string(targets.size()) + ", and their names do not match");
        for (size_t i = 0; i < targets.size(); ++i) targets[i]->weights = std::move(weighted[i]->tensors);
        model.warnings.push_back("layer names in the weights file do not match the architecture (first: '" + unmatched +
                                 "'); weights were matched by order, as Keras' load_weights does");
    }
    for (const Layer& l : model.layers)
        if (kindHasWeights(l.kind) && l.weights.empty())
            throw Error(model.source_path, "layer " + l.name,
                        l.kind + " layer has no weights in the file");
}

void convertTheanoKernels(Model& model, bool flip) {
    for (Layer& l : model.layers) {
        const bool th = l.config.value("data_format", std::string()) == "channels_first" && l.config.contains("dim_ordering");
        if (!th || (l.kind != "Conv2D") || l.weights.empty() || l.weights[0].shape.size() != 4) continue;
        Tensor& k = l.weights[0];
        const int64_t O = k.shape[0], I = k.shape[1], H = k.shape[2], W = k.shape[3];
        if (k.data.empty()) {  // loaded without values (LoadOptions::values): the layout only
            k.shape = {H, W, I, O};
            continue;
        }
        std::vector<float> out(k.data.size());
        for (int64_t o = 0; o < O; ++o)
            for (int64_t i = 0; i < I; ++i)
                for (int64_t h = 0; h < H; ++h)
                    for (int64_t w = 0; w < W; ++w) {
                        const int64_t sh = flip ? H - 1 - h : h, sw = flip ? W - 1 - w : w;
                        out[static_cast<size_t>(((h * W + w) * I + i) * O + o)] =
                            k.data[static_cast<size_t>(((o * I + i) * H + sh) * W + sw)];
                    }
        k.data = std::move(out);
        k.shape = {H, W, I, O};
    }
}

}  // namespace qs
