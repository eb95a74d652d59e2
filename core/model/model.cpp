#include "model/model.h"

namespace qs {

const char* dtypeName(DType t) {
    switch (t) {
        case DType::Float16: return "float16";
        case DType::Float32: return "float32";
        case DType::Float64: return "float64";
        case DType::Int8: return "int8";
        case DType::Int16: return "int16";
        case DType::Int32: return "int32";
        case DType::Int64: return "int64";
        case DType::UInt8: return "uint8";
        case DType::UInt16: return "uint16";
        case DType::UInt32: return "uint32";
        case DType::UInt64: return "uint64";
        case DType::Bool: return "bool";
        case DType::Other: break;
    }
    return "other";
}

std::string describeTrained(const TrainedQuantization& t) {
    std::string s = std::to_string(t.bits) + "-bit";
    if (t.integer_bits) s += ", " + std::to_string(*t.integer_bits) + " integer";
    if (t.keep_negative) s += *t.keep_negative ? ", signed" : ", unsigned";
    return s + " (" + t.source + ")";
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
