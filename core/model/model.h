#pragma once
// The one model representation every loader produces and every later stage consumes: the
// layers in graph order, each with its Keras class, configuration, inbound connections and
// weight tensors. Plain data, no I/O.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/tensor.h"

namespace qs {

// One input of a layer call: the producing layer and which of its outputs.
struct InboundRef {
    std::string layer;
    int node_index = 0;
    int tensor_index = 0;
};

// A shape with unknown (batch or free) dimensions as -1.
using Shape = std::vector<int64_t>;

// The quantization a layer was trained with, read from a quantization-aware-training library's
// config (QKeras quantizers) or state tensors (HGQ's FixedPointQuantizer: bits, integers,
// keep_negative).
struct TrainedQuantization {
    int bits = 0;                          // the widest, for per-element bit widths
    std::optional<int> integer_bits;
    std::optional<bool> keep_negative;
    std::string source;                    // "kernel_quantizer quantized_bits(4,0,1)", "bits:0 tensor"
};

// "int4 (quantized_bits, 0 integer bits)"-style one-line description.
std::string describeTrained(const TrainedQuantization& t);

struct Layer {
    std::string name;
    std::optional<std::string> class_name;  // as the file says; empty for weights-only files
    std::string kind;                        // canonical Keras 2 class (Convolution2D -> Conv2D)
    nlohmann::json config = nlohmann::json::object();  // normalised to Keras 2 argument names
    std::vector<InboundRef> inbound;         // first call only (shared layers are not supported)
    std::vector<Tensor> weights;             // float tensors, in the order of the layer's weight_names
    std::vector<Tensor> other_tensors;       // integer and boolean tensors: listed, never analysed or run
    std::optional<TrainedQuantization> trained;
    std::optional<Shape> output_shape;       // without batch dimension is NOT stripped: [-1, ...]

    int64_t paramCount() const {
        int64_t n = 0;
        for (const Tensor& t : weights) n += t.size();
        return n;
    }
};

enum class ModelFormat {
    Keras2FullH5,      // model.save("m.h5"): model_config + model_weights
    KerasWeightsH5,    // save_weights, Keras 1.x/2.x layout (layer_names at root)
    Keras0WeightsH5,   // Keras 0.x save_weights: nb_layers, layer_<i>/param_<j>
    Keras3WeightsH5,   // Keras 3 .weights.h5: layers/<key>/vars/<i>
    Keras3Archive,     // .keras zip: config.json + model.weights.h5
    GenericH5,         // any other HDF5 file: every float dataset is a tensor
};

const char* formatName(ModelFormat f);

struct Model {
    std::string source_path;
    ModelFormat format = ModelFormat::GenericH5;
    std::string keras_version;   // as written; empty when the file does not say
    std::string backend;
    std::string model_class;     // Sequential, Functional, Model; empty without architecture
    bool has_architecture = false;
    std::string architecture_source;  // "model_config", "config.json", or the sidecar path
    std::vector<Layer> layers;
    std::vector<InboundRef> inputs, outputs;
    std::vector<std::string> warnings;

    int64_t paramCount() const {
        int64_t n = 0;
        for (const Layer& l : layers) n += l.paramCount();
        return n;
    }
    const Layer* findLayer(const std::string& name) const {
        for (const Layer& l : layers)
            if (l.name == name) return &l;
        return nullptr;
    }
    Layer* findLayer(const std::string& name) {
        for (Layer& l : layers)
            if (l.name == name) return &l;
        return nullptr;
    }
};

}  // namespace qs
