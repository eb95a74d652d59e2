#pragma once
// Attaching weight tensors read from a file to the layers of an architecture, and the checks
// that go with it. Shared by every loader so that all formats follow one set of rules.
#include <string>
#include <utility>
#include <vector>

#include "formats/keras_config.h"
#include "model/model.h"

namespace qs {

// A file's weights, one entry per layer group, in the file's layer order.
struct WeightGroup {
    std::string name;            // layer (or nested model) name as the file says
    std::vector<Tensor> tensors;
};

// Fills model.layers/inputs/outputs from a parsed architecture.
void adoptArchitecture(Model& model, Architecture arch, const std::string& source);

// Layers straight from the file's groups when there is no architecture (class_name unknown).
void adoptGroupsWithoutArchitecture(Model& model, std::vector<WeightGroup> groups);

// Binds groups to layers by name; groups named after a nested model are split among its
// layers by the layer name inside each weight path. When names do not match and
// `allow_order_fallback` (weights-only files: Keras' load_weights matches by order), binds the
// weighted groups to the weighted layers in order, with a warning.
void bindWeights(Model& model, const Architecture& arch, std::vector<WeightGroup> groups, bool allow_order_fallback);

// Keras 0/1 'th' kernels are stored (out, in, kh, kw); we keep Keras 2's (kh, kw, in, out).
// Theano convolves (flips the kernel); `flip` turns that into the correlation every other
// backend computes.
void convertTheanoKernels(Model& model, bool flip);

// Layer kinds that always carry weights.
bool kindHasWeights(const std::string& kind);

}  // namespace qs
