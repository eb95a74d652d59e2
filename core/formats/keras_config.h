#pragma once
// Parses a Keras architecture (model.to_json(), the HDF5 `model_config` attribute, a .keras
// archive's config.json, a to_yaml() file converted to JSON) of any era into our Layer list.
//
// Shapes handled (Keras saving code, legacy/saving/hdf5_format.py and saving/serialization_lib.py):
//  - Keras 0.3:   {"name": "Sequential", "layers": [{"name": <class>, ...flat config}]}
//  - Keras 1/2.0/2.1 Sequential: {"class_name": "Sequential", "config": [layer, ...]}
//  - Keras 2.2+ Sequential: {"class_name": "Sequential", "config": {"layers": [...]}}
//  - Functional/Model: layers with inbound_nodes [[[name, node, tensor, kwargs]]]; TFOpLambda
//    writes one flat spec [name, 0, 0, {"y": [name, 0, 0]}]; Keras 3 writes
//    [{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": [..]}}], "kwargs": {}}]
//  - a bare list of layers (treated as Sequential), and nested Sequential/Functional models,
//    which are flattened into the outer graph.
// Old argument names (nb_filter, border_mode, subsample, dim_ordering, output_dim, p) are mapped
// to Keras 2 names in Layer::config; Layer::class_name keeps what the file says.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model.h"

namespace qs {

// One node of the architecture tree: a layer, or a nested model with its own layers.
struct ArchNode {
    Layer layer;                    // for a nested model: its name and class, no weights
    std::vector<ArchNode> children; // non-empty only for nested models
    bool is_model = false;
};

struct Architecture {
    std::string model_class;  // Sequential, Model, Functional
    std::vector<ArchNode> tree;   // the top level, nested models kept as nodes
    std::vector<Layer> layers;    // flattened graph order, inbound resolved through nesting
    std::vector<InboundRef> inputs, outputs;
    std::vector<std::string> warnings;
};

// `file` and `where` only name the source in error messages.
Architecture parseKerasArchitecture(const nlohmann::json& root, const std::string& file, const std::string& where);

// Parses JSON text with a size and nesting-depth guard; errors name the file and the byte offset.
nlohmann::json parseJsonText(const std::string& text, const std::string& file, const std::string& where);

// The canonical Keras 2 class for a class name of any era (Convolution2D -> Conv2D, MaxPool2D ->
// MaxPooling2D); unknown names are returned unchanged.
std::string canonicalKind(const std::string& class_name);

// Keras 3's naming.to_snake_case, used for .weights.h5 group keys (Conv2D -> conv2d, ReLU -> re_lu).
std::string kerasSnakeCase(const std::string& class_name);

bool isModelClass(const std::string& class_name);

}  // namespace qs
