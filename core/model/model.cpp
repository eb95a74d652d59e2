#include "model/model.h"

namespace qs {

const char* dtypeName(DType t) {
    switch (t) {
        case DType::Float16: return "float16";
        case DType::Float32: return "float32";
        case DType::Float64: return "float64";
        case DType::Other: break;
    }
    return "other";
}

const char* formatName(ModelFormat f) {
    switch (f) {
        case ModelFormat::Keras2FullH5: return "keras-h5-full";
        case ModelFormat::KerasWeightsH5: return "keras-h5-weights";
        case ModelFormat::Keras0WeightsH5: return "keras0-h5-weights";
        case ModelFormat::Keras3WeightsH5: return "keras3-weights-h5";
        case ModelFormat::Keras3Archive: return "keras3-archive";
        case ModelFormat::GenericH5: return "generic-h5";
    }
    return "unknown";
}

}  // namespace qs
