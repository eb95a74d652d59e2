#include "model/model_summary.h"

#include <algorithm>
#include <cstdio>

#include "model/shape_inference.h"

namespace qs {

using nlohmann::json;

json modelSummaryJson(const Model& m) {
    json layers = json::array();
    for (const Layer& l : m.layers) {
        json weights = json::array();
        for (const Tensor& t : l.weights)
            weights.push_back({{"name", t.name}, {"shape", t.shape}, {"stored_shape", t.stored_shape}, {"dtype", dtypeName(t.stored_dtype)}});
        json others = json::array();
        for (const Tensor& t : l.other_tensors)
            others.push_back({{"name", t.name}, {"shape", t.shape}, {"dtype", dtypeName(t.stored_dtype)}, {"analysed", false}});
        json trained = nullptr;
        if (l.trained)
            trained = {{"bits", l.trained->bits},
                       {"integer_bits", l.trained->integer_bits ? json(*l.trained->integer_bits) : json(nullptr)},
                       {"keep_negative", l.trained->keep_negative ? json(*l.trained->keep_negative) : json(nullptr)},
                       {"source", l.trained->source}};
        json inbound = json::array();
        for (const InboundRef& r : l.inbound) inbound.push_back(r.layer);
        layers.push_back({{"name", l.name},
                          {"class_name", l.class_name ? json(*l.class_name) : json(nullptr)},
                          {"output_shape", l.output_shape ? json(*l.output_shape) : json(nullptr)},
                          {"params", l.paramCount()},
                          {"inbound", inbound},
                          {"weights", weights},
                          {"other_tensors", others},
                          {"trained_quantization", trained}});
    }
    return {{"file", m.source_path},
            {"format", formatName(m.format)},
            {"keras_version", m.keras_version.empty() ? json(nullptr) : json(m.keras_version)},
            {"backend", m.backend.empty() ? json(nullptr) : json(m.backend)},
            {"model_class", m.model_class.empty() ? json(nullptr) : json(m.model_class)},
            {"has_architecture", m.has_architecture},
            {"architecture_source", m.architecture_source.empty() ? json(nullptr) : json(m.architecture_source)},
            {"layers", layers},
            {"total_params", m.paramCount()},
            {"float32_bytes", m.paramCount() * 4},
            {"warnings", m.warnings}};
}

std::string modelSummaryText(const Model& m) {
    std::string out;
    char line[512];
    std::snprintf(line, sizeof line, "file:          %s\nformat:        %s\nkeras_version: %s\nmodel:         %s%s\n\n",
                  m.source_path.c_str(), formatName(m.format), m.keras_version.empty() ? "(not recorded)" : m.keras_version.c_str(),
                  m.model_class.empty() ? "(no architecture)" : m.model_class.c_str(),
                  m.architecture_source.empty() ? "" : (" from " + m.architecture_source).c_str());
    out += line;
    size_t wn = 5, wc = 5, ws = 12;
    for (const Layer& l : m.layers) {
        wn = std::max(wn, l.name.size());
        wc = std::max(wc, l.class_name.value_or("?").size());
        if (l.output_shape) ws = std::max(ws, shapeToString(*l.output_shape).size());
    }
    const int iwn = static_cast<int>(wn), iwc = static_cast<int>(wc), iws = static_cast<int>(ws);
    std::snprintf(line, sizeof line, "%-*s  %-*s  %-*s  %10s  %s\n", iwn, "layer", iwc, "class", iws, "output shape", "params", "weights");
    out += line;
    for (const Layer& l : m.layers) {
        std::string ws_text;
        for (const Tensor& t : l.weights) {
            if (!ws_text.empty()) ws_text += "  ";
            ws_text += t.name + " " + shapeToString(t.shape);
            if (t.stored_dtype != DType::Float32) ws_text += std::string(" ") + dtypeName(t.stored_dtype);
        }
        for (const Tensor& t : l.other_tensors) {
            if (!ws_text.empty()) ws_text += "  ";
            ws_text += t.name + " " + shapeToString(t.shape) + " " + dtypeName(t.stored_dtype) + " (not analysed)";
        }
        if (l.trained) ws_text += (ws_text.empty() ? "" : "  ") + std::string("trained: ") + describeTrained(*l.trained);
        std::snprintf(line, sizeof line, "%-*s  %-*s  %-*s  %10lld  ", iwn, l.name.c_str(), iwc, l.class_name.value_or("?").c_str(), iws,
                      l.output_shape ? shapeToString(*l.output_shape).c_str() : "?", static_cast<long long>(l.paramCount()));
        out += line + ws_text + "\n";
    }
    std::snprintf(line, sizeof line, "\ntotal params:  %lld\nfloat32 size:  %lld bytes (%.2f MiB)\n", static_cast<long long>(m.paramCount()),
                  static_cast<long long>(m.paramCount() * 4), static_cast<double>(m.paramCount()) * 4.0 / (1 << 20));
    out += line;
    for (const std::string& w : m.warnings) out += "warning: " + w + "\n";
    return out;
}

}  // namespace qs
