#pragma once
// Entry point: file -> Model. The container is identified from the content (HDF5 signature,
// zip signature, root attributes and groups), never from the extension.
#include <string>

#include "base/progress.h"
#include "model/model.h"

namespace qs {

struct LoadOptions {
    std::string arch_path;       // architecture for weights-only files (JSON, YAML, or a .keras)
    bool find_sidecar = true;    // look for m.json / m.yaml / m.keras beside m_weights.h5
    // false: layers, tensors' shapes and dtypes, parameter counts and output shapes only; float
    // tensors keep `data` empty (`quantscope-cli inspect`: 0.1 s instead of 3 s on VGG16).
    bool values = true;
};

Model loadModel(const std::string& path, const LoadOptions& options = {}, const Progress& progress = Progress::none());

}  // namespace qs
