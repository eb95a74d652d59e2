#pragma once
// Test/bench support: writes HDF5 files in the Keras 2 full-model layout (root model_config,
// model_weights/<layer>/<layer>/<name>:0 with layer_names / weight_names attributes), with the
// string-attribute kind and float dtype chosen by the caller, so tests can cover what
// different h5py versions wrote. Not used by the product.
#include <cstdint>
#include <H5public.h>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace qs::testing {

struct WeightSpec {
    std::string name;              // "kernel:0"; stored as <layer>/<name>
    std::vector<hsize_t> shape;
    // Fills the buffer of `count` floats (chunk by chunk for big tensors); default: a ramp.
    std::function<void(float* data, uint64_t offset, uint64_t count)> fill;
};

struct LayerSpec {
    std::string name;
    std::vector<WeightSpec> weights;
};

enum class StringKind { FixedLength, VariableLength };
enum class FloatKind { F16, F32, F64 };

struct WriteOptions {
    StringKind strings = StringKind::VariableLength;
    FloatKind floats = FloatKind::F32;
    bool weights_only = false;     // save_weights layout: layer_names at the root, no model_config
    std::optional<std::string> model_config;  // JSON text; omitted when nullopt
    std::string keras_version = "2.4.0";
    bool latest_format = false;    // HDF5 1.8+ format: attributes over 64 KiB (dense storage)
};

void writeKerasH5(const std::string& path, const std::vector<LayerSpec>& layers, const WriteOptions& options);

// Root string attribute (to corrupt or override one).
void writeStringAttr(const std::string& path, const std::string& name, const std::string& value);

}  // namespace qs::testing
