#include "vgg16_shaped.h"

#include <filesystem>
#include <vector>

#include "keras_h5_writer.h"

namespace qs::testing {

namespace {

std::string vgg16Config() {
    // keras.applications.VGG16(include_top=True): 13 conv 3x3 'same' + 3 dense.
    std::string layers = R"({"class_name": "InputLayer", "config": {"name": "input_1", "batch_input_shape": [null, 224, 224, 3]}})";
    const int blocks[5][2] = {{2, 64}, {2, 128}, {3, 256}, {3, 512}, {3, 512}};
    for (int b = 0; b < 5; ++b) {
        for (int c = 0; c < blocks[b][0]; ++c)
            layers += ", {\"class_name\": \"Conv2D\", \"config\": {\"name\": \"block" + std::to_string(b + 1) + "_conv" +
                      std::to_string(c + 1) + "\", \"filters\": " + std::to_string(blocks[b][1]) +
                      ", \"kernel_size\": [3, 3], \"padding\": \"same\", \"activation\": \"relu\"}}";
        layers += ", {\"class_name\": \"MaxPooling2D\", \"config\": {\"name\": \"block" + std::to_string(b + 1) +
                  "_pool\", \"pool_size\": [2, 2], \"strides\": [2, 2]}}";
    }
    layers += R"(, {"class_name": "Flatten", "config": {"name": "flatten"}})";
    layers += R"(, {"class_name": "Dense", "config": {"name": "fc1", "units": 4096, "activation": "relu"}})";
    layers += R"(, {"class_name": "Dense", "config": {"name": "fc2", "units": 4096, "activation": "relu"}})";
    layers += R"(, {"class_name": "Dense", "config": {"name": "predictions", "units": 1000, "activation": "softmax"}})";
    return R"({"class_name": "Sequential", "config": {"name": "vgg16", "layers": [)" + layers + "]}}";
}

std::vector<LayerSpec> vgg16Weights() {
    std::vector<LayerSpec> out;
    const int blocks[5][2] = {{2, 64}, {2, 128}, {3, 256}, {3, 512}, {3, 512}};
    hsize_t in = 3;
    for (int b = 0; b < 5; ++b)
        for (int c = 0; c < blocks[b][0]; ++c) {
            const hsize_t f = static_cast<hsize_t>(blocks[b][1]);
            out.push_back(LayerSpec{"block" + std::to_string(b + 1) + "_conv" + std::to_string(c + 1),
                                    {WeightSpec{"kernel:0", {3, 3, in, f}, {}}, WeightSpec{"bias:0", {f}, {}}}});
            in = f;
        }
    out.push_back(LayerSpec{"fc1", {WeightSpec{"kernel:0", {25088, 4096}, {}}, WeightSpec{"bias:0", {4096}, {}}}});
    out.push_back(LayerSpec{"fc2", {WeightSpec{"kernel:0", {4096, 4096}, {}}, WeightSpec{"bias:0", {4096}, {}}}});
    out.push_back(LayerSpec{"predictions", {WeightSpec{"kernel:0", {4096, 1000}, {}}, WeightSpec{"bias:0", {1000}, {}}}});
    return out;
}

}  // namespace

void writeVgg16Shaped(const std::string& path) {
    if (std::filesystem::exists(path)) return;
    WriteOptions o;
    o.model_config = vgg16Config();
    writeKerasH5(path, vgg16Weights(), o);
}

}  // namespace qs::testing
